// An eventbridge client built on the official `socket.io-client` (v4).
//
// This file is two things at once: the example that docs/clients.md shows to people writing a
// browser client, and the script tests/integration/test_js_clients.py runs against a live bridge
// to prove that the official client speaks the bridge's protocol.
//
// Usage:
//   node socketio_client.mjs <bridge-url> <project-id> <event-count> [options]
//
//   --websocket-only  connect over WebSocket at once (default: HTTP long-polling first, then the
//                     client upgrades to WebSocket, exactly as a browser with default options)
//   --polling-only    stay on HTTP long-polling, never upgrade
//   --emit            after joining, send new-activity, step-updated and step-completed
//   --timeout <ms>    give up, exiting 1, if the events have not all arrived by then (15000)
//
// Environment:
//   EVENTBRIDGE_TOKEN  a JWT for a bridge that requires tokens (EVENTBRIDGE_AUTH=jwt); sent in the
//                      handshake's `auth` payload, {token}, on every (re)connect. Not an option:
//                      command lines show up in `ps` and shell history. Never put it in the URL.
//
// Output: one JSON line per thing that happens, in order.
//   {"transport": "polling"}                          connected (and on every reconnect)
//   {"upgrade": "websocket"}                          the connection moved to another transport
//   {"ack": "join-project", "payload": {...}}         a join's acknowledgement
//   {"ack": "new-activity", "sent": {...}, "payload": {...}}   an emit's acknowledgement
//   {"event": "agent_status", "payload": {...}}       an event: the envelope plus its `offset`
//   {"connect_error": {"message": "...", "data": {"code": "invalid_token"}}}   the bridge refused
//                                                     the token (then it exits 1)
// It exits 0 once <event-count> events arrived (with --emit: and its emits were acknowledged). An
// event a catch-up repeats (already processed in its room, see below) is printed but not counted.

import { parseArgs } from "node:util";
import { io } from "socket.io-client";

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    "websocket-only": { type: "boolean", default: false },
    "polling-only": { type: "boolean", default: false },
    emit: { type: "boolean", default: false },
    timeout: { type: "string", default: "15000" },
  },
});
if (positionals.length !== 3) {
  console.error("usage: node socketio_client.mjs <bridge-url> <project-id> <count> [options]");
  process.exit(2);
}
const [bridgeUrl, projectId, countText] = positionals;
const expectedEvents = Number(countText);

// A bridge with EVENTBRIDGE_AUTH=jwt wants a token; an anonymous bridge needs none.
const token = process.env.EVENTBRIDGE_TOKEN || null;
// The refusal codes of a handshake's token (err.data.code of `connect_error`).
const AUTH_CODES = new Set(["auth_required", "invalid_token", "token_expired"]);

// The Socket.IO name of each event type (CONTRACT.md section 4): the type itself, except the
// three collaboration events, which use dashes.
const EVENT_NAMES = [
  "agent_status",
  "progress_update",
  "generation_complete",
  "error",
  "activity-created", // activity_created
  "step-updated", // step_updated
  "step-completed", // step_completed
  "deployment_status",
  "deployment_log",
];

// How long to wait for any acknowledgement before treating the request as lost.
const ACK_TIMEOUT_MS = 5000;

function print(line) {
  console.log(JSON.stringify(line));
}

// The two rooms this client follows. Join the project room FIRST: an activity of the project
// belongs to both rooms, and the bridge delivers it once, through the room joined first.
const PROJECT_ROOM = `project:${projectId}`;
const FEED_ROOM = "activity-feed";

// Where to resume after a reconnect: `epoch` names the bridge's event log, and `offsets` holds ONE
// OFFSET PER ROOM, the offset of the last event this client processed in that room. Not one
// number for the whole connection: offsets rise within a room, but not across rooms while a
// connection resumes (the feed's catch-up, joined second, can deliver events older than those the
// project room just delivered), so a single "newest offset" would skip the feed's missed events
// after another drop. A browser keeps these in localStorage so that a page reload resumes too
// (docs/examples/resume-socketio.html); the rules are in docs/delivery-guarantees.md.
let epoch = null;
const offsets = {}; // {room: offset of the last event processed in that room}
// Per room, for the current connection only: after a fresh join or a resync notice, the events at
// or below this offset are the room's current state (its snapshot), not new events.
let stateUpTo = {};

// The room an event is counted in: the project room if it is the project's, else the feed. (An
// activity of the project arrives through the project room; counting it in the feed as well would
// move the feed's offset past feed events that a resume has not delivered yet.)
function roomOf(event) {
  return event.project_id === projectId ? PROJECT_ROOM : FEED_ROOM;
}

// The resume fields a join carries: {since, epoch} for a room with a stored offset, nothing for a
// room without one (a fresh join).
function resumeFields(room) {
  return offsets[room] === undefined ? {} : { since: offsets[room], epoch };
}

// A join was acknowledged. A fresh join (no `since`) delivers the room's current state (offsets up
// to the ack's `offset`), then the live events newer than that offset: it becomes the room's
// resume point. After a resumed join, the catch-up events move the room's offset forward instead.
function rememberJoin(room, ack, resumed) {
  epoch = ack.epoch;
  if (!resumed) {
    stateUpTo[room] = ack.offset;
    offsets[room] = ack.offset;
  }
}

// Default transports: ["polling", "websocket"], the client upgrades as soon as it can.
let transports;
if (options["websocket-only"]) {
  transports = ["websocket"];
} else if (options["polling-only"]) {
  transports = ["polling"];
}
const socket = io(bridgeUrl, {
  transports,
  reconnectionDelayMax: 5000,
  // Sent in the handshake of every connect and reconnect. A function, not an object, so that each
  // reconnect can send a fresh token: a browser would ask its auth service for one here (this
  // script has only the one from its environment). Without a token: {} (anonymous bridge).
  auth: (send) => send(token ? { token } : {}),
});

let eventsReceived = 0;
// With --emit, the script also waits for its own acknowledgements: an emitted event can come back
// through the room before the acknowledgement of its emit arrives.
let emitsDone = !options.emit;
const deadline = setTimeout(() => {
  console.error(`timed out: ${eventsReceived} of ${expectedEvents} events arrived`);
  finish(1);
}, Number(options.timeout));

function finishWhenDone() {
  if (eventsReceived >= expectedEvents && emitsDone) {
    finish(0);
  }
}

function finish(code) {
  clearTimeout(deadline);
  socket.disconnect();
  process.exit(code);
}

// Ask for something and wait for the acknowledgement; a refusal is {"ok": false, "error": ...}.
async function request(name, payload) {
  const ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(name, payload);
  if (!ack.ok) {
    console.error(`${name} refused: ${ack.error.code}: ${ack.error.message}`);
  }
  return ack;
}

// Join one room, resuming it if it has a stored offset; resolves to the acknowledgement. This
// uses the callback form of the acknowledgement, not emitWithAck: the callback runs as soon as the
// ack arrives, before the room's events that follow it (several can come in one long-polling
// response), so the snapshot bound is set before the snapshot is handled.
function join(name, room, payload) {
  const resume = resumeFields(room);
  return new Promise((resolve, reject) => {
    socket.timeout(ACK_TIMEOUT_MS).emit(name, { ...payload, ...resume }, (error, ack) => {
      if (error) {
        reject(error);
        return;
      }
      print({ ack: name, payload: ack });
      if (ack.ok) {
        rememberJoin(room, ack, "since" in resume);
      } else {
        console.error(`${name} refused: ${ack.error.code}: ${ack.error.message}`);
      }
      resolve(ack);
    });
  });
}

// (Re)join the rooms on every connect, the first one and each automatic reconnect: the project
// room first, then the feed, each resuming after its own offset when it has one.
async function joinRooms() {
  stateUpTo = {}; // a new connection: no snapshot seen on it yet
  const projectAck = await join("join-project", PROJECT_ROOM, { project_id: projectId });
  const feedAck = await join("join-activity-feed", FEED_ROOM, {});
  if (!projectAck.ok || !feedAck.ok) {
    finish(1);
  }
}

// Collaboration events a browser sends. Each is published to the exchange with confirms; the ack
// carries the new event's id, and the event then comes back through the rooms like any other.
async function emitCollaborationEvents() {
  const emits = [
    ["new-activity", { project_id: projectId, actor: "js-client", action: "commented" }],
    [
      "step-updated",
      { project_id: projectId, workflow_id: "wf-1", step_id: "s-1", changes: { title: "New" } },
    ],
    ["step-completed", { project_id: projectId, workflow_id: "wf-1", step_id: "s-1" }],
  ];
  for (const [name, data] of emits) {
    const ack = await request(name, data);
    print({ ack: name, sent: data, payload: ack });
    if (!ack.ok) {
      finish(1);
      return;
    }
  }
}

// The Engine.IO connection underneath opened (first connect and every reconnect): say which
// transport it started on, and when it upgrades (the upgrade often completes before "connect").
socket.io.on("open", () => {
  print({ transport: socket.io.engine.transport.name });
  socket.io.engine.once("upgrade", (transport) => print({ upgrade: transport.name }));
});

socket.on("connect", async () => {
  try {
    await joinRooms();
    if (options.emit && !emitsDone) {
      await emitCollaborationEvents();
      emitsDone = true;
      finishWhenDone();
    }
  } catch (error) {
    console.error(`no acknowledgement: ${error.message}`);
    finish(1);
  }
});

// Print everything that arrives, known or not, so that nothing goes unseen.
socket.onAny((name, payload) => print({ event: name, payload }));

// What this script does with an event: count it (onAny above printed it). Yours renders it.
function processEvent(event) {
  eventsReceived += 1;
  finishWhenDone();
}

// An event arrived: the envelope plus its `offset`.
function onEvent(event) {
  const room = roomOf(event);
  if (stateUpTo[room] !== undefined && event.offset <= stateUpTo[room]) {
    // The room's snapshot (latest agent and deployment state): apply it as state. It does not
    // move the room's offset, which the join's ack or the resync notice already set.
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

for (const name of EVENT_NAMES) {
  socket.on(name, onEvent);
}

// The bridge could not resume a room (history gone, other epoch, too far behind): the events the
// room missed will not come. Forget the room's offset. The room's current state follows (events
// at or below the notice's `offset`: state, as after a fresh join), then live events; the next
// event processed in the room stores its offset again. Reload the room's history by other means
// if you need it.
socket.on("resync-required", ({ room, reason, epoch: newEpoch, offset }) => {
  console.error(`resync required for ${room}: ${reason}`);
  epoch = newEpoch;
  delete offsets[room];
  stateUpTo[room] = offset;
});

// Who is in the project right now (docs/clients.md, "Presence"): the list after joining its
// room, then the changes. Not events: not counted, not resumed (a new join brings a new list).
const members = new Map(); // user id → {user_id, name, connections, since, state}
socket.on("presence", ({ members: list }) => {
  members.clear();
  for (const member of list) members.set(member.user_id, member);
});
socket.on("presence-joined", ({ member }) => members.set(member.user_id, member));
socket.on("presence-updated", ({ member }) => members.set(member.user_id, member));
socket.on("presence-left", ({ user_id: userId }) => members.delete(userId));

// The bridge is about to disconnect this client (for instance: too slow to keep up; or
// `token_expired`: the token expired, the reconnect below needs a fresh one and resumes each room
// from its offset).
socket.on("bridge-disconnect", ({ reason }) => console.error(`bridge disconnects us: ${reason}`));

socket.on("disconnect", (reason) => {
  // The client reconnects by itself after network trouble, but not after the server closed the
  // session: reconnect by hand then; the connect handler resumes each room from its offset.
  if (reason === "io server disconnect") {
    setTimeout(() => socket.connect(), 1000);
  }
});

socket.on("connect_error", (error) => {
  // The bridge refused the token: err.data.code says why, err.message in a sentence. The client
  // does not retry such a refusal by itself, and the same token would be refused again.
  if (error.data && AUTH_CODES.has(error.data.code)) {
    print({ connect_error: { message: error.message, data: error.data } });
    finish(1);
    return;
  }
  console.error(`cannot connect yet: ${error.message}`); // network trouble: it retries
});
