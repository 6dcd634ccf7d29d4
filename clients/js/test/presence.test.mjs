// Presence: a client in a project room knows who else is in it, over either transport, and is
// told when a member leaves (docs/clients.md, "Presence").

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connect, memoryStore } from "../dist/index.js";
import { Bridge, uniquePrefix, waitFor } from "./support.mjs";

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
