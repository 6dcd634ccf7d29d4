// The client's bookkeeping against a scripted transport (no bridge): join order and resume
// fields, de-duplication per room, snapshots, resync, epochs, backoff, auth refusals, status.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AuthError, backoffDelay, createClient, memoryStore, parseResumeState } from "../dist/index.js";

/** A transport the test drives: it records what the client asks and reports what the test says. */
function scripted() {
  const opened = [];
  const factory = (url, events) => {
    const transport = {
      events,
      token: undefined,
      joins: [],
      leaves: [],
      closed: false,
      open(token) { this.token = token; },
      join(room, since, epoch) { this.joins.push({ room, since, epoch }); },
      leave(room) { this.leaves.push(room); },
      close() { this.closed = true; },
    };
    opened.push(transport);
    return transport;
  };
  return { factory, opened, last: () => opened.at(-1) };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));
const event = (offset, type, project, extra = {}) => ({
  id: `e${offset}`, type, schema_version: 1, project_id: project, source: "t",
  occurred_at: "2026-01-01T00:00:00Z", data: {}, offset, ...extra,
});

async function started(stored, options = {}) {
  const transport = scripted();
  const store = memoryStore(stored);
  const client = createClient({ url: "http://bridge", transport: transport.factory, store, settleMs: 50, ...options });
  const delivered = [];
  client.onEvent((e, meta) => delivered.push([e.id, meta.room, meta.snapshot]));
  client.subscribe("activity-feed");
  client.subscribe({ project: "p1" });
  client.connect();
  await tick();
  return { client, transport, store, delivered };
}

describe("client bookkeeping", () => {
  test("joins project rooms before the feed, each with its own since and the epoch", async () => {
    const { client, transport } = await started({ epoch: "e1", offsets: { "project:p1": 10, "activity-feed": 5 } });
    transport.last().events.ready(null);
    assert.deepEqual(transport.last().joins, [
      { room: "project:p1", since: 10, epoch: "e1" },
      { room: "activity-feed", since: 5, epoch: "e1" },
    ]);
    client.close();
  });

  test("an event at or below its room's offset is skipped; a project's activity counts in the project room", async () => {
    const { client, transport, store, delivered } = await started({ epoch: "e1", offsets: { "project:p1": 10, "activity-feed": 5 } });
    const { events } = transport.last();
    events.ready(null);
    events.joined({ room: "project:p1", epoch: "e1", offset: 20 });
    events.joined({ room: "activity-feed", epoch: "e1", offset: 20 });
    events.event(event(12, "activity_created", "p1")); // the project's catch-up
    events.event(event(15, "agent_status", "p1"));
    events.event(event(8, "activity_created", null)); // the feed's catch-up
    events.event(event(12, "activity_created", "p1")); // ...repeats the project's activity
    events.event(event(9, "activity_created", "p2"));
    events.event(event(9, "activity_created", "p2")); // a repeat in the feed
    events.event(event(21, "agent_status", "p9")); // in none of the rooms
    assert.deepEqual(delivered, [
      ["e12", "project:p1", false],
      ["e15", "project:p1", false],
      ["e8", "activity-feed", false],
      ["e9", "activity-feed", false],
    ]);
    assert.deepEqual(store.state.offsets, { "project:p1": 15, "activity-feed": 9 });
    client.close();
  });

  test("a fresh join stores the reply's offset and delivers the state below it as snapshot", async () => {
    const statuses = [];
    const { client, transport, store, delivered } = await started(null, { onStatus: (s) => statuses.push(s) });
    const { events } = transport.last();
    events.ready(null);
    assert.deepEqual(transport.last().joins.map((j) => j.since), [null, null]);
    events.joined({ room: "project:p1", epoch: "e1", offset: 30 });
    events.joined({ room: "activity-feed", epoch: "e1", offset: 30 });
    assert.deepEqual(store.state, { epoch: "e1", offsets: { "project:p1": 30, "activity-feed": 30 } });
    events.event(event(17, "agent_status", "p1"));
    assert.equal(client.status, "catching_up");
    events.event(event(31, "agent_status", "p1"));
    assert.equal(client.status, "live");
    assert.deepEqual(delivered, [["e17", "project:p1", true], ["e31", "project:p1", false]]);
    assert.equal(store.state.offsets["project:p1"], 31);
    assert.deepEqual(statuses, ["connecting", "catching_up", "live"]);
    client.close();
  });

  test("resync: the handler runs first, the snapshot follows as state, the notice's offset is stored", async () => {
    const { client, transport, store, delivered } = await started({ epoch: "old", offsets: { "project:p1": 10, "activity-feed": 5 } });
    const resyncs = [];
    client.onResync((info) => resyncs.push({ ...info, deliveredBefore: delivered.length }));
    const { events } = transport.last();
    events.ready(null);
    events.joined({ room: "project:p1", epoch: "new", offset: 40 });
    events.resync({ room: "project:p1", reason: "epoch_mismatch", epoch: "new", offset: 40 });
    events.joined({ room: "activity-feed", epoch: "new", offset: 40 }); // its own notice would follow
    assert.equal(client.status, "resyncing");
    events.event(event(33, "agent_status", "p1"));
    events.event(event(41, "agent_status", "p1"));
    assert.deepEqual(resyncs, [{ room: "project:p1", reason: "epoch_mismatch", epoch: "new", offset: 40, since: 10, deliveredBefore: 0 }]);
    assert.deepEqual(delivered, [["e33", "project:p1", true], ["e41", "project:p1", false]]);
    // The feed's offset is of the old log: it is resumed with the old epoch, so the bridge says so.
    assert.deepEqual(store.state, { epoch: "new", offsets: { "project:p1": 41, "activity-feed": 5 }, epochs: { "activity-feed": "old" } });
    client.close();
    const again = await started(store.state);
    again.transport.last().events.ready(null);
    assert.deepEqual(again.transport.last().joins[1], { room: "activity-feed", since: 5, epoch: "old" });
    again.client.close();
  });

  test("subscribing to a project while the feed is joined starts over, so the feed is joined last", async () => {
    const { client, transport } = await started(null);
    const first = transport.last();
    first.events.ready(null);
    client.subscribe({ project: "p2" });
    await tick();
    assert.ok(first.closed);
    transport.last().events.ready(null);
    assert.deepEqual(transport.last().joins.map((j) => j.room), ["project:p1", "project:p2", "activity-feed"]);
    client.close();
  });

  test("a refused token stops reconnecting and is reported once", async () => {
    let calls = 0;
    const errors = [];
    const { client, transport } = await started(null, {
      token: () => { calls += 1; return "t"; },
      onAuthError: (error) => errors.push(error),
      backoff: { minMs: 1, maxMs: 1 },
    });
    transport.last().events.closed({ kind: "auth", code: "invalid_token", message: "bad signature" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(transport.opened.length, 1);
    assert.equal(calls, 1);
    assert.equal(client.status, "offline");
    assert.ok(errors[0] instanceof AuthError);
    assert.equal(errors[0].code, "invalid_token");
    client.close();
  });

  test("an expired token is replaced at once; other drops retry with backoff", async () => {
    const reasons = [];
    const { client, transport } = await started(null, {
      token: ({ reason }) => { reasons.push(reason); return `t${reasons.length}`; },
      backoff: { minMs: 20, maxMs: 20 },
    });
    transport.last().events.ready(null);
    transport.last().events.closed({ kind: "token_expired", message: "expired" });
    await tick();
    assert.equal(transport.last().token, "t2");
    transport.last().events.ready(null);
    transport.last().events.closed({ kind: "retry", code: 1012, message: "restarting" });
    assert.equal(client.status, "offline");
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.deepEqual(reasons, ["connect", "token_expired", "reconnect"]);
    assert.equal(transport.opened.length, 3);
    client.close();
  });

  test("a token refused as expired when connecting is asked for once more, then reported", async () => {
    const reasons = [];
    const errors = [];
    const { client, transport } = await started(null, {
      token: ({ reason }) => { reasons.push(reason); return "stale"; },
      onAuthError: (error) => errors.push(error.code),
    });
    transport.last().events.closed({ kind: "auth", code: "token_expired", message: "the token has expired" });
    await tick();
    transport.last().events.closed({ kind: "auth", code: "token_expired", message: "the token has expired" });
    await tick();
    assert.deepEqual(reasons, ["connect", "token_expired"]);
    assert.deepEqual(errors, ["token_expired"]);
    assert.equal(transport.opened.length, 2);
    assert.equal(client.status, "offline");
  });

  test("a token provider that throws AuthError stops the client with that code", async () => {
    const errors = [];
    const { client, transport } = await started(null, {
      token: () => { throw new AuthError("token_expired", "sign in again"); },
      onAuthError: (error) => errors.push(error.code),
    });
    assert.equal(transport.opened.length, 0);
    assert.deepEqual(errors, ["token_expired"]);
    assert.equal(client.status, "offline");
  });

  test("backoff has full jitter under an exponential cap", () => {
    assert.equal(backoffDelay(0, { minMs: 500, maxMs: 15000 }, () => 0), 0);
    assert.equal(backoffDelay(0, { minMs: 500, maxMs: 15000 }, () => 0.999), 499);
    assert.equal(backoffDelay(3, { minMs: 500, maxMs: 15000 }, () => 0.999), 3996);
    assert.equal(backoffDelay(40, { minMs: 500, maxMs: 15000 }, () => 0.999), 14985);
  });

  test("stored state is checked when read back", () => {
    assert.equal(parseResumeState("x"), null);
    assert.deepEqual(parseResumeState({ epoch: "e", offsets: { a: 3, b: "x", c: -2 } }), { epoch: "e", offsets: { a: 3 } });
  });
});
