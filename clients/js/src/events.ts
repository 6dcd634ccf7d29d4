// Event types as the application sees them, and the rooms they are counted in.

import type {
  ActivityCreated,
  ActivityCreatedEnvelope,
  AgentStatus,
  AgentStatusEnvelope,
  DeploymentLog,
  DeploymentLogEnvelope,
  DeploymentStatus,
  DeploymentStatusEnvelope,
  ErrorEnvelope,
  ErrorEvent,
  GenerationComplete,
  GenerationCompleteEnvelope,
  ProgressUpdate,
  ProgressUpdateEnvelope,
  SioNewActivity,
  SioStepCompleted,
  SioStepUpdated,
  StepCompleted,
  StepCompletedEnvelope,
  StepUpdated,
  StepUpdatedEnvelope,
} from "./generated/schemas.js";

/** Each v1 event type → its envelope (as published). */
export interface EventEnvelopes {
  agent_status: AgentStatusEnvelope;
  progress_update: ProgressUpdateEnvelope;
  generation_complete: GenerationCompleteEnvelope;
  error: ErrorEnvelope;
  activity_created: ActivityCreatedEnvelope;
  step_updated: StepUpdatedEnvelope;
  step_completed: StepCompletedEnvelope;
  deployment_status: DeploymentStatusEnvelope;
  deployment_log: DeploymentLogEnvelope;
}

/** Each v1 event type → the type of its `data`. */
export interface EventData {
  agent_status: AgentStatus;
  progress_update: ProgressUpdate;
  generation_complete: GenerationComplete;
  error: ErrorEvent;
  activity_created: ActivityCreated;
  step_updated: StepUpdated;
  step_completed: StepCompleted;
  deployment_status: DeploymentStatus;
  deployment_log: DeploymentLog;
}

/** A v1 event type: `agent_status`, `progress_update`, ... */
export type EventType = keyof EventEnvelopes;

export const EVENT_TYPES: readonly EventType[] = [
  "agent_status",
  "progress_update",
  "generation_complete",
  "error",
  "activity_created",
  "step_updated",
  "step_completed",
  "deployment_status",
  "deployment_log",
];

/** An event of type `T` as delivered: its envelope plus `offset`, its position in the log. */
export type EventOf<T extends EventType> = EventEnvelopes[T] & {
  offset: number;
  /** Set on events an operator re-sent with `eventbridge replay`. */
  replayed?: boolean;
};

/** Any v1 event as delivered; `switch (event.type)` narrows it. */
export type BridgeEvent = { [T in EventType]: EventOf<T> }[EventType];

/** How an event reached the application. */
export interface DeliveryMeta {
  /** The room the event is counted in (its offset advanced that room's resume point). */
  room: string;
  /**
   * True for the room's current state sent after a fresh join or a resync (the latest
   * `agent_status`, `progress_update` and `deployment_status` per agent or deployment): state to
   * apply, which the application may have seen before; it does not move the resume point.
   */
  snapshot: boolean;
}

/** Client-originated events (Socket.IO only) → their payload. */
export interface ClientEvents {
  "new-activity": SioNewActivity;
  "step-updated": SioStepUpdated;
  "step-completed": SioStepCompleted;
}

export type ClientEventName = keyof ClientEvents;

/** The room that receives every `activity_created` event, of any project or none. */
export const ACTIVITY_FEED = "activity-feed";

const PROJECT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** `project:<project_id>`. */
export function projectRoom(projectId: string): string {
  if (!PROJECT_ID.test(projectId)) {
    throw new TypeError(
      `project id ${JSON.stringify(projectId)} must be 1-64 letters, digits, '_' or '-'`,
    );
  }
  return `project:${projectId}`;
}

/** A room to subscribe to: `"activity-feed"`, `"project:<id>"`, or `{ project: "<id>" }`. */
export type RoomTarget = string | { project: string };

/** The room name of a `RoomTarget` (throws a TypeError for anything else). */
export function roomName(target: RoomTarget): string {
  if (typeof target === "object" && target !== null) return projectRoom(target.project);
  if (target === ACTIVITY_FEED) return target;
  if (typeof target === "string" && target.startsWith("project:")) {
    return projectRoom(target.slice("project:".length));
  }
  throw new TypeError(
    `unknown room ${JSON.stringify(target)}: use "activity-feed", "project:<id>" or {project}`,
  );
}

/**
 * The room an event is counted in, among `rooms` (docs/delivery-guarantees.md): its project's
 * room when that is one of them, else the activity feed for an activity, else none. A project's
 * activity belongs to both rooms; the bridge delivers it once, through the project room (joined
 * first), and it is counted there only, so the feed's resume point never skips older feed events.
 */
export function countingRoom(
  event: { type: string; project_id?: string | null },
  rooms: ReadonlySet<string>,
): string | null {
  if (typeof event.project_id === "string") {
    const room = `project:${event.project_id}`;
    if (rooms.has(room)) return room;
  }
  if (event.type === "activity_created" && rooms.has(ACTIVITY_FEED)) return ACTIVITY_FEED;
  return null;
}

/** Rooms in the order they are joined on every connection: project rooms first, then the feed. */
export function joinOrder(rooms: Iterable<string>): string[] {
  const list = [...rooms];
  return [...list.filter((room) => room !== ACTIVITY_FEED), ...list.filter((r) => r === ACTIVITY_FEED)];
}
