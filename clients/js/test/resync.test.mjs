// A resume the bridge cannot serve: the application's resync handler runs, then the room's
// snapshot arrives as state, then live events; the stored epoch and offset are the new log's.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connect, memoryStore } from "../dist/index.js";
import { Bridge, Publisher, TRANSPORTS, record, uniquePrefix, waitFor } from "./support.mjs";

for (const transport of TRANSPORTS) {
  describe(`resync (${transport})`, () => {
    let bridge;
    let publisher;
    before(async () => {
      bridge = await Bridge.start({ prefix: uniquePrefix() });
      publisher = await Publisher.open(bridge.prefix);
    });
    after(async () => {
      await publisher?.close();
      await bridge?.close();
    });

    for (const [reason, spoil] of [
      ["epoch_mismatch", (state) => ({ ...state, epoch: "not-this-log" })],
      ["future_offset", (state) => ({ ...state, offsets: { "project:p5": state.offsets["project:p5"] + 1_000_000 } })],
    ]) {
      test(`${reason}: handler called, snapshot delivered, then live events`, async () => {
        // Each read by the bridge before the next step, so the first client's join finds them.
        const base = await bridge.lastOffset("p5");
        const status = await publisher.publish("agent_status", "p5", { agent_id: "a1", status: "running" });
        await bridge.waitHandled("p5", base);
        const afterStatus = await bridge.lastOffset("p5");
        const progress = await publisher.publish("progress_update", "p5", { agent_id: "a1", progress: 0.4 });
        await bridge.waitHandled("p5", afterStatus);
        const store = memoryStore();
        const first = connect({ url: bridge.url, transport, store });
        const firstRecord = record(first);
        let seen;
        try {
          await first.subscribe({ project: "p5" });
          seen = await publisher.publish("agent_status", "p5", { agent_id: "a1", status: "waiting" });
          await waitFor(() => firstRecord.has([seen.id]), "the first client's live event");
        } finally {
          first.close();
        }

        const before = await bridge.lastOffset("p5");
        const missed = await publisher.publish("deployment_log", "p5", { deployment_id: "d", stream: "stdout", line: "gone" });
        await bridge.waitHandled("p5", before); // else it may reach the next client live
        const spoilt = memoryStore(spoil(store.state));
        const order = [];
        const client = connect({
          url: bridge.url,
          transport,
          store: spoilt,
          onResync: (info) => order.push(["resync", info]),
        });
        client.onEvent((event, meta) => order.push([meta.snapshot ? "snapshot" : "event", event.id]));
        try {
          const join = await client.subscribe({ project: "p5" });
          await waitFor(() => order.some(([kind]) => kind === "resync"), "the resync notice");
          await waitFor(() => order.filter(([kind]) => kind === "snapshot").length === 2, "the snapshot");
          const live = await publisher.publish("agent_status", "p5", { agent_id: "a1", status: "succeeded" });
          await waitFor(() => order.some(([, id]) => id === live.id), "the live event");
          const [kind, info] = order[0];
          assert.equal(kind, "resync");
          assert.equal(info.reason, reason);
          assert.equal(info.room, "project:p5");
          assert.equal(info.epoch, join.epoch);
          assert.equal(info.offset, join.offset);
          assert.equal(info.since, spoil(store.state).offsets["project:p5"]);
          // The snapshot: the latest status and progress of the agent, as state.
          assert.deepEqual(order.slice(1, 3).map(([k]) => k), ["snapshot", "snapshot"]);
          assert.deepEqual(new Set(order.slice(1, 3).map(([, id]) => id)), new Set([seen.id, progress.id]));
          assert.deepEqual(order.slice(3), [["event", live.id]]);
          assert.ok(!order.some(([, id]) => id === missed.id || id === status.id));
          assert.deepEqual(client.resumeState.epoch, join.epoch);
          await waitFor(() => client.status === "live", "live");
        } finally {
          client.close();
        }
      });
    }
  });
}
