// A typed consumer of the package: `tsc --noEmit` must accept it (test/typecheck.test.mjs).
import { connect, memoryStore, type BridgeEvent, type EventOf, type PresenceState } from "@eventbridge/client";

const client = connect({ url: "http://127.0.0.1:8000", transport: "socketio", store: memoryStore() });
client.on("progress_update", (event, meta) => {
  const progress: number = event.data.progress;
  const stage: string | null | undefined = event.data.stage;
  const offset: number = event.offset;
  console.log(progress, stage, offset, meta.room, meta.snapshot);
});
client.on("deployment_log", (event) => {
  const stream: "stdout" | "stderr" = event.data.stream;
  console.log(stream, event.data.line);
});
client.onEvent((event: BridgeEvent) => {
  if (event.type === "agent_status") {
    const status: "idle" | "queued" | "running" | "waiting" | "succeeded" | "failed" | "cancelled" =
      event.data.status;
    console.log(status);
  }
});
const last: EventOf<"generation_complete"> | null = null;
console.log(last);
client.onResync(({ room, reason, epoch, offset }) => console.log(room, reason, epoch, offset));
void client.subscribe({ project: "p1" });
void client.emit("new-activity", { actor: "alice", action: "commented", priority: "high" });
void client.emit("step-completed", { project_id: "p1", workflow_id: "w", step_id: "s" });
void client.setPresence("p1", { editing: "step-3" }).then((state: PresenceState | null) => console.log(state));
void client.setPresence("p1", null, { timeoutMs: 5000 });
