// An eventbridge client on the native WebSocket endpoint, with the standard `WebSocket` class.
//
// This file is two things at once: the example that docs/clients.md shows to people writing a
// browser client (browsers have `WebSocket` built in), and the script
// tests/integration/test_js_clients.py runs against a live bridge. Node 22 has `WebSocket` as a
// global too; Node 20 needs a flag:
//
//   node --experimental-websocket websocket_client.mjs <bridge-ws-url> <project-id> <event-count>
//        [--timeout <ms>] [--ping-interval <ms>]
//
// Environment: EVENTBRIDGE_TOKEN, a JWT for a bridge that requires tokens (EVENTBRIDGE_AUTH=jwt).
// The client then sends {"type": "auth", "token": ...} as the FIRST message of every connection
// and subscribes once the bridge answers `authenticated`. (Not an option: command lines show up
// in `ps` and shell history. Never put a token in the URL.)
//
// <bridge-ws-url> is the bridge's base URL, e.g. ws://127.0.0.1:8000; the client connects to
// /ws and subscribes to the project's room and to the activity feed. (Connecting to
// /ws/ai/<project-id> instead subscribes to that project at once, without a message.)
//
// Output: every frame the bridge sends, one JSON line each, in order: the replies
// (`authenticated`, `subscribed`, `pong`, `request_error`, `resync_required`) and the events (the
// envelope plus its `offset`). It exits 0 once <event-count> events arrived, 1 on timeout (default
// 15000 ms), on a refused request, or when the bridge refuses the token or the token expires
// (close code 4401). An event a catch-up repeats (already processed in its room, see below) is
// printed but not counted.

import { parseArgs } from "node:util";

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    timeout: { type: "string", default: "15000" },
    "ping-interval": { type: "string", default: "20000" },
  },
});
if (positionals.length !== 3) {
  console.error("usage: node websocket_client.mjs <bridge-ws-url> <project-id> <count> [options]");
  process.exit(2);
}
if (typeof WebSocket === "undefined") {
  console.error("no global WebSocket: use Node 22+, or Node 20 with --experimental-websocket");
  process.exit(2);
}
const [bridgeUrl, projectId, countText] = positionals;
const expectedEvents = Number(countText);

// A bridge with EVENTBRIDGE_AUTH=jwt wants a token; an anonymous bridge needs none.
const token = process.env.EVENTBRIDGE_TOKEN || null;
// The close code of a connection whose token was refused or has expired.
const AUTH_CLOSE_CODE = 4401;

function print(line) {
  console.log(JSON.stringify(line));
}

// The two rooms this client follows. Subscribe to the project room FIRST: an activity of the
// project belongs to both rooms, and the bridge delivers it once, through the room joined first.
const PROJECT_ROOM = `project:${projectId}`;
const FEED_ROOM = "activity-feed";

// Where to resume after a reconnect: `epoch` names the bridge's event log, and `offsets` holds ONE
// OFFSET PER ROOM, the offset of the last event this client processed in that room. Not one
// number for the whole connection: offsets rise within a room, but not across rooms while a
// connection resumes (the feed's catch-up, subscribed second, can deliver events older than those
// the project room just delivered), so a single "newest offset" would skip the feed's missed
// events after another drop. A browser keeps these in localStorage so that a page reload resumes
// too (docs/examples/resume-websocket.html); the rules are in docs/delivery-guarantees.md.
let epoch = null;
const offsets = {}; // {room: offset of the last event processed in that room}
// Per room, for the current connection only: the `since` its subscribe carried (null: a fresh
// subscription).
let sentSince = {};
// Per room, for the current connection only: after a fresh subscription or a resync notice, the
// events at or below this offset are the room's current state (its snapshot), not new events.
let stateUpTo = {};

let socket = null;
let pinger = null;
let eventsReceived = 0;
let finished = false;
// Who is in the project right now (presence): user id → member. Not events, not resumed.
let members = new Map();

const deadline = setTimeout(() => {
  console.error(`timed out: ${eventsReceived} of ${expectedEvents} events arrived`);
  finish(1);
}, Number(options.timeout));

function finish(code) {
  finished = true;
  clearTimeout(deadline);
  clearInterval(pinger);
  socket?.close(1000, "done");
  process.exit(code);
}

function send(message) {
  socket.send(JSON.stringify(message));
}

// The subscribe message for a room: with {since, epoch} when the room has a stored offset, without
// them (a fresh subscription) when it has none.
function subscribeMessage(room) {
  const target = room === FEED_ROOM ? { room } : { project_id: projectId };
  const since = offsets[room];
  sentSince[room] = since ?? null;
  return since === undefined
    ? { type: "subscribe", ...target }
    : { type: "subscribe", ...target, since, epoch };
}

function connect() {
  sentSince = {};
  stateUpTo = {};
  socket = new WebSocket(`${bridgeUrl}/ws`);

  socket.addEventListener("open", () => {
    if (token) {
      // The FIRST message authenticates; the rest follows the `authenticated` reply (see handle).
      // (A long-running client would fetch a fresh token here on every reconnect.)
      send({ type: "auth", token });
    } else {
      start(); // an anonymous bridge
    }
  });

  socket.addEventListener("message", (message) => {
    const frame = JSON.parse(message.data);
    print(frame);
    handle(frame);
  });

  // Reconnect once per connection, whichever of these reports the end first: browsers fire
  // `error` then `close`, but Node 20's WebSocket fires only `error` when it cannot connect.
  let reconnecting = false;
  function reconnect(why) {
    if (finished || reconnecting) {
      return;
    }
    reconnecting = true;
    clearInterval(pinger);
    console.error(`${why}; reconnecting in 1 s`);
    setTimeout(connect, 1000);
  }
  // The close code says why (1013: too slow to keep up, 1012: the bridge restarts); either way,
  // reconnect and resume each room from its offset. But 4401, the token was refused or expired
  // (reason "<code>: <message>"): the same token would be refused again. A long-running client
  // gets a fresh one and reconnects, resuming each room from its offset; this script stops.
  socket.addEventListener("close", (close) => {
    if (close.code === AUTH_CLOSE_CODE) {
      console.error(`the bridge refused the token: ${close.reason}`);
      finish(1);
      return;
    }
    reconnect(`closed: ${close.code} ${close.reason}`);
  });
  socket.addEventListener("error", () => reconnect("connection failed"));
}

// Subscribe to the rooms, each resuming after its own offset when it has one, and start pinging:
// at once on an anonymous bridge, after the `authenticated` reply on one that wants a token.
function start() {
  // The bridge handles a connection's messages in order: the project room is joined first.
  send(subscribeMessage(PROJECT_ROOM));
  send(subscribeMessage(FEED_ROOM));
  // A ping now and then keeps proxies from closing an idle connection; the first pong also
  // shows the connection works end to end.
  send({ type: "ping" });
  pinger = setInterval(() => send({ type: "ping" }), Number(options["ping-interval"]));
}

// The room an event is counted in: the project room if it is the project's, else the feed. (An
// activity of the project arrives through the project room; counting it in the feed as well would
// move the feed's offset past feed events that a resume has not delivered yet.)
function roomOf(event) {
  return event.project_id === projectId ? PROJECT_ROOM : FEED_ROOM;
}

// What this script does with an event: count it (it was printed on arrival). Yours renders it.
function processEvent(event) {
  eventsReceived += 1;
  if (eventsReceived >= expectedEvents) {
    finish(0);
  }
}

// An event arrived: the envelope plus its `offset`.
function onEvent(event) {
  const room = roomOf(event);
  if (stateUpTo[room] !== undefined && event.offset <= stateUpTo[room]) {
    // The room's snapshot (latest agent and deployment state): apply it as state. It does not
    // move the room's offset, which the `subscribed` reply or the resync notice already set.
    processEvent(event);
    return;
  }
  const last = offsets[room];
  if (last !== undefined && event.offset <= last) {
    // Already processed: the feed's catch-up repeats an activity of the project that this client
    // counted in the project room. Skip it.
    return;
  }
  // Process the event, and only then store its offset as the room's offset: a client that stops
  // in between gets the event again, rather than losing it.
  processEvent(event);
  offsets[room] = event.offset;
}

function handle(frame) {
  // An event carries `id` and `offset`; its `type` is the event type. Check this first: an event
  // of type `error` is an event, not a reply.
  if ("id" in frame && "offset" in frame) {
    onEvent(frame);
    return;
  }
  switch (frame.type) {
    case "authenticated":
      // {type, subject, projects: [...] | "*", activity_feed, expires_at, anonymous}: the token
      // was accepted. It grants the rooms listed (a token without activity_feed: true cannot join
      // the feed: that subscribe would be refused with `forbidden`); at `expires_at` the bridge
      // closes the connection (4401, token_expired).
      start();
      break;
    case "subscribed":
      // {type, room, epoch, offset}. A fresh subscription delivers the room's current state
      // (offsets up to this `offset`), then the live events newer than it: it becomes the room's
      // resume point. After a resumed one, the catch-up events move the room's offset instead.
      epoch = frame.epoch;
      if (sentSince[frame.room] === null) {
        stateUpTo[frame.room] = frame.offset;
        offsets[frame.room] = frame.offset;
      }
      break;
    case "pong":
      break;
    case "resync_required":
      // {type, room, reason, epoch, offset}. The bridge could not resume this room (history gone,
      // other epoch, too far behind): the events the room missed will not come. Forget the room's
      // offset. The room's current state follows (events at or below this `offset`: state, as
      // after a fresh subscription), then live events; the next event processed in the room
      // stores its offset again. Reload the room's history by other means if you need it.
      console.error(`resync required for ${frame.room}: ${frame.reason}`);
      epoch = frame.epoch;
      delete offsets[frame.room];
      stateUpTo[frame.room] = frame.offset;
      break;
    case "presence":
      // {type, project_id, members}: who is in the project right now (after subscribing to its
      // room); then presence_joined / presence_updated {member} and presence_left {user_id} as
      // users come and go (docs/clients.md, "Presence"). Show them; they are not events.
      members = new Map(frame.members.map((member) => [member.user_id, member]));
      break;
    case "presence_joined":
    case "presence_updated":
      members.set(frame.member.user_id, frame.member);
      break;
    case "presence_left":
      members.delete(frame.user_id);
      break;
    case "request_error":
      // The connection stays open; `request` names the message that was refused.
      console.error(`${frame.request} refused: ${frame.code}: ${frame.message}`);
      finish(1);
      break;
    default:
      console.error(`unexpected frame: ${JSON.stringify(frame)}`);
  }
}

connect();
