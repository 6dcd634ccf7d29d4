"""Presence in the client protocol, on both transports: who is in a project room, as the
`presence` list and the `presence-joined`, `presence-left` and `presence-updated` notices
(WebSocket: `_` for `-`), and the `presence` and `presence-update` requests (docs/clients.md,
"Presence"). Part of the protocol models (`schemas.protocol`), exported with them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.envelope import ProjectId


class _Message(BaseModel):
    """A protocol message: unknown fields are allowed, so newer bridges can add fields."""

    model_config = ConfigDict(extra="allow", frozen=True)


PresenceState = Annotated[
    dict[str, Any] | None,
    Field(
        description="A member's ephemeral state: a JSON object of at most "
        "EVENTBRIDGE_PRESENCE_STATE_MAX_BYTES (1024) bytes as compact JSON, or null. Never "
        "written to the event log."
    ),
]


class PresenceMember(_Message):
    """One user present in a project room, over every replica."""

    user_id: str = Field(
        description="The token's `sub`; in anonymous mode an id of the connection."
    )
    name: str | None = Field(description="The token's `name` claim, when it has one.")
    connections: int = Field(ge=1, description="The user's connections to the room.")
    since: float = Field(description="Unix seconds since which the user has been present.")
    state: PresenceState


class PresenceList(_Message):
    """`presence`: the members of a project room, right after joining it and on request."""

    project_id: ProjectId
    members: list[PresenceMember]


class PresenceJoined(_Message):
    """`presence-joined` / `presence_joined`: a user's first connection joined the room."""

    project_id: ProjectId
    member: PresenceMember


class PresenceUpdated(_Message):
    """`presence-updated` / `presence_updated`: a member's state or connection count changed."""

    project_id: ProjectId
    member: PresenceMember


class PresenceLeft(_Message):
    """`presence-left` / `presence_left`: a user's last connection left the room."""

    project_id: ProjectId
    user_id: str


class PresenceRequest(_Message):
    """Socket.IO `presence` (a bare project id string is accepted too): the current members."""

    project_id: ProjectId


class PresenceUpdate(_Message):
    """Socket.IO `presence-update`: set (or with null clear) the sender's state in a project
    room it is in; rate-limited."""

    project_id: ProjectId
    state: PresenceState


class SioPresenceAck(PresenceList):
    """The acknowledgement of `presence`."""

    ok: Literal[True]


class SioPresenceUpdateAck(_Message):
    """The acknowledgement of `presence-update`; the members get `presence-updated`."""

    ok: Literal[True]
    project_id: ProjectId
    state: PresenceState


class WsPresenceRequest(PresenceRequest):
    """`{"type": "presence", "project_id"}`: answered by a `presence` frame."""

    type: Literal["presence"]


class WsPresenceUpdate(PresenceUpdate):
    """`{"type": "presence_update", "project_id", "state"}`: answered `presence_state`."""

    type: Literal["presence_update"]


class WsPresence(PresenceList):
    """`PresenceList` as a WebSocket frame."""

    type: Literal["presence"]


class WsPresenceJoined(PresenceJoined):
    """`PresenceJoined` as a WebSocket frame."""

    type: Literal["presence_joined"]


class WsPresenceUpdated(PresenceUpdated):
    """`PresenceUpdated` as a WebSocket frame."""

    type: Literal["presence_updated"]


class WsPresenceLeft(PresenceLeft):
    """`PresenceLeft` as a WebSocket frame."""

    type: Literal["presence_left"]


class WsPresenceState(_Message):
    """The answer to `presence_update`: the state was set; the members get `presence_updated`."""

    type: Literal["presence_state"]
    project_id: ProjectId
    state: PresenceState


PRESENCE_MODELS: tuple[type[BaseModel], ...] = (
    PresenceMember,
    PresenceList,
    PresenceJoined,
    PresenceUpdated,
    PresenceLeft,
    PresenceRequest,
    PresenceUpdate,
    SioPresenceAck,
    SioPresenceUpdateAck,
    WsPresenceRequest,
    WsPresenceUpdate,
    WsPresence,
    WsPresenceJoined,
    WsPresenceUpdated,
    WsPresenceLeft,
    WsPresenceState,
)
"""Every presence message model, in the order `protocol.PROTOCOL_MODELS` lists them."""
