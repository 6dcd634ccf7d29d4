// Every event type reaches its typed handler once, counted in the right room, on both transports.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connect, memoryStore } from "../dist/index.js";
import { Bridge, Publisher, TRANSPORTS, everyType, record, uniquePrefix, waitFor } from "./support.mjs";

for (const transport of TRANSPORTS) {
  describe(`receiving (${transport})`, () => {
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

    test("every event type reaches its typed handler once, in order, counted in its room", async () => {
      const statuses = [];
      const client = connect({
        url: bridge.url,
        transport,
        store: memoryStore(),
        onStatus: (status) => statuses.push(status),
      });
      const recorded = record(client);
      const progress = [];
      client.on("progress_update", (event) => progress.push(event.data.progress));
      try {
        await client.subscribe({ project: "p1" });
        await client.subscribe("activity-feed");
        await waitFor(() => client.status === "live", "live");
        const expected = [];
        for (const [type, project, data] of everyType("p1")) {
          expected.push(await publisher.publish(type, project, data));
          await publisher.publish("agent_status", "p2", { agent_id: "x", status: "idle" }); // not ours
        }
        expected.push(await publisher.publish("activity_created", "p2", { actor: "bob", action: "viewed" }));
        await waitFor(() => recorded.has(expected.map((e) => e.id)), "every event", {
          describe: () => JSON.stringify(recorded.seen.map((s) => s.event.type)),
        });
        assert.deepEqual(recorded.ids(), expected.map((e) => e.id));
        for (const { event, meta } of recorded.seen) {
          const sent = expected.find((e) => e.id === event.id);
          const { offset, ...envelope } = event;
          assert.deepEqual(envelope, sent);
          assert.equal(typeof offset, "number");
          assert.equal(meta.snapshot, false);
          assert.equal(meta.room, event.project_id === "p1" ? "project:p1" : "activity-feed");
        }
        assert.deepEqual(progress, [0.5]);
        assert.deepEqual(statuses.slice(0, 1), ["connecting"]);
        assert.equal(statuses.at(-1), "live");
        const offsets = client.resumeState.offsets;
        assert.equal(offsets["project:p1"], recorded.seen.filter((s) => s.meta.room === "project:p1").at(-1).event.offset);
      } finally {
        client.close();
      }
    });

    test("a fresh join delivers the project's state as snapshot, then live events", async () => {
      const state = await publisher.publish("agent_status", "p3", { agent_id: "a9", status: "waiting" });
      await bridge.waitHandled("p3"); // else the join may come first and the event arrive live
      const client = connect({ url: bridge.url, transport, store: memoryStore() });
      const recorded = record(client);
      try {
        const join = await client.subscribe({ project: "p3" });
        assert.equal(join.since, null);
        await waitFor(() => recorded.has([state.id]), "the snapshot");
        const live = await publisher.publish("agent_status", "p3", { agent_id: "a9", status: "running" });
        await waitFor(() => recorded.has([live.id]), "the live event");
        assert.deepEqual(
          recorded.seen.map(({ event, meta }) => [event.id, meta.snapshot]),
          [[state.id, true], [live.id, false]],
        );
        assert.equal(client.resumeState.offsets["project:p3"], recorded.seen[1].event.offset);
      } finally {
        client.close();
      }
    });
  });
}

