"""The native WebSocket transport: JSON text frames at `/ws`, `/ws/ai`, `/ws/ai/<project_id>`.

Before a connection is accepted its `Origin` is checked (a refused handshake gets HTTP 403).
Once open, every frame the client sends passes the rate limit; a connection in no room that sends
nothing for `idle_timeout` seconds is closed. Frames larger than `max_frame_bytes` never reach
this module: uvicorn closes the connection with 1009 (see `bridge.cli.serve.uvicorn_config`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketState

from bridge.core.connection import Frame
from bridge.core.events import Event
from bridge.core.hub import Hub
from bridge.core.subscription import Continuation, Joined, nothing
from bridge.core.tally import AUTH_REFUSED, bump
from bridge.edge import requests
from bridge.edge.auth import Authenticator, Grant
from bridge.edge.limits import RateLimiter, Verdict
from bridge.edge.origins import OriginPolicy, origin_of
from bridge.edge.presence import PresenceRooms
from bridge.edge.requests import JoinRequest, project_room_of, resume_fields, room_of
from bridge.edge.transports import frames
from bridge.edge.transports.base import EdgeConnection
from bridge.edge.transports.closes import AUTH_CLOSE_CODE, CLOSE_REASONS, MAX_CLOSE_REASON_BYTES
from bridge.edge.transports.sockets import current_transport
from bridge.errors import AuthError, RequestError
from bridge.settings import Settings
from bridge.upstream.uvicorn import direct_writer_of, text_frame
from schemas.codes import CloseReason, ErrorCode

logger = logging.getLogger(__name__)

_ids = itertools.count(1)


class WebSocketConnection(EdgeConnection):
    """One native WebSocket client."""

    transport = "websocket"

    def __init__(self, websocket: WebSocket, *, limit: int, max_bytes: int) -> None:
        super().__init__(f"ws-{next(_ids)}", limit=limit, max_bytes=max_bytes)
        self._websocket = websocket
        self._tcp = current_transport()
        self._direct = direct_writer_of(websocket.scope)

    def tcp_transport(self) -> asyncio.Transport | None:
        """The TCP connection under this WebSocket."""
        return self._tcp

    def frame(self, event: Event) -> Frame:
        """The envelope plus `offset`, as one JSON text frame (built once per event)."""
        if self._direct is not None:
            return frames.websocket_frame(event)
        return frames.websocket_text(event)

    def notice(self, name: str, payload: dict[str, Any]) -> Frame:
        """A notice as a typed frame: `resync-required` becomes `{"type": "resync_required"}`."""
        return self._text({"type": name.replace("-", "_"), **payload})

    def notice_key(self) -> object:
        """Notices are ready frames on a direct socket, text otherwise."""
        return (self.transport, self._direct is None)

    def _text(self, message: dict[str, Any]) -> Frame:
        text = frames.message_text(message)
        return text if self._direct is None else text_frame(text.encode())

    def write_now(self, frame: Frame) -> bool:
        """Write a ready frame straight to the socket if it can take it now."""
        direct = self._direct
        return direct is not None and isinstance(frame, bytes) and direct.try_write(frame)

    async def write(self, frame: Frame) -> None:
        """Send one frame; waits while the socket's buffer is full."""
        if isinstance(frame, bytes):
            assert self._direct is not None
            if not await self._direct.write(frame):
                self._closed = True  # the connection closed: nothing more to write
            return
        await self._websocket.send_text(frame)

    def reply(self, message: dict[str, Any]) -> None:
        """Send a reply behind the events already queued, so order is kept."""
        self.push_reply(self._text(message))

    async def disconnect(self, reason: CloseReason) -> None:
        """Close with a code and a reason the client can read."""
        code, text = CLOSE_REASONS[reason]
        self._closed = True
        if self._websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, OSError):
                await self._websocket.close(code, text)


def _request_error(code: ErrorCode, message: str, request: object) -> dict[str, Any]:
    return {
        "type": "request_error",
        "code": code,
        "message": message,
        "request": request if isinstance(request, str) else None,
    }


class WebSocketHandler:
    """Answers the messages of native WebSocket connections (docs/clients.md, "Native
    WebSocket")."""

    def __init__(
        self,
        hub: Hub,
        settings: Settings,
        origins: OriginPolicy,
        authenticator: Authenticator,
        presence: PresenceRooms,
    ) -> None:
        self._hub = hub
        self._presence = presence
        self._presence_requests = presence.websocket_requests()
        self._settings = settings
        self._origins = origins
        self._authenticator = authenticator

    async def handle(self, connection: WebSocketConnection, text: str) -> None:
        """Handle one client frame; every failure becomes a `request_error` reply."""
        request_type: object = None
        try:
            message = _parse_request(text)
            request_type = message.get("type")
            answer, then = await self._answer(connection, request_type, message)
        except RequestError as exc:
            connection.reply(_request_error(exc.code, exc.message, request_type))
            return
        connection.reply(answer)
        then()

    async def _answer(
        self, connection: WebSocketConnection, request_type: object, message: dict[str, Any]
    ) -> tuple[dict[str, Any], Continuation]:
        if request_type == "ping":
            return {"type": "pong"}, nothing
        if request_type == "auth":
            if not connection.grant.anonymous:
                raise RequestError(
                    ErrorCode.ALREADY_AUTHENTICATED,
                    "this connection is already authenticated; to use another token, reconnect "
                    "and resume by offset",
                )
            return {"type": "authenticated", **connection.grant.describe()}, nothing
        if request_type == "subscribe":
            since, epoch = resume_fields(message)
            request = JoinRequest(_target_room(message), since, epoch)
            joined: Joined = await requests.join(self._hub, connection, request)
            joined = self._presence.joined(connection, request.room, joined)
            return {"type": "subscribed", **joined.reply}, joined.then
        if request_type == "unsubscribe":
            left = requests.leave(self._hub, connection, _target_room(message))
            self._presence.left(connection, left["room"])
            return {"type": "unsubscribed", **left}, nothing
        if isinstance(request_type, str) and request_type in self._presence_requests:
            reply_type, answer = self._presence_requests[request_type]
            return {"type": reply_type, **answer(connection, message)}, nothing
        shown = request_type[:40] if isinstance(request_type, str) else request_type
        raise RequestError(
            ErrorCode.UNKNOWN_TYPE,
            f"unknown message type {shown!r}; use auth, ping, subscribe or unsubscribe",
        )

    async def serve(self, websocket: WebSocket, project_id: str | None) -> None:
        """Run one connection until the client leaves (or refuse it before it opens)."""
        if not self._origins.allows(websocket.headers.getlist("origin"), websocket.scope):
            self._hub.tally.origin_refusals += 1
            await _refuse(websocket)
            return
        await websocket.accept()
        settings = self._settings
        connection = WebSocketConnection(
            websocket, limit=settings.outbox_size, max_bytes=settings.outbox_max_bytes
        )
        self._hub.add(connection)
        try:
            grant = await self._authenticate(websocket, connection)
            if grant is None:
                return
            connection.authorize(grant)
            if self._authenticator.required:
                connection.reply({"type": "authenticated", **grant.describe()})
            if project_id is not None:
                subscribe = {"type": "subscribe", "project_id": project_id}
                await self.handle(connection, json.dumps(subscribe))
            await self._converse(websocket, connection)
        except WebSocketDisconnect:
            pass
        finally:
            self._presence.closed(connection)
            self._hub.remove(connection)
            await connection.stop()

    async def _converse(self, websocket: WebSocket, connection: WebSocketConnection) -> None:
        """Answer the client's frames, within its rate limit, until it leaves or is closed."""
        limiter = RateLimiter(self._settings.max_messages_per_second)
        while True:
            received = await self._receive(websocket, connection)
            if received is None:
                await connection.close(CloseReason.IDLE)
                return
            if received["type"] == "websocket.disconnect":
                return
            verdict = limiter.take()
            if verdict is not Verdict.ALLOW:
                connection.tally.rate_limited += 1
            if verdict is Verdict.CLOSE:
                logger.warning(
                    "closing WebSocket client %s: flooding (far above %g messages/s)",
                    connection.id,
                    limiter.rate,
                    extra=connection.log_ids(CloseReason.FLOODING),
                )
                await connection.close(CloseReason.FLOODING)
                return
            if verdict is Verdict.REFUSE:
                connection.reply(_request_error(ErrorCode.RATE_LIMITED, limiter.refusal(), None))
            elif received.get("text") is not None:
                await self.handle(connection, received["text"])
            else:
                connection.reply(
                    _request_error(
                        ErrorCode.INVALID_PAYLOAD,
                        "binary frames are not supported; send JSON text",
                        None,
                    )
                )

    async def _authenticate(
        self, websocket: WebSocket, connection: WebSocketConnection
    ) -> Grant | None:
        """The connection's grant: from its first message `{"type": "auth", "token": ...}` when
        tokens are required, else anonymous. None when it was refused (and closed) or left."""
        if not self._authenticator.required:
            return self._authenticator.verify(None)
        timeout = self._settings.auth_timeout
        try:
            async with asyncio.timeout(timeout):
                received = await websocket.receive()
        except TimeoutError:
            await self._refuse_auth(
                websocket,
                connection,
                AuthError(ErrorCode.AUTH_REQUIRED, f"no auth message within {timeout:g} s"),
            )
            return None
        if received["type"] == "websocket.disconnect":
            return None
        try:
            return self._authenticator.verify(_token_of(received.get("text")))
        except AuthError as exc:
            await self._refuse_auth(websocket, connection, exc)
            return None

    async def _refuse_auth(
        self, websocket: WebSocket, connection: WebSocketConnection, exc: AuthError
    ) -> None:
        bump(self._hub.tally.auth_refusals, exc.code)
        connection.close_reason = AUTH_REFUSED
        await _refuse_auth(websocket, connection, exc)

    async def _receive(
        self, websocket: WebSocket, connection: WebSocketConnection
    ) -> Message | None:
        """The next message from the client; None when it stayed idle too long.

        Idle means: in no room and nothing sent for `idle_timeout` seconds. Rooms change only
        through this connection's own requests, so checking them before each wait is exact.
        """
        idle_timeout = self._settings.idle_timeout
        if self._hub.rooms_of(connection) or not idle_timeout:
            return await websocket.receive()
        try:
            async with asyncio.timeout(idle_timeout):
                return await websocket.receive()
        except TimeoutError:
            logger.info(
                "closing WebSocket client %s: idle for %g s in no room",
                connection.id,
                idle_timeout,
                extra=connection.log_ids(CloseReason.IDLE),
            )
            return None


async def _refuse(websocket: WebSocket) -> None:
    """Refuse the handshake: closing before accepting makes uvicorn answer HTTP 403.

    (A denial response with a body would say more, but uvicorn 0.54 then logs an error for
    every refusal; and browsers show neither: their WebSocket just fails with code 1006.)
    """
    logger.warning(
        "refused a WebSocket connection from origin %r: not the bridge's own origin and not in "
        "EVENTBRIDGE_ALLOWED_ORIGINS",
        origin_of(websocket.scope),
    )
    await websocket.close(1008)


def _token_of(text: str | None) -> object:
    """The token of a first message `{"type": "auth", "token": "<JWT>"}`.

    Raises:
        AuthError: the message is anything else (`auth_required`).
    """
    message: object = None
    if text is not None and len(text) < 16_384:
        with contextlib.suppress(ValueError, RecursionError):
            message = json.loads(text)
    if not isinstance(message, dict) or message.get("type") != "auth" or "token" not in message:
        raise AuthError(
            ErrorCode.AUTH_REQUIRED, 'the first message must be {"type": "auth", "token": "<JWT>"}'
        )
    return message["token"] or None


async def _refuse_auth(
    websocket: WebSocket, connection: WebSocketConnection, exc: AuthError
) -> None:
    """Say why in a `request_error` frame, then close with 4401 and the same reason."""
    logger.info(
        "refused WebSocket client %s: %s (%s)",
        connection.id,
        exc.code,
        exc.message,
        extra=connection.log_ids(exc.code),
    )
    reason = f"{exc.code}: {exc.message}".encode()[:MAX_CLOSE_REASON_BYTES]
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        await websocket.send_text(
            json.dumps(_request_error(exc.code, exc.message, "auth"), separators=(",", ":"))
        )
        await websocket.close(AUTH_CLOSE_CODE, reason.decode(errors="ignore"))


def _parse_request(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise RequestError(ErrorCode.INVALID_JSON, f"the frame is not JSON: {exc}") from exc
    except RecursionError as exc:  # json raises this, not ValueError, for very deep nesting
        raise RequestError(ErrorCode.INVALID_JSON, "the frame's JSON is nested too deeply") from exc
    if not isinstance(message, dict):
        raise RequestError(ErrorCode.INVALID_PAYLOAD, "a request must be a JSON object")
    return message


def _target_room(message: dict[str, Any]) -> str:
    if "project_id" in message:
        return project_room_of(message["project_id"])
    if "room" in message:
        return room_of(message["room"])
    raise RequestError(ErrorCode.INVALID_PAYLOAD, "give project_id or room")


PATHS = re.compile(r"/ws(?:/ai(?:/(?P<project_id>[^/]+))?)?")
"""The native WebSocket endpoints: `/ws`, `/ws/ai` and `/ws/ai/<project_id>`."""


def websocket_app(handler: WebSocketHandler, other: ASGIApp) -> ASGIApp:
    """An ASGI app serving the native WebSocket endpoints with `handler`, and everything else
    with `other` (FastAPI). The endpoints are matched here rather than by FastAPI's router,
    which would keep a few kilobytes of routing state alive per open connection."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            matched = PATHS.fullmatch(scope["path"])
            if matched is not None:
                # ASGI paths arrive percent-decoded already.
                await handler.serve(WebSocket(scope, receive, send), matched["project_id"])
                return
        await other(scope, receive, send)

    return app
