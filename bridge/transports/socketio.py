"""The Socket.IO transport: rooms, the three client-originated events, and bounded delivery.

Events are not emitted through python-socketio's per-recipient machinery: each event's packet is
encoded once (`Event.socketio_frame`) and written by this connection's own writer straight to
its Engine.IO socket, waiting while that socket's queue is backed up.

Engine.IO checks every request's `Origin` (`cors_allowed_origins`: a refused long-polling request
gets HTTP 400, a refused WebSocket handshake HTTP 403) and the size of what a client sends
(`max_http_buffer_size`; over WebSocket uvicorn closes a larger frame first, with 1009). Every
event a client emits passes the connection's rate limit before its handler runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import engineio
import socketio
from socketio import packet
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.auth import INVALID_TOKEN, Authenticator, AuthError
from bridge.client_events import CLIENT_EVENTS, build_client_event
from bridge.decoding import Event
from bridge.delivery import ClientConnection
from bridge.errors import RequestError
from bridge.limits import FLOODING, RATE_LIMITED, RateLimiter, Verdict
from bridge.origins import OriginPolicy
from bridge.resume import Continuation
from bridge.service import BridgeService
from bridge.subscriptions import JoinRequest, Subscriptions, project_room_of, resume_fields
from bridge.transports.sockets import current_transport, engineio_transport
from schemas.routing import ACTIVITY_FEED, project_room

logger = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[dict[str, Any]]]
"""A Socket.IO event handler: `(sid, *args)` to the acknowledgement."""

RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error", "*"})
"""Event names python-socketio dispatches to its own handlers."""

ENGINEIO_BACKLOG = 256
"""Packets allowed in an Engine.IO socket's own queue before our writer waits (a bound on what
one client can hold there, and large enough not to throttle a catch-up)."""


class BoundedEngineIO(engineio.AsyncServer):  # type: ignore[misc]
    """Engine.IO's server, ending a session without waiting for the client to collect it.

    python-engineio's `disconnect(sid)` waits until the CLOSE packet has been sent; a
    long-polling client that is not polling right then (one whose oversized or binary POST the
    server answers by disconnecting) never collects it, so the request and the session would
    hang for ever. Here the session is closed and forgotten at once, and its writer is told to
    stop: a WebSocket gets the CLOSE packet and is closed, a waiting poll gets the CLOSE packet.
    """

    async def disconnect(self, sid: str | None = None) -> None:
        """End one session (or all, as python-engineio does)."""
        if sid is None:
            await super().disconnect()
            return
        socket = self.sockets.pop(sid, None)
        if socket is None:
            return
        await socket.close(wait=False, reason=self.reason.SERVER_DISCONNECT)
        socket.queue.put_nowait(None)


MalformedHandler = Callable[[str], Awaitable[None]]
"""Called with the Engine.IO session id of a client that sent a packet that cannot be decoded."""


class StrictAsyncServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, refusing binary attachments (they would be buffered unbounded)
    and handling packets it cannot decode itself (python-socketio would log a traceback for
    each: a client could write ~700 bytes of log per 5-byte packet)."""

    on_malformed: MalformedHandler | None = None

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return BoundedEngineIO

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        if eio_sid not in self.eio.sockets:
            return  # the session was ended; what it still sends is dropped
        if isinstance(data, bytes) or data[:1] in ("5", "6") or eio_sid in self._binary_packet:
            logger.warning(
                "closing Socket.IO client %s: binary attachments are not accepted", eio_sid
            )
            self._binary_packet.pop(eio_sid, None)
            await self.eio.disconnect(eio_sid)
            return
        pkt = self._decode(data)
        if pkt is None:
            logger.debug("malformed Socket.IO packet from %s", eio_sid)
            if self.on_malformed is not None:
                await self.on_malformed(eio_sid)
            return
        if pkt.packet_type == packet.CONNECT:
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif pkt.packet_type == packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        elif pkt.packet_type == packet.EVENT:
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif pkt.packet_type == packet.ACK:
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)
        # CONNECT_ERROR is for servers to send; from a client it means nothing

    def _decode(self, data: str) -> Any:
        """The packet, or None when it is malformed (not decodable, or an event without a name
        list)."""
        try:
            pkt = self.packet_class(encoded_packet=data)
        except (ValueError, TypeError, KeyError, IndexError, RecursionError):
            return None
        if pkt.packet_type == packet.EVENT and not (isinstance(pkt.data, list) and pkt.data):
            return None
        return pkt

    async def _handle_event(
        self, eio_sid: str, namespace: str | None, id: int | None, data: list[Any]
    ) -> None:
        # Names python-socketio reserves for its own handlers must never be run by a client.
        if data and data[0] in RESERVED_EVENTS:
            if id is not None:
                error = RequestError("unknown_event", f"{data[0]!r} is reserved and cannot be sent")
                await self._send_packet(
                    eio_sid,
                    self.packet_class(
                        packet.ACK, namespace=namespace or "/", id=id, data=[_error(error)]
                    ),
                )
            return
        await super()._handle_event(eio_sid, namespace, id, data)


class SocketIOConnection(ClientConnection):
    """One Socket.IO client (namespace `/`)."""

    transport = "socketio"

    def __init__(
        self, server: socketio.AsyncServer, sid: str, *, limit: int, max_bytes: int, rate: float
    ) -> None:
        super().__init__(sid, limit=limit, max_bytes=max_bytes)
        self._server = server
        self._eio_sid: str = server.manager.eio_sid_from_sid(sid, "/")
        self._tcp = current_transport()  # a session opened over WebSocket
        self.limiter = RateLimiter(rate)

    def tcp_transport(self) -> asyncio.Transport | None:
        """The TCP connection under this session's WebSocket (None while long-polling)."""
        return engineio_transport(self._eio_sid) or self._tcp

    def frame(self, event: Event) -> str:
        """The Socket.IO EVENT packet for this event."""
        return event.socketio_frame

    def notice(self, name: str, payload: dict[str, Any]) -> str:
        """A notice as a Socket.IO EVENT packet named `name`."""
        return f"2{json.dumps([name, payload], separators=(',', ':'))}"

    async def write(self, frame: str) -> None:
        """Hand one packet to Engine.IO, waiting while its queue for this client is long."""
        socket = self._server.eio.sockets.get(self._eio_sid)
        if socket is None or socket.closed:
            self._closed = True
            return
        # Engine.IO's queue has no "drained" event to await, so poll it briefly.
        while socket.queue.qsize() > ENGINEIO_BACKLOG and not socket.closed:  # noqa: ASYNC110
            await asyncio.sleep(0.002)
        await self._server.eio.send(self._eio_sid, frame)

    async def disconnect(self, reason: str) -> None:
        """Tell the client why (`bridge-disconnect`), then disconnect it."""
        self._closed = True
        with contextlib.suppress(Exception):
            await self._server.emit("bridge-disconnect", {"reason": reason}, to=self.id)
            await self._server.disconnect(self.id)
        # End the Engine.IO session too, so the client cannot simply connect `/` again on it
        # (with a fresh rate limit, say); it has to start over.
        with contextlib.suppress(Exception):
            await self._server.eio.disconnect(self._eio_sid)


def _after_ack(then: Continuation) -> None:
    # python-socketio queues the ack as soon as the handler returns, without yielding to the
    # event loop; a callback scheduled now therefore runs after the ack is queued.
    asyncio.get_running_loop().call_soon(then)


def _error(exc: RequestError) -> dict[str, Any]:
    return {"ok": False, "error": {"code": exc.code, "message": exc.message}}


def _token_of(auth: Any) -> object:
    """The token of a Socket.IO `auth` payload `{"token": "<JWT>"}` (None when absent)."""
    if auth is None:
        return None
    if not isinstance(auth, dict):
        raise AuthError(INVALID_TOKEN, 'send auth as {"token": "<JWT>"}')
    return auth.get("token")


def _single_payload(args: tuple[Any, ...]) -> Any:
    if len(args) > 1:
        raise RequestError("invalid_payload", "send one payload argument")
    return args[0] if args else None


def _project_request(payload: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(payload, str):
        return project_room_of(payload), {}
    if isinstance(payload, dict):
        if "project_id" not in payload:
            raise RequestError("invalid_payload", "give project_id")
        return project_room_of(payload["project_id"]), payload
    raise RequestError("invalid_payload", 'send "<project_id>" or {"project_id": "<id>"}')


def _feed_request(payload: Any) -> dict[str, Any]:
    if payload is None:
        return {}
    if isinstance(payload, dict):
        return payload
    raise RequestError("invalid_payload", 'send nothing or {"since": <offset>, "epoch": "<epoch>"}')


class SocketIOTransport:
    """Builds the Socket.IO server and answers its events (CONTRACT.md section 4)."""

    def __init__(
        self,
        service: BridgeService,
        subscriptions: Subscriptions,
        origins: OriginPolicy,
        authenticator: Authenticator,
    ) -> None:
        self._service = service
        self._subscriptions = subscriptions
        self._authenticator = authenticator
        settings = service.settings
        self.server = StrictAsyncServer(
            async_mode="asgi",
            async_handlers=False,  # one client's events are handled in the order sent
            cors_allowed_origins=origins.allows_engineio,
            logger=False,
            engineio_logger=False,
            max_http_buffer_size=settings.max_frame_bytes,
            ping_interval=settings.ping_interval,
            ping_timeout=settings.ping_timeout,
        )
        self._connections: dict[str, SocketIOConnection] = {}
        self.server.on_malformed = self._on_malformed
        self.server.on("connect", self._on_connect)
        self.server.on("disconnect", self._on_disconnect)
        self.server.on("join-project", self._limited(self._join_project))
        self.server.on("leave-project", self._limited(self._leave_project))
        self.server.on("join-activity-feed", self._limited(self._join_feed))
        self.server.on("leave-activity-feed", self._limited(self._leave_feed))
        for name in CLIENT_EVENTS:
            self.server.on(name, self._limited(self._client_event_handler(name)))
        self.server.on("*", self._unknown_event)

    async def _on_connect(self, sid: str, _environ: dict[str, Any], auth: Any = None) -> None:
        try:
            token = _token_of(auth) if self._authenticator.required else None
            grant = self._authenticator.verify(token)
        except AuthError as exc:
            logger.info("refused Socket.IO client %s: %s (%s)", sid, exc.code, exc.message)
            # socket.io-client: connect_error with err.message and err.data.code
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, {"code": exc.code}
            ) from None
        settings = self._service.settings
        connection = SocketIOConnection(
            self.server,
            sid,
            limit=settings.outbox_size,
            max_bytes=settings.outbox_max_bytes,
            rate=settings.max_messages_per_second,
        )
        self._connections[sid] = connection
        self._service.rooms.add(connection)
        connection.start()
        connection.authorize(grant)

    async def _on_disconnect(self, sid: str, _reason: Any = None) -> None:
        connection = self._connections.pop(sid, None)
        if connection is not None:
            self._service.rooms.remove(connection)
            await connection.stop()

    async def _on_malformed(self, eio_sid: str) -> None:
        """A packet that cannot be decoded counts against its connection's rate limit (so a
        stream of them is a flood); before the connection exists it ends the session."""
        sid = self.server.manager.sid_from_eio_sid(eio_sid, "/")
        connection = self._connections.get(sid) if sid is not None else None
        if connection is None:
            await self.server.eio.disconnect(eio_sid)
            return
        self._admit(sid)

    def _admit(self, sid: str) -> dict[str, Any] | None:
        """Count one event against its connection's rate limit: None to handle it, else the
        error ack. A flooding client is disconnected (`bridge-disconnect` reason `flooding`)."""
        connection = self._connections.get(sid)
        if connection is None:
            return None  # the handler answers not_connected
        verdict = connection.limiter.take()
        if verdict is Verdict.ALLOW:
            return None
        if verdict is Verdict.CLOSE:
            logger.warning(
                "disconnecting Socket.IO client %s: flooding (far above %g messages/s)",
                sid,
                connection.limiter.rate,
            )
            connection.close_soon(FLOODING)
        return _error(RequestError(RATE_LIMITED, connection.limiter.refusal()))

    def _limited(self, handler: Handler) -> Handler:
        async def limited(sid: str, *args: Any) -> dict[str, Any]:
            refused = self._admit(sid)
            if refused is not None:
                return refused
            return await handler(sid, *args)

        return limited

    def _connection(self, sid: str) -> SocketIOConnection:
        connection = self._connections.get(sid)
        if connection is None:
            raise RequestError("not_connected", "the connection is closing")
        return connection

    async def _join_project(self, sid: str, *args: Any) -> dict[str, Any]:
        try:
            room, payload = _project_request(_single_payload(args))
            since, epoch = resume_fields(payload)
            request = JoinRequest(room, since, epoch)
            reply, then = self._subscriptions.join(self._connection(sid), request)
        except RequestError as exc:
            return _error(exc)
        _after_ack(then)
        return {"ok": True, **reply}

    async def _leave_project(self, sid: str, *args: Any) -> dict[str, Any]:
        try:
            room, _ = _project_request(_single_payload(args))
            reply = self._subscriptions.leave(self._connection(sid), room)
        except RequestError as exc:
            return _error(exc)
        return {"ok": True, **reply}

    async def _join_feed(self, sid: str, *args: Any) -> dict[str, Any]:
        try:
            since, epoch = resume_fields(_feed_request(_single_payload(args)))
            request = JoinRequest(ACTIVITY_FEED, since, epoch)
            reply, then = self._subscriptions.join(self._connection(sid), request)
        except RequestError as exc:
            return _error(exc)
        _after_ack(then)
        return {"ok": True, **reply}

    async def _leave_feed(self, sid: str, *args: Any) -> dict[str, Any]:
        try:
            _feed_request(_single_payload(args))
            reply = self._subscriptions.leave(self._connection(sid), ACTIVITY_FEED)
        except RequestError as exc:
            return _error(exc)
        return {"ok": True, **reply}

    def _client_event_handler(self, name: str) -> Handler:
        async def handler(sid: str, *args: Any) -> dict[str, Any]:
            try:
                connection = self._connection(sid)
                event_type, project_id, data = build_client_event(name, _single_payload(args))
                # an activity without a project reaches the activity feed only
                connection.grant.require(
                    ACTIVITY_FEED if project_id is None else project_room(project_id)
                )
                event_id = await self._service.publish_client_event(
                    event_type, data, project_id, source=f"socketio:{sid}"
                )
            except RequestError as exc:
                return _error(exc)
            return {"ok": True, "id": event_id}

        return handler

    async def _unknown_event(self, event: str, sid: str, *_args: Any) -> dict[str, Any]:
        refused = self._admit(sid)
        if refused is not None:
            return refused
        shown = json.dumps(event[:40] if isinstance(event, str) else event)
        known = ", ".join(
            [
                "join-project",
                "leave-project",
                "join-activity-feed",
                "leave-activity-feed",
                *CLIENT_EVENTS,
            ]
        )
        return _error(RequestError("unknown_event", f"unknown event {shown}; use one of: {known}"))


ENGINEIO_PACKET_TYPES = frozenset("0123456789")
"""What an Engine.IO text frame may start with: python-engineio parses one digit (and ignores
the packet types it does not know), anything else crashes its handler."""


def engineio_frame_guard(app: ASGIApp) -> ASGIApp:
    """Wrap the Socket.IO ASGI app so that a WebSocket frame to `/socket.io/` that Engine.IO
    cannot parse (empty, or not starting with a packet type) closes that connection cleanly.

    python-engineio raises on such a frame outside its own error handling: the ASGI task dies
    and the session stays registered, in its rooms, until the ping timeout (~45 s) notices.
    """

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or not scope["path"].startswith("/socket.io"):
            await app(scope, receive, send)
            return

        async def receive_parsable() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive":
                text, data = message.get("text"), message.get("bytes")
                if (text is not None and text[:1] not in ENGINEIO_PACKET_TYPES) or (
                    text is None and not data
                ):
                    logger.info("closing a Socket.IO WebSocket: a frame that is not Engine.IO")
                    return {"type": "websocket.disconnect", "code": 1002}
            return message

        await app(scope, receive_parsable, send)

    return guarded
