"""The client protocol of both transports as models: requests, replies, notices and errors.

The wire contract between the bridge and its clients (docs/clients.md): the native WebSocket's
JSON frames (`/ws`) and the Socket.IO events and acknowledgements (`/socket.io/`). Events
themselves are the envelope plus `offset` (`DeliveredEnvelope`). These models describe what
travels; `schemas.export` writes their JSON Schemas to `jsonschema/protocol.json` and
`schemas.asyncapi` builds the AsyncAPI document from them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from schemas.codes import CloseReason, ErrorCode, ResyncReason
from schemas.envelope import Envelope, ProjectId
from schemas.events import ActivityCreated, StepCompleted, StepUpdated
from schemas.presence import PRESENCE_MODELS

Offset = Annotated[int, Field(ge=-1, description="A position in the bridge's event log.")]
Since = Annotated[
    int,
    Field(ge=-1, description="The offset of the last event of this room the client processed."),
]
Epoch = Annotated[str, Field(description="Names one incarnation of the event log.")]
Room = Annotated[
    str,
    StringConstraints(pattern=r"^(activity-feed|project:[A-Za-z0-9_-]{1,64})$"),
    Field(description="`activity-feed` or `project:<project_id>`."),
]


AuthErrorCode = Literal[ErrorCode.AUTH_REQUIRED, ErrorCode.INVALID_TOKEN, ErrorCode.TOKEN_EXPIRED]
"""The codes of a refused connection."""
DisconnectReason = Literal[
    CloseReason.TOKEN_EXPIRED,
    CloseReason.SLOW_CONSUMER,
    CloseReason.FLOODING,
    CloseReason.SHUTDOWN,
]
"""Why the bridge ends a Socket.IO session (`bridge-disconnect`); the native WebSocket says it
in its close frame."""


class _Message(BaseModel):
    """A protocol message: unknown fields are allowed, so newer bridges can add fields."""

    model_config = ConfigDict(extra="allow", frozen=True)


class DeliveredEnvelope(Envelope):
    """An event as a client receives it: the envelope plus its position in the log."""

    offset: int = Field(ge=0, description="The event's offset in the bridge's event log.")


# -- both transports ---------------------------------------------------------------------------


class ResyncNotice(_Message):
    """The bridge cannot resume `room`: the events after the join's `since` will not come.

    The room's snapshot follows (offsets at or below `offset`), then live events above it.
    """

    room: Room
    reason: ResyncReason
    epoch: Epoch
    offset: Offset = Field(description="Where live delivery of the room resumes.")


# -- native WebSocket: client → bridge ---------------------------------------------------------


class WsAuth(_Message):
    """The first message on a bridge that requires tokens."""

    type: Literal["auth"]
    token: str = Field(description="A JSON Web Token; never put it in the URL.")


class WsPing(_Message):
    """Keeps proxies from closing an idle connection; answered `pong`."""

    type: Literal["ping"]


class WsSubscribe(_Message):
    """Join a room (`project_id` or `room`), resuming after `since` when given."""

    type: Literal["subscribe"]
    project_id: ProjectId | None = None
    room: Room | None = None
    since: Since | None = None
    epoch: Epoch | None = None


class WsUnsubscribe(_Message):
    """Leave a room (`project_id` or `room`)."""

    type: Literal["unsubscribe"]
    project_id: ProjectId | None = None
    room: Room | None = None


# -- native WebSocket: bridge → client ---------------------------------------------------------


class WsAuthenticated(_Message):
    """The token was accepted: what it grants."""

    type: Literal["authenticated"]
    subject: str | None = Field(description="The token's `sub`.")
    projects: list[str] | Literal["*"] = Field(description="The projects granted, or every one.")
    activity_feed: bool = Field(description="Whether the activity feed is granted.")
    expires_at: float | None = Field(
        description="Unix seconds at which the bridge closes the connection (4401)."
    )
    anonymous: bool = Field(description="True on a bridge with EVENTBRIDGE_AUTH=anonymous.")


class WsPong(_Message):
    """The answer to `ping`."""

    type: Literal["pong"]


class WsSubscribed(_Message):
    """The answer to `subscribe`; the room's catch-up, notice or snapshot follows."""

    type: Literal["subscribed"]
    room: Room
    epoch: Epoch
    offset: Offset = Field(description="The newest offset the bridge has handled (its head).")


class WsUnsubscribed(_Message):
    """The answer to `unsubscribe`."""

    type: Literal["unsubscribed"]
    room: Room


class WsRequestError(_Message):
    """A request was refused; the connection stays open (except after a refused `auth`)."""

    type: Literal["request_error"]
    code: ErrorCode
    message: str = Field(description="What was wrong and what to send instead.")
    request: str | None = Field(description="The refused request's `type`, when known.")


class WsResyncRequired(ResyncNotice):
    """`ResyncNotice` as a WebSocket frame."""

    type: Literal["resync_required"]


# -- Socket.IO ---------------------------------------------------------------------------------


class SioAuth(_Message):
    """The handshake's `auth` payload (ignored by an anonymous bridge)."""

    token: str | None = None


class SioConnectErrorData(_Message):
    """`err.data` of the `connect_error` a refused token gets."""

    code: AuthErrorCode


class SioJoinProject(_Message):
    """`join-project` (a bare project id string is accepted too)."""

    project_id: ProjectId
    since: Since | None = None
    epoch: Epoch | None = None


class SioLeaveProject(_Message):
    """`leave-project` (a bare project id string is accepted too)."""

    project_id: ProjectId


class SioJoinActivityFeed(_Message):
    """`join-activity-feed` (or no payload at all)."""

    since: Since | None = None
    epoch: Epoch | None = None


class SioJoinAck(_Message):
    """The acknowledgement of a join; the room's catch-up, notice or snapshot follows."""

    ok: Literal[True]
    room: Room
    epoch: Epoch
    offset: Offset = Field(description="The newest offset the bridge has handled (its head).")


class SioLeaveAck(_Message):
    """The acknowledgement of a leave."""

    ok: Literal[True]
    room: Room


class SioError(_Message):
    """Why a Socket.IO request was refused."""

    code: ErrorCode
    message: str


class SioErrorAck(_Message):
    """The acknowledgement of a refused request; the connection stays open."""

    ok: Literal[False]
    error: SioError


class SioNewActivity(ActivityCreated):
    """`new-activity`: `activity_created` data, and the project it belongs to (none: global)."""

    project_id: ProjectId | None = None


class SioStepUpdated(StepUpdated):
    """`step-updated`: `step_updated` data and its project."""

    project_id: ProjectId


class SioStepCompleted(StepCompleted):
    """`step-completed`: `step_completed` data and its project."""

    project_id: ProjectId


class SioClientEventAck(_Message):
    """The acknowledgement of a client event: published, confirmed, and on its way to rooms."""

    ok: Literal[True]
    id: str = Field(description="The id of the event the bridge published.")


class SioBridgeDisconnect(_Message):
    """Sent just before the bridge disconnects the client."""

    reason: DisconnectReason


_MODELS: tuple[type[BaseModel], ...] = (
    DeliveredEnvelope,
    ResyncNotice,
    WsAuth,
    WsPing,
    WsSubscribe,
    WsUnsubscribe,
    WsAuthenticated,
    WsPong,
    WsSubscribed,
    WsUnsubscribed,
    WsRequestError,
    WsResyncRequired,
    SioAuth,
    SioConnectErrorData,
    SioJoinProject,
    SioLeaveProject,
    SioJoinActivityFeed,
    SioJoinAck,
    SioLeaveAck,
    SioError,
    SioErrorAck,
    SioNewActivity,
    SioStepUpdated,
    SioStepCompleted,
    SioClientEventAck,
    SioBridgeDisconnect,
    *PRESENCE_MODELS,
)
PROTOCOL_MODELS: dict[str, type[BaseModel]] = {model.__name__: model for model in _MODELS}
"""Every protocol message model by name, as exported to `jsonschema/protocol.json`."""

CLIENT_EVENT_MODELS: dict[str, type[BaseModel]] = {
    "new-activity": SioNewActivity,
    "step-updated": SioStepUpdated,
    "step-completed": SioStepCompleted,
}
"""Socket.IO client-originated event name → payload model (Socket.IO only)."""


def protocol_schema() -> dict[str, Any]:
    """The JSON Schema of every protocol message, each under `$defs` by its model's name."""
    defs: dict[str, Any] = {}
    for name, model in PROTOCOL_MODELS.items():
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[name] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://eventbridge.dev/schemas/v1/protocol.json",
        "title": "eventbridge client protocol",
        "description": (
            "Requests, replies and notices of the native WebSocket (/ws) and Socket.IO "
            "(/socket.io/) transports; each message is one entry of $defs."
        ),
        "$defs": dict(sorted(defs.items())),
    }
