"""Joining and leaving rooms, for both transports: validating requests, authorizing them, and
handing them to the hub.

Both transports translate their own request shapes into these calls, so a join means the same
thing over Socket.IO and over the native WebSocket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.core.hub import Hub
from bridge.core.subscription import Joined
from bridge.edge.transports.base import EdgeConnection
from bridge.errors import RequestError
from schemas.codes import ErrorCode
from schemas.routing import ACTIVITY_FEED, is_valid_project_id, project_room


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """A validated request to join one room, optionally resuming after `since`."""

    room: str
    since: int | None = None
    epoch: str | None = None


def project_room_of(project_id: object) -> str:
    """Return the room of a project id, or raise a `RequestError` saying what is wrong with it."""
    if not isinstance(project_id, str):
        raise RequestError(ErrorCode.INVALID_PROJECT_ID, "project_id must be a string")
    if not is_valid_project_id(project_id):
        raise RequestError(
            ErrorCode.INVALID_PROJECT_ID,
            f"project_id {project_id[:80]!r} must be 1-64 characters of letters, digits, '_' "
            "or '-'",
        )
    return project_room(project_id)


def room_of(room: object) -> str:
    """Check a room name given directly (`activity-feed` or `project:<id>`)."""
    if room == ACTIVITY_FEED:
        return ACTIVITY_FEED
    if isinstance(room, str) and room.startswith("project:"):
        return project_room_of(room.removeprefix("project:"))
    shown = room[:80] if isinstance(room, str) else room
    raise RequestError(
        ErrorCode.UNKNOWN_ROOM,
        f"room {shown!r} does not exist; use 'activity-feed' or 'project:<id>'",
    )


def resume_fields(payload: dict[str, Any]) -> tuple[int | None, str | None]:
    """Read the optional `since` and `epoch` of a join request."""
    since = payload.get("since")
    epoch = payload.get("epoch")
    if since is not None and (isinstance(since, bool) or not isinstance(since, int) or since < -1):
        raise RequestError(
            ErrorCode.INVALID_PAYLOAD, "since must be an integer offset (-1 or more)"
        )
    if epoch is not None and not isinstance(epoch, str):
        raise RequestError(ErrorCode.INVALID_PAYLOAD, "epoch must be a string")
    return since, epoch


async def join(hub: Hub, connection: EdgeConnection, request: JoinRequest) -> Joined:
    """Put the connection in the room if its grant allows; return the reply fields (`room`,
    `epoch`, `offset`) and the continuation the transport runs right after queueing the reply.

    Raises:
        RequestError: `forbidden`, `too_many_rooms` or `not_connected`.
    """
    connection.grant.require(request.room)
    return await hub.join(connection, request.room, request.since, request.epoch)


def leave(hub: Hub, connection: EdgeConnection, room: str) -> dict[str, Any]:
    """Take the connection out of the room (leaving a room one is not in is not an error)."""
    hub.leave(connection, room)
    return {"room": room}
