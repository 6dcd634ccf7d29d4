// Tokens against a bridge that requires them: expiry → the provider is called again and every
// room resumes gap-free; a refused token is surfaced once, without hammering the bridge.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connect, memoryStore } from "../dist/index.js";
import { Bridge, Publisher, TRANSPORTS, duplicates, record, sleep, uniquePrefix, waitFor } from "./support.mjs";

for (const transport of TRANSPORTS) {
  describe(`tokens (${transport})`, () => {
    let bridge;
    let publisher;
    before(async () => {
      bridge = await Bridge.start({ prefix: uniquePrefix(), auth: "jwt" });
      publisher = await Publisher.open(bridge.prefix);
    });
    after(async () => {
      await publisher?.close();
      await bridge?.close();
    });

    test("an expiring token is refreshed through the provider and the rooms resume: 0 lost, 0 duplicates", async () => {
      const reasons = [];
      const client = connect({
        url: bridge.url,
        transport,
        store: memoryStore(),
        backoff: { minMs: 100, maxMs: 1000 },
        token: ({ reason }) => {
          reasons.push(reason);
          return bridge.token({ projects: ["p1"], activityFeed: true, ttl: 4 });
        },
      });
      const recorded = record(client);
      const published = [];
      try {
        client.subscribe({ project: "p1" });
        client.subscribe("activity-feed");
        await waitFor(() => client.status === "live", "live");
        const deadline = Date.now() + 9_000; // two expiries or more
        let n = 0;
        while (Date.now() < deadline) {
          published.push(await publisher.publish("progress_update", "p1", { agent_id: "a", progress: (n % 100) / 100 }));
          published.push(await publisher.publish("activity_created", null, { actor: "ops", action: `#${n}` }));
          n += 1;
          await sleep(40);
        }
        const wanted = published.map((e) => e.id);
        await waitFor(() => recorded.has(wanted), `all ${wanted.length} events`, { timeoutMs: 20_000 });
        await sleep(300);
        const ids = recorded.ids();
        console.log(`# ${transport}: ${wanted.length} published, ${ids.length} delivered, ` +
          `lost ${wanted.filter((id) => !ids.includes(id)).length}, duplicates ${duplicates(ids).length}, ` +
          `provider calls ${JSON.stringify(reasons)}`);
        assert.deepEqual(duplicates(ids), []);
        assert.deepEqual(ids.filter((id) => wanted.includes(id)).length, wanted.length);
        assert.equal(reasons[0], "connect");
        assert.ok(reasons.filter((r) => r === "token_expired").length >= 1, JSON.stringify(reasons));
      } finally {
        client.close();
      }
    });

    test("a refused token is reported once; the client stops instead of retrying", async () => {
      let calls = 0;
      const refusals = [];
      const client = connect({
        url: bridge.url,
        transport,
        store: memoryStore(),
        backoff: { minMs: 10, maxMs: 20 },
        token: () => {
          calls += 1;
          return "not-a-jwt";
        },
        onAuthError: (error) => refusals.push(error),
      });
      try {
        client.subscribe({ project: "p1" });
        await waitFor(() => refusals.length === 1, "the refusal");
        await sleep(1500);
        assert.equal(calls, 1);
        assert.equal(refusals.length, 1);
        assert.equal(refusals[0].code, "invalid_token");
        assert.equal(client.status, "offline");
      } finally {
        client.close();
      }
    });

    test("without a token the bridge says auth_required, and a room the token lacks is refused", async () => {
      const refusals = [];
      const anonymous = connect({ url: bridge.url, transport, store: memoryStore(), onAuthError: (e) => refusals.push(e.code) });
      anonymous.subscribe({ project: "p1" });
      await waitFor(() => refusals.length === 1, "the refusal");
      assert.deepEqual(refusals, ["auth_required"]);
      anonymous.close();

      const errors = [];
      const client = connect({
        url: bridge.url,
        transport,
        store: memoryStore(),
        token: () => bridge.token({ projects: ["p1"] }),
        onError: (error) => errors.push(error.code),
      });
      try {
        const joined = client.subscribe({ project: "p1" });
        const feed = client.subscribe("activity-feed");
        assert.equal((await joined).room, "project:p1");
        await assert.rejects(feed, { name: "RequestError", code: "forbidden" });
        assert.deepEqual(client.rooms, ["project:p1"]);
        await waitFor(() => client.status === "live", "live with the granted room");
        assert.deepEqual(errors, ["forbidden"]);
      } finally {
        client.close();
      }
    });
  });
}
