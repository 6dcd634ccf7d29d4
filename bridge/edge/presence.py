"""Presence at the client edge, for both transports and HTTP (docs/clients.md, "Presence").

Who a connection is (its token's `sub` and `name`; in anonymous mode an id of its own), the
`presence` list a client gets right after joining a project room, the `presence` and
`presence-update` requests, and `GET /api/projects/<project_id>/presence`. The members
themselves are kept by `bridge.core.presence.Presence`; the transports call this module and
nothing else of presence. With presence turned off (`EVENTBRIDGE_PRESENCE=false`) every call is
a no-op and the requests do not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Header, HTTPException

from bridge.core.presence import LISTED, Presence
from bridge.core.presence_messages import PROJECT_ROOM_PREFIX
from bridge.core.subscription import Joined
from bridge.edge.auth import Authenticator
from bridge.edge.requests import project_room_of
from bridge.edge.transports.base import EdgeConnection
from bridge.errors import AuthError, RequestError
from schemas.codes import ErrorCode

Answer = Callable[[EdgeConnection, Any], dict[str, Any]]
"""A presence request's handler: (connection, payload) to the reply fields."""


class PresenceRooms:
    """Presence for the transports: a no-op when `presence` is None (turned off)."""

    def __init__(self, presence: Presence | None) -> None:
        self.presence = presence

    def identity(self, connection: EdgeConnection) -> tuple[str, str | None]:
        """The user id and display name the connection is present as."""
        grant = connection.grant
        if grant.anonymous or grant.subject is None:
            replica = self.presence.replica[:8] if self.presence is not None else "local"
            return f"anonymous-{replica}-{connection.id}", None
        return grant.subject, grant.name

    def joined(self, connection: EdgeConnection, room: str, joined: Joined) -> Joined:
        """The connection joined `room`: it is present there from now on, and right after the
        join's reply (and what the reply's continuation queues) it gets the room's members."""
        presence = self.presence
        if presence is None or not room.startswith(PROJECT_ROOM_PREFIX):
            return joined  # the activity feed has no presence
        user, name = self.identity(connection)
        if not presence.enter(connection, room, user, name):
            return joined  # joined again: answered, nothing resent (its list included)
        then = joined.then

        def then_list_members() -> None:
            then()
            connection.notify(LISTED, presence.listing(room, connection))

        return Joined(joined.reply, then_list_members)

    def left(self, connection: EdgeConnection, room: str) -> None:
        """The connection left `room`."""
        if self.presence is not None:
            self.presence.leave(connection, room)

    def closed(self, connection: EdgeConnection) -> None:
        """The connection closed: it leaves every room's presence."""
        if self.presence is not None:
            self.presence.remove(connection)

    def socketio_requests(self) -> dict[str, Answer]:
        """The Socket.IO events of presence (none when it is turned off)."""
        if self.presence is None:
            return {}
        return {"presence": self.listing, "presence-update": self.update}

    def websocket_requests(self) -> dict[str, tuple[str, Answer]]:
        """The native WebSocket requests of presence, with their reply types."""
        if self.presence is None:
            return {}
        return {
            "presence": ("presence", self.listing),
            "presence_update": ("presence_state", self.update),
        }

    def listing(self, connection: EdgeConnection, payload: Any) -> dict[str, Any]:
        """Answer a `presence` request: the members of a project the connection may join.

        Raises:
            RequestError: a bad project id (`invalid_project_id`, `invalid_payload`) or one the
                token does not grant (`forbidden`).
        """
        assert self.presence is not None
        room = _room_of(payload)
        connection.grant.require(room)
        return self.presence.listing(room, connection)

    def update(self, connection: EdgeConnection, payload: Any) -> dict[str, Any]:
        """Answer a `presence-update`: set the connection's state in a project it is in.

        Raises:
            RequestError: `invalid_payload`, `not_joined`, `too_large` or `rate_limited`.
        """
        assert self.presence is not None
        room = _room_of(payload)
        if not isinstance(payload, dict) or "state" not in payload:
            raise RequestError(
                ErrorCode.INVALID_PAYLOAD, 'send {"project_id": "<id>", "state": {...} or null}'
            )
        state = payload["state"]
        self.presence.set_state(connection, room, state)
        return {"project_id": room.removeprefix(PROJECT_ROOM_PREFIX), "state": state}


def _room_of(payload: Any) -> str:
    if isinstance(payload, str):
        return project_room_of(payload)
    if isinstance(payload, dict) and "project_id" in payload:
        return project_room_of(payload["project_id"])
    raise RequestError(ErrorCode.INVALID_PAYLOAD, 'send {"project_id": "<id>"}')


def presence_routes(rooms: PresenceRooms, authenticator: Authenticator) -> APIRouter:
    """`GET /api/projects/{project_id}/presence`: the project's members, for servers.

    Authorized like a join: with tokens required it needs `Authorization: Bearer <JWT>` (401
    without a valid one) granting the project (403 otherwise); 404 while presence is off.
    """
    router = APIRouter()

    @router.get("/api/projects/{project_id}/presence")
    async def project_presence(
        project_id: str,
        authorization: str | None = Header(None, include_in_schema=False),
    ) -> dict[str, Any]:
        presence = rooms.presence
        if presence is None:
            raise HTTPException(
                404, "presence is turned off on this bridge (EVENTBRIDGE_PRESENCE=false)"
            )
        token = None
        if authorization is not None and authorization[:7].lower() == "bearer ":
            token = authorization[7:].strip()
        try:
            grant = authenticator.verify(token)
            room = project_room_of(project_id)
        except AuthError as exc:
            raise HTTPException(
                401,
                {"code": exc.code, "message": exc.message},
                headers={"WWW-Authenticate": "Bearer"},
            ) from None
        except RequestError as exc:
            raise HTTPException(400, {"code": exc.code, "message": exc.message}) from None
        if not grant.allows(room):
            raise HTTPException(
                403,
                {"code": ErrorCode.FORBIDDEN, "message": f"the token does not grant {room}"},
            )
        return presence.listing(room)

    return router
