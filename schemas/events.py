"""The v1 event types: one pydantic model per `data` payload, and the type registry.

Every model keeps unknown fields (`extra="allow"`): producers may add fields, and the bridge
forwards them untouched.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from schemas.envelope import Envelope

Text = Annotated[str, StringConstraints(min_length=1, max_length=256)]
LongText = Annotated[str, StringConstraints(max_length=8192)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class EventType(StrEnum):
    """Every v1 event type, as it appears in the envelope's `type` and the routing key."""

    AGENT_STATUS = "agent_status"
    PROGRESS_UPDATE = "progress_update"
    GENERATION_COMPLETE = "generation_complete"
    ERROR = "error"
    ACTIVITY_CREATED = "activity_created"
    STEP_UPDATED = "step_updated"
    STEP_COMPLETED = "step_completed"
    DEPLOYMENT_STATUS = "deployment_status"
    DEPLOYMENT_LOG = "deployment_log"


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


AgentState = Literal["idle", "queued", "running", "waiting", "succeeded", "failed", "cancelled"]


class AgentStatus(_Data):
    """An agent changed state."""

    agent_id: Text
    status: AgentState
    message: LongText | None = None


class ProgressUpdate(_Data):
    """An agent reports how far it got, as a fraction from 0.0 to 1.0."""

    agent_id: Text
    progress: Fraction
    stage: Text | None = None
    message: LongText | None = None


class Artifact(_Data):
    """One thing a generation produced."""

    name: Text
    uri: LongText | None = None
    kind: Text | None = None


class GenerationComplete(_Data):
    """An agent finished generating, with what it produced."""

    agent_id: Text
    generation_id: Text | None = None
    artifacts: list[Artifact]
    summary: LongText | None = None


class ErrorEvent(_Data):
    """Something failed; `retryable` tells whether trying again may help."""

    agent_id: Text | None = None
    code: Text
    message: LongText
    retryable: bool


class ActivityCreated(_Data):
    """A person or agent did something worth showing in an activity feed."""

    actor: Text
    action: Text
    target: Text | None = None
    activity_type: Text | None = None
    priority: Literal["low", "normal", "high", "critical"] = "normal"
    summary: LongText | None = None


class StepUpdated(_Data):
    """A workflow step changed."""

    workflow_id: Text
    step_id: Text
    user_id: Text | None = None
    status: Text | None = None
    changes: dict[str, Any]


class StepCompleted(_Data):
    """A workflow step finished."""

    workflow_id: Text
    step_id: Text
    user_id: Text | None = None
    result: Any = None


class DeploymentStatus(_Data):
    """A deployment changed state or progressed."""

    deployment_id: Text
    status: Text
    progress: Fraction | None = None
    message: LongText | None = None


class DeploymentLog(_Data):
    """One line a deployment wrote."""

    deployment_id: Text
    stream: Literal["stdout", "stderr"]
    line: Annotated[str, StringConstraints(max_length=16384)]


EVENT_MODELS: dict[str, type[BaseModel]] = {
    EventType.AGENT_STATUS: AgentStatus,
    EventType.PROGRESS_UPDATE: ProgressUpdate,
    EventType.GENERATION_COMPLETE: GenerationComplete,
    EventType.ERROR: ErrorEvent,
    EventType.ACTIVITY_CREATED: ActivityCreated,
    EventType.STEP_UPDATED: StepUpdated,
    EventType.STEP_COMPLETED: StepCompleted,
    EventType.DEPLOYMENT_STATUS: DeploymentStatus,
    EventType.DEPLOYMENT_LOG: DeploymentLog,
}
"""The type registry: event type → model of its `data`."""

SOCKETIO_EVENT_NAMES: dict[str, str] = {
    EventType.ACTIVITY_CREATED: "activity-created",
    EventType.STEP_UPDATED: "step-updated",
    EventType.STEP_COMPLETED: "step-completed",
}
"""Socket.IO event names that differ from the event type (docs/clients.md, "Socket.IO")."""


SNAPSHOT_SUBJECTS: dict[str, str] = {
    EventType.AGENT_STATUS: "agent_id",
    EventType.PROGRESS_UPDATE: "agent_id",
    EventType.DEPLOYMENT_STATUS: "deployment_id",
}
"""Event types that describe state, and the `data` field naming whose state (the snapshot a
fresh join receives holds the latest event per subject: docs/delivery-guarantees.md,
"Snapshots")."""


def socketio_event_name(event_type: str) -> str:
    """Name the Socket.IO event an event of `event_type` is emitted as."""
    return SOCKETIO_EVENT_NAMES.get(event_type, event_type)


def event_schema(event_type: str) -> dict[str, Any]:
    """Return the JSON Schema of a whole event (envelope and data) of one type."""
    envelope = Envelope.model_json_schema()
    data = EVENT_MODELS[event_type].model_json_schema()
    defs = {**envelope.pop("$defs", {}), **data.pop("$defs", {})}
    properties = dict(envelope["properties"])
    properties["type"] = {"const": event_type, "title": "Type"}
    properties["data"] = data
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://eventbridge.dev/schemas/v1/{event_type}.json",
        "title": f"eventbridge v1 {event_type} event",
        "type": "object",
        "properties": properties,
        "required": envelope["required"],
        "additionalProperties": True,
    }
    if defs:
        schema["$defs"] = defs
    return schema
