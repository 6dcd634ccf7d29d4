// The bridge crashes and restarts while events are published: every event of the client's rooms
// arrives exactly once (checked by id), on both transports.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connect, memoryStore } from "../dist/index.js";
import { Bridge, Publisher, TRANSPORTS, duplicates, record, sleep, uniquePrefix, waitFor } from "./support.mjs";

const TOTAL = 150;

/** The n-th event: p1 state and activities, global and p2 activities (the feed), p2 progress
 * (in none of the client's rooms). */
function nth(number) {
  switch (number % 6) {
    case 0: return ["progress_update", "p1", { agent_id: `a${number % 3}`, progress: (number % 100) / 100 }];
    case 1: return ["activity_created", "p1", { actor: "alice", action: `edited #${number}` }];
    case 2: return ["activity_created", null, { actor: "system", action: `announced #${number}` }];
    case 3: return ["activity_created", "p2", { actor: "bob", action: `commented #${number}` }];
    case 4: return ["deployment_log", "p1", { deployment_id: "d1", stream: "stdout", line: `line ${number}` }];
    default: return ["progress_update", "p2", { agent_id: "a9", progress: 0.5 }];
  }
}

const ours = (envelope) => envelope.project_id === "p1" || envelope.type === "activity_created";

for (const transport of TRANSPORTS) {
  describe(`bridge restarts (${transport})`, () => {
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

    test("killed and restarted while publishing: 0 lost, 0 duplicates, resumed per room", async () => {
      const joins = [];
      const client = connect({
        url: bridge.url,
        transport,
        store: memoryStore(),
        backoff: { minMs: 100, maxMs: 1000 },
        onJoined: (join) => joins.push(join),
      });
      const recorded = record(client);
      const resyncs = [];
      client.onResync((resync) => resyncs.push(resync));
      const published = [];
      try {
        client.subscribe({ project: "p1" });
        client.subscribe("activity-feed");
        await waitFor(() => client.status === "live", "live");
        // Publish until both outages are over and the client resumed after each, so that events
        // are published before, during and after each of them whatever the machine's speed.
        let stop = false;
        const publishing = (async () => {
          for (let n = 0; !stop || n < TOTAL; n += 1) {
            published.push(await publisher.publish(...nth(n)));
            await sleep(15);
          }
        })();
        const resumed = () => joins.filter((join) => join.since !== null).length;
        const more = async (count) => {
          const mark = published.length;
          await waitFor(() => published.length >= mark + count, `${count} more events published`);
        };
        await more(30);
        await bridge.stop("SIGKILL"); // a crash: connections just drop
        await more(10);
        await bridge.restart();
        await waitFor(() => resumed() >= 2, "both rooms resumed after the crash", { timeoutMs: 30_000 });
        await more(20);
        await bridge.stop("SIGTERM"); // a graceful restart: 1012 / bridge-disconnect shutdown
        await more(10);
        await bridge.restart();
        await waitFor(() => resumed() >= 4, "both rooms resumed after the restart", { timeoutMs: 30_000 });
        await more(20);
        stop = true;
        await publishing;
        const wanted = published.filter(ours).map((e) => e.id);
        // On a failure, say what is missing where, and what the client and the bridge saw.
        const missing = () => {
          const ids = new Set(recorded.ids());
          const gone = published.filter(ours).filter((e) => !ids.has(e.id));
          const inP1 = gone.filter((e) => e.project_id === "p1").length;
          return `missing ${gone.length} (project:p1 ${inP1}, activity-feed ${gone.length - inP1}); ` +
            `first missing: ${JSON.stringify(gone[0] ?? null)}; status ${client.status}; ` +
            `joins ${JSON.stringify(joins)}; resyncs ${JSON.stringify(resyncs)}; ` +
            `offsets ${JSON.stringify(client.resumeState)}; bridge output:\n${bridge.output.slice(-6000)}`;
        };
        await waitFor(() => recorded.has(wanted), `all ${wanted.length} events`, {
          timeoutMs: 30_000,
          describe: missing,
        });
        await sleep(500); // room for a late duplicate
        const ids = recorded.ids();
        const lost = wanted.filter((id) => !ids.includes(id));
        console.log(`# ${transport}: published ${published.length}, for the client ${wanted.length}, ` +
          `delivered ${ids.length}, lost ${lost.length}, duplicates ${duplicates(ids).length}`);
        assert.deepEqual(lost, []);
        assert.deepEqual(duplicates(ids), []);
        assert.equal(ids.length, wanted.length, "an event of another room was delivered");
        // Per room, publish order; and the client resumed (since) after each restart.
        for (const room of ["project:p1", "activity-feed"]) {
          const inRoom = recorded.seen.filter((s) => s.meta.room === room).map((s) => s.event.id);
          const expected = published.filter(ours).filter((e) => (e.project_id === "p1") === (room === "project:p1")).map((e) => e.id);
          assert.deepEqual(inRoom, expected, room);
        }
        assert.ok(resumed() >= 4, JSON.stringify(joins));
      } finally {
        client.close();
      }
    });
  });
}
