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
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.types import Message
from starlette.websockets import WebSocketState

from bridge.auth import AUTH_REQUIRED, TOKEN_EXPIRED, Authenticator, AuthError, Grant
from bridge.decoding import Event
from bridge.delivery import SLOW_CONSUMER, ClientConnection
from bridge.errors import RequestError
from bridge.limits import FLOODING, RATE_LIMITED, RateLimiter, Verdict
from bridge.origins import OriginPolicy, origin_of
from bridge.resume import Continuation
from bridge.service import BridgeService
from bridge.subscriptions import JoinRequest, Subscriptions, project_room_of, resume_fields, room_of
from bridge.transports.sockets import current_transport

logger = logging.getLogger(__name__)

_ids = itertools.count(1)
IDLE = "idle"
CLOSE_REASONS = {
    SLOW_CONSUMER: (1013, "slow consumer: too many events queued; reconnect and resume by offset"),
    "shutdown": (1012, "the bridge is restarting; reconnect and resume by offset"),
    FLOODING: (1008, "flooding: far more messages per second than allowed; slow down"),
    IDLE: (1000, "idle: no room joined and nothing sent; subscribe, or send ping to stay"),
    TOKEN_EXPIRED: (4401, "token_expired: reconnect with a fresh token and resume by offset"),
}
AUTH_CLOSE_CODE = 4401
"""Close code of a connection whose authentication failed (4000-4999 are the application's)."""
MAX_CLOSE_REASON_BYTES = 123


class WebSocketConnection(ClientConnection):
    """One native WebSocket client."""

    transport = "websocket"

    def __init__(self, websocket: WebSocket, *, limit: int, max_bytes: int) -> None:
        super().__init__(f"ws-{next(_ids)}", limit=limit, max_bytes=max_bytes)
        self._websocket = websocket
        self._tcp = current_transport()

    def tcp_transport(self) -> asyncio.Transport | None:
        """The TCP connection under this WebSocket."""
        return self._tcp

    def frame(self, event: Event) -> str:
        """The envelope plus `offset`, as one JSON text frame."""
        return event.json_frame

    def notice(self, name: str, payload: dict[str, Any]) -> str:
        """A notice as a typed frame: `resync-required` becomes `{"type": "resync_required"}`."""
        return json.dumps({"type": name.replace("-", "_"), **payload}, separators=(",", ":"))

    async def write(self, frame: str) -> None:
        """Send one text frame; waits while the socket's buffer is full."""
        await self._websocket.send_text(frame)

    def reply(self, message: dict[str, Any]) -> None:
        """Queue a reply behind the events already queued, so order is kept."""
        self.push(json.dumps(message, separators=(",", ":")))

    async def disconnect(self, reason: str) -> None:
        """Close with a code and a reason the client can read."""
        code, text = CLOSE_REASONS.get(reason, (1011, reason))
        self._closed = True
        if self._websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, OSError):
                await self._websocket.close(code, text)


def _request_error(code: str, message: str, request: object) -> dict[str, Any]:
    return {
        "type": "request_error",
        "code": code,
        "message": message,
        "request": request if isinstance(request, str) else None,
    }


class WebSocketHandler:
    """Answers the messages of one native WebSocket connection (CONTRACT.md section 5)."""

    def __init__(
        self,
        service: BridgeService,
        subscriptions: Subscriptions,
        origins: OriginPolicy,
        authenticator: Authenticator,
    ) -> None:
        self._service = service
        self._subscriptions = subscriptions
        self._origins = origins
        self._authenticator = authenticator

    def handle(self, connection: WebSocketConnection, text: str) -> None:
        """Handle one client frame; every failure becomes a `request_error` reply."""
        request_type: object = None
        try:
            message = _parse_request(text)
            request_type = message.get("type")
            answer, then = self._answer(connection, request_type, message)
        except RequestError as exc:
            connection.reply(_request_error(exc.code, exc.message, request_type))
            return
        connection.reply(answer)
        then()

    def _answer(
        self, connection: WebSocketConnection, request_type: object, message: dict[str, Any]
    ) -> tuple[dict[str, Any], Continuation]:
        if request_type == "ping":
            return {"type": "pong"}, _nothing
        if request_type == "auth":
            if not connection.grant.anonymous:
                raise RequestError(
                    "already_authenticated",
                    "this connection is already authenticated; to use another token, reconnect "
                    "and resume by offset",
                )
            return {"type": "authenticated", **connection.grant.describe()}, _nothing
        if request_type == "subscribe":
            since, epoch = resume_fields(message)
            request = JoinRequest(_target_room(message), since, epoch)
            reply, then = self._subscriptions.join(connection, request)
            return {"type": "subscribed", **reply}, then
        if request_type == "unsubscribe":
            left = self._subscriptions.leave(connection, _target_room(message))
            return {"type": "unsubscribed", **left}, _nothing
        shown = request_type[:40] if isinstance(request_type, str) else request_type
        raise RequestError(
            "unknown_type",
            f"unknown message type {shown!r}; use auth, ping, subscribe or unsubscribe",
        )

    async def serve(self, websocket: WebSocket, project_id: str | None) -> None:
        """Run one connection until the client leaves (or refuse it before it opens)."""
        if not self._origins.allows(websocket.headers.getlist("origin"), websocket.scope):
            await _refuse(websocket)
            return
        await websocket.accept()
        settings = self._service.settings
        connection = WebSocketConnection(
            websocket, limit=settings.outbox_size, max_bytes=settings.outbox_max_bytes
        )
        self._service.rooms.add(connection)
        try:
            grant = await self._authenticate(websocket, connection)
            if grant is None:
                return
            connection.start()
            connection.authorize(grant)
            if self._authenticator.required:
                connection.reply({"type": "authenticated", **grant.describe()})
            if project_id is not None:
                self.handle(connection, json.dumps({"type": "subscribe", "project_id": project_id}))
            await self._converse(websocket, connection)
        except WebSocketDisconnect:
            pass
        finally:
            self._service.rooms.remove(connection)
            await connection.stop()

    async def _converse(self, websocket: WebSocket, connection: WebSocketConnection) -> None:
        """Answer the client's frames, within its rate limit, until it leaves or is closed."""
        limiter = RateLimiter(self._service.settings.max_messages_per_second)
        while True:
            received = await self._receive(websocket, connection)
            if received is None:
                await connection.close(IDLE)
                return
            if received["type"] == "websocket.disconnect":
                return
            verdict = limiter.take()
            if verdict is Verdict.CLOSE:
                logger.warning(
                    "closing WebSocket client %s: flooding (far above %g messages/s)",
                    connection.id,
                    limiter.rate,
                )
                await connection.close(FLOODING)
                return
            if verdict is Verdict.REFUSE:
                connection.reply(_request_error(RATE_LIMITED, limiter.refusal(), None))
            elif received.get("text") is not None:
                self.handle(connection, received["text"])
            else:
                connection.reply(
                    _request_error(
                        "invalid_payload", "binary frames are not supported; send JSON text", None
                    )
                )

    async def _authenticate(
        self, websocket: WebSocket, connection: WebSocketConnection
    ) -> Grant | None:
        """The connection's grant: from its first message `{"type": "auth", "token": ...}` when
        tokens are required, else anonymous. None when it was refused (and closed) or left."""
        if not self._authenticator.required:
            return self._authenticator.verify(None)
        timeout = self._service.settings.auth_timeout
        try:
            async with asyncio.timeout(timeout):
                received = await websocket.receive()
        except TimeoutError:
            await _refuse_auth(
                websocket,
                connection,
                AuthError(AUTH_REQUIRED, f"no auth message within {timeout:g} s"),
            )
            return None
        if received["type"] == "websocket.disconnect":
            return None
        try:
            return self._authenticator.verify(_token_of(received.get("text")))
        except AuthError as exc:
            await _refuse_auth(websocket, connection, exc)
            return None

    async def _receive(
        self, websocket: WebSocket, connection: WebSocketConnection
    ) -> Message | None:
        """The next message from the client; None when it stayed idle too long.

        Idle means: in no room and nothing sent for `idle_timeout` seconds. Rooms change only
        through this connection's own requests, so checking them before each wait is exact.
        """
        idle_timeout = self._service.settings.idle_timeout
        if connection.rooms or not idle_timeout:
            return await websocket.receive()
        try:
            async with asyncio.timeout(idle_timeout):
                return await websocket.receive()
        except TimeoutError:
            logger.info(
                "closing WebSocket client %s: idle for %g s in no room", connection.id, idle_timeout
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
            AUTH_REQUIRED, 'the first message must be {"type": "auth", "token": "<JWT>"}'
        )
    return message["token"] or None


async def _refuse_auth(
    websocket: WebSocket, connection: WebSocketConnection, exc: AuthError
) -> None:
    """Say why in a `request_error` frame, then close with 4401 and the same reason."""
    logger.info("refused WebSocket client %s: %s (%s)", connection.id, exc.code, exc.message)
    reason = f"{exc.code}: {exc.message}".encode()[:MAX_CLOSE_REASON_BYTES]
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        await websocket.send_text(
            json.dumps(_request_error(exc.code, exc.message, "auth"), separators=(",", ":"))
        )
        await websocket.close(AUTH_CLOSE_CODE, reason.decode(errors="ignore"))


def _nothing() -> None:
    return None


def _parse_request(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise RequestError("invalid_json", f"the frame is not JSON: {exc}") from exc
    except RecursionError as exc:  # json raises this, not ValueError, for very deep nesting
        raise RequestError("invalid_json", "the frame's JSON is nested too deeply") from exc
    if not isinstance(message, dict):
        raise RequestError("invalid_payload", "a request must be a JSON object")
    return message


def _target_room(message: dict[str, Any]) -> str:
    if "project_id" in message:
        return project_room_of(message["project_id"])
    if "room" in message:
        return room_of(message["room"])
    raise RequestError("invalid_payload", "give project_id or room")


def websocket_routes(handler: WebSocketHandler) -> APIRouter:
    """The WebSocket endpoints, bound to one handler."""
    router = APIRouter()

    @router.websocket("/ws")
    @router.websocket("/ws/ai")
    async def websocket_endpoint(websocket: WebSocket) -> None:
        await handler.serve(websocket, None)

    @router.websocket("/ws/ai/{project_id}")
    async def project_websocket_endpoint(websocket: WebSocket, project_id: str) -> None:
        await handler.serve(websocket, project_id)

    return router
