// Client-originated events: acknowledged with the published event's id over Socket.IO, which
// then arrives through the room; refused as unsupported on the native WebSocket.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connect, memoryStore } from "../dist/index.js";
import { Bridge, record, uniquePrefix, waitFor } from "./support.mjs";

describe("client events", () => {
  let bridge;
  before(async () => {
    bridge = await Bridge.start({ prefix: uniquePrefix() });
  });
  after(async () => {
    await bridge?.close();
  });

  test("Socket.IO: new-activity, step-updated, step-completed are acked and come back once", async () => {
    const client = connect({ url: bridge.url, transport: "socketio", store: memoryStore() });
    const recorded = record(client);
    try {
      await client.subscribe({ project: "p1" });
      const acks = [
        await client.emit("new-activity", { project_id: "p1", actor: "alice", action: "commented" }),
        await client.emit("step-updated", { project_id: "p1", workflow_id: "w", step_id: "s", changes: { title: "New" } }),
        await client.emit("step-completed", { project_id: "p1", workflow_id: "w", step_id: "s" }),
      ];
      for (const ack of acks) assert.equal(ack.ok, true);
      await waitFor(() => recorded.has(acks.map((ack) => ack.id)), "the events");
      assert.deepEqual(recorded.seen.map(({ event }) => event.type), ["activity_created", "step_updated", "step_completed"]);
      assert.deepEqual(recorded.ids(), acks.map((ack) => ack.id));
      await assert.rejects(
        client.emit("step-updated", { project_id: "p1", workflow_id: "w", step_id: "s" }),
        { name: "RequestError", code: "invalid_data" },
      );
    } finally {
      client.close();
    }
  });

  test("native WebSocket: client events are not part of its protocol", async () => {
    const client = connect({ url: bridge.url, transport: "websocket", store: memoryStore() });
    try {
      await client.subscribe({ project: "p1" });
      await assert.rejects(
        client.emit("new-activity", { actor: "alice", action: "commented" }),
        { name: "UnsupportedError", message: /Socket\.IO/ },
      );
    } finally {
      client.close();
    }
  });
});
