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
// <bridge-ws-url> is the bridge's base URL, e.g. ws://127.0.0.1:8000; the client connects to
// /ws and subscribes to the project's room and to the activity feed. (Connecting to
// /ws/ai/<project-id> instead subscribes to that project at once, without a message.)
//
// Output: every frame the bridge sends, one JSON line each, in order: the replies
// (`subscribed`, `pong`, `request_error`, `resync_required`) and the events (the envelope plus its
// `offset`). It exits 0 once <event-count> events arrived, 1 on timeout (default 15000 ms).

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

function print(line) {
  console.log(JSON.stringify(line));
}

// Where to resume after a reconnect. `epoch` names the bridge's event log; `lastOffset` is the
// newest offset this client has processed. Offsets are global (not per room) and rise strictly
// on one connection, so one number covers every room subscribed. A browser would keep these in
// sessionStorage so that a page reload resumes too.
let epoch = null;
let lastOffset = null;
let resumed = false;

let socket = null;
let pinger = null;
let eventsReceived = 0;
let finished = false;

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

function connect() {
  socket = new WebSocket(`${bridgeUrl}/ws`);

  socket.addEventListener("open", () => {
    // Subscribe to the rooms, resuming after `lastOffset` when there is one.
    const resume = lastOffset === null ? {} : { since: lastOffset, epoch };
    resumed = lastOffset !== null;
    send({ type: "subscribe", project_id: projectId, ...resume });
    send({ type: "subscribe", room: "activity-feed", ...resume });
    // A ping now and then keeps proxies from closing an idle connection; the first pong also
    // shows the connection works end to end.
    send({ type: "ping" });
    pinger = setInterval(() => send({ type: "ping" }), Number(options["ping-interval"]));
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
  // reconnect and resume from `lastOffset`.
  socket.addEventListener("close", (close) => reconnect(`closed: ${close.code} ${close.reason}`));
  socket.addEventListener("error", () => reconnect("connection failed"));
}

function handle(frame) {
  // An event carries `id` and `offset`; its `type` is the event type. Check this first: an event
  // of type `error` is an event, not a reply.
  if ("id" in frame && "offset" in frame) {
    lastOffset = Math.max(lastOffset ?? -1, frame.offset);
    eventsReceived += 1;
    if (eventsReceived >= expectedEvents) {
      finish(0);
    }
    return;
  }
  switch (frame.type) {
    case "subscribed":
      // A fresh subscription delivers the room's current state, then the live events newer than
      // this `offset`: it becomes the resume point. After a resumed one, the catch-up events move
      // `lastOffset` forward instead.
      epoch = frame.epoch;
      if (!resumed) {
        lastOffset = Math.max(lastOffset ?? -1, frame.offset);
      }
      break;
    case "pong":
      break;
    case "resync_required":
      // The bridge could not resume this room (history gone, other epoch, too far behind). Live
      // events keep coming; reload the room's state by other means and continue from here.
      console.error(`resync required for ${frame.room}: ${frame.reason}`);
      epoch = frame.epoch;
      lastOffset = frame.offset;
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
