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
// Output: one JSON line per thing that happens, in order.
//   {"transport": "polling"}                          connected (and on every reconnect)
//   {"upgrade": "websocket"}                          the connection moved to another transport
//   {"ack": "join-project", "payload": {...}}         a join's acknowledgement
//   {"ack": "new-activity", "sent": {...}, "payload": {...}}   an emit's acknowledgement
//   {"event": "agent_status", "payload": {...}}       an event: the envelope plus its `offset`
// It exits 0 once <event-count> events arrived (with --emit: and its emits were acknowledged).

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

// Where to resume after a reconnect. `epoch` names the bridge's event log; `lastOffset` is the
// newest offset this client has processed. Offsets are global (not per room) and rise strictly
// on one connection, so one number covers every room joined. A browser would keep these in
// sessionStorage so that a page reload resumes too.
let epoch = null;
let lastOffset = null;

// The resume fields a join carries: nothing on the very first join, {since, epoch} afterwards.
function resumeFields() {
  return lastOffset === null ? {} : { since: lastOffset, epoch };
}

// Remember where the log stands after a join. A fresh join (no `since`) delivers the room's
// current state and then the live events newer than the ack's `offset`, so that offset becomes
// the resume point. After a resumed join, the catch-up events move `lastOffset` forward instead.
function rememberJoin(ack, resumed) {
  epoch = ack.epoch;
  if (!resumed) {
    lastOffset = Math.max(lastOffset ?? -1, ack.offset);
  }
}

// Default transports: ["polling", "websocket"], the client upgrades as soon as it can.
let transports;
if (options["websocket-only"]) {
  transports = ["websocket"];
} else if (options["polling-only"]) {
  transports = ["polling"];
}
const socket = io(bridgeUrl, { transports, reconnectionDelayMax: 5000 });

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

// (Re)join the rooms on every connect, the first one and each automatic reconnect, resuming
// after `lastOffset` when there is one.
async function joinRooms() {
  const resume = resumeFields();
  const resumed = "since" in resume;
  const projectAck = await request("join-project", { project_id: projectId, ...resume });
  print({ ack: "join-project", payload: projectAck });
  const feedAck = await request("join-activity-feed", resume);
  print({ ack: "join-activity-feed", payload: feedAck });
  if (!projectAck.ok || !feedAck.ok) {
    finish(1);
    return;
  }
  rememberJoin(projectAck, resumed);
  rememberJoin(feedAck, resumed);
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

// The events themselves: the payload is the envelope plus its `offset`.
for (const name of EVENT_NAMES) {
  socket.on(name, (payload) => {
    lastOffset = Math.max(lastOffset ?? -1, payload.offset);
    eventsReceived += 1;
    finishWhenDone();
  });
}

// The bridge could not resume a room (history gone, other epoch, too far behind). Live events
// keep coming; reload that room's state by other means and continue from the offset given.
socket.on("resync-required", ({ room, reason, epoch: newEpoch, offset }) => {
  console.error(`resync required for ${room}: ${reason}`);
  epoch = newEpoch;
  lastOffset = offset;
});

// The bridge is about to disconnect this client (for instance: too slow to keep up).
socket.on("bridge-disconnect", ({ reason }) => console.error(`bridge disconnects us: ${reason}`));

socket.on("disconnect", (reason) => {
  // The client reconnects by itself after network trouble, but not after the server closed the
  // session: reconnect by hand then; the connect handler resumes from `lastOffset`.
  if (reason === "io server disconnect") {
    setTimeout(() => socket.connect(), 1000);
  }
});

socket.on("connect_error", (error) => console.error(`cannot connect yet: ${error.message}`));
