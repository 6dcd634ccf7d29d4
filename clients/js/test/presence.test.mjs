// Presence: a client in a project room knows who else is in it, over either transport, and is
// told when a member leaves; a state it sets reaches the others and survives its reconnects
// (docs/clients.md, "Presence").

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connect, memoryStore } from "../dist/index.js";
import { Bridge, TRANSPORTS, uniquePrefix, waitFor } from "./support.mjs";

describe("presence", () => {
  let bridge;
  before(async () => {
    bridge = await Bridge.start({ prefix: uniquePrefix() });
  });
  after(async () => {
    await bridge?.close();
  });

  test("members of both transports see each other, and a leaving member goes", async () => {
    const seen = [];
    const ws = connect({
      url: bridge.url,
      transport: "websocket",
      store: memoryStore(),
      onPresence: (project, members) => seen.push([project, members.length]),
    });
    const sio = connect({ url: bridge.url, transport: "socketio", store: memoryStore() });
    try {
      await ws.subscribe({ project: "p1" });
      await sio.subscribe({ project: "p1" });
      const both = () => ws.presence("p1").length === 2 && sio.presence("p1").length === 2;
      await waitFor(both, "both members on both clients", {
        describe: () => JSON.stringify([ws.presence("p1"), sio.presence("p1")]),
      });
      for (const member of ws.presence("p1")) {
        assert.equal(member.connections, 1);
        assert.equal(typeof member.since, "number");
        assert.equal(member.state, null);
      }
      assert.deepEqual(seen[0], ["p1", 1]); // its own list, itself only
      sio.close();
      await waitFor(() => ws.presence("p1").length === 1, "the Socket.IO member to leave");
      assert.deepEqual(seen.at(-1), ["p1", 1]);
      assert.deepEqual(ws.presence("p2"), []);
    } finally {
      ws.close();
      sio.close();
    }
  });
});

for (const transport of TRANSPORTS) {
  describe(`presence state (${transport})`, () => {
    let bridge;
    before(async () => {
      bridge = await Bridge.start({ prefix: uniquePrefix() });
    });
    after(async () => {
      await bridge?.close();
    });

    test("a state set by one member reaches the others, is cleared, and is set again after a reconnect", async () => {
      const other = transport === "websocket" ? "socketio" : "websocket";
      const setter = connect({ url: bridge.url, transport, store: memoryStore() });
      const observer = connect({ url: bridge.url, transport: other, store: memoryStore() });
      const stateOf = (members) => members.find((m) => m.state !== null)?.state ?? null;
      try {
        await observer.subscribe({ project: "p1" });
        await setter.subscribe({ project: "p1" });
        const set = await setter.setPresence("p1", { editing: "step-3" });
        assert.deepEqual(set, { editing: "step-3" });
        await waitFor(() => stateOf(observer.presence("p1"))?.editing === "step-3", "the state at the observer", {
          describe: () => JSON.stringify(observer.presence("p1")),
        });
        const first = observer.presence("p1").find((m) => m.state !== null).user_id;

        assert.equal(await setter.setPresence("p1", null), null);
        await waitFor(() => observer.presence("p1").every((m) => m.state === null), "the state cleared");
        await setter.setPresence("p1", { editing: "step-4" });

        setter.connect(); // a new connection: the bridge forgets the old one's state
        const again = () =>
          observer.presence("p1").find((m) => m.user_id !== first && m.state?.editing === "step-4");
        await waitFor(again, "the state set again by the new connection", {
          describe: () => JSON.stringify(observer.presence("p1")),
        });
        assert.equal(observer.presence("p1").length, 2); // the old connection left
      } finally {
        setter.close();
        observer.close();
      }
    });

    test("a state waits for its room's join, and is refused with a clear error: not subscribed, too large", async () => {
      const client = connect({ url: bridge.url, transport, store: memoryStore() });
      try {
        await assert.rejects(client.setPresence("p9", { a: 1 }), (error) => {
          assert.equal(error.name, "RequestError");
          assert.equal(error.code, "not_joined");
          assert.match(error.message, /subscribe to project:p9/);
          return true;
        });
        const joining = client.subscribe({ project: "p2" });
        // Set while the join is on its way: it waits for the join, then sets the state.
        assert.deepEqual(await client.setPresence("p2", { early: true }), { early: true });
        assert.equal((await joining).room, "project:p2");
        await assert.rejects(client.setPresence("p2", { note: "x".repeat(2000) }), (error) => {
          assert.equal(error.name, "RequestError");
          assert.equal(error.code, "too_large");
          assert.equal(error.request, transport === "websocket" ? "presence_update" : "presence-update");
          return true;
        });
        await assert.rejects(client.setPresence("p2", ["not", "an", "object"]), TypeError);
        assert.deepEqual(await client.setPresence("p2", { ok: true }), { ok: true }); // still usable
      } finally {
        client.close();
      }
    });
  });
}
