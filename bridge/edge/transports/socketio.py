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

import socketio

from bridge.core.connection import Frame
from bridge.core.events import Event
from bridge.core.hub import Hub
from bridge.core.subscription import Continuation
from bridge.core.tally import bump
from bridge.edge import requests
from bridge.edge.auth import Authenticator
from bridge.edge.client_events import CLIENT_EVENTS, ClientEventSink, build_client_event
from bridge.edge.limits import RateLimiter, Verdict
from bridge.edge.origins import OriginPolicy
from bridge.edge.presence import Answer, PresenceRooms
from bridge.edge.requests import JoinRequest, project_room_of, resume_fields
from bridge.edge.transports import frames
from bridge.edge.transports.base import EdgeConnection
from bridge.edge.transports.sockets import (
    current_direct_writer,
    current_transport,
    engineio_transport,
)
from bridge.errors import AuthError, RequestError
from bridge.settings import Settings
from bridge.upstream import engineio as engineio_seams
from bridge.upstream.socketio import StrictAsyncServer, engineio_sid, socketio_sid
from schemas.codes import CloseReason, ErrorCode
from schemas.routing import ACTIVITY_FEED, project_room

logger = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[dict[str, Any]]]
"""A Socket.IO event handler: `(sid, *args)` to the acknowledgement."""

ENGINEIO_BACKLOG = 256
"""Packets allowed in an Engine.IO socket's own queue before our writer waits (a bound on what
one client can hold there, and large enough not to throttle a catch-up)."""


class SocketIOConnection(EdgeConnection):
    """One Socket.IO client (namespace `/`).

    Every Socket.IO packet for it — events, notices and python-socketio's own acks — goes
    through its outbox (`StrictAsyncServer.packet_sinks`), so they leave in one order. A session
    that started on a WebSocket gets them as ready frames written straight to that socket;
    one that started long-polling gets them through Engine.IO's queue, as before its upgrade.
    """

    transport = "socketio"

    def __init__(
        self, server: StrictAsyncServer, sid: str, *, limit: int, max_bytes: int, rate: float
    ) -> None:
        super().__init__(sid, limit=limit, max_bytes=max_bytes)
        self._server = server
        self._eio_sid = engineio_sid(server, sid)
        self._tcp = current_transport()  # a session opened over WebSocket
        self._direct = current_direct_writer()
        self.limiter = RateLimiter(rate)
        server.packet_sinks[self._eio_sid] = self._take_packet

    def tcp_transport(self) -> asyncio.Transport | None:
        """The TCP connection under this session's WebSocket (None while long-polling)."""
        return engineio_transport(self._eio_sid) or self._tcp

    def frame(self, event: Event) -> Frame:
        """The Socket.IO EVENT packet for this event (built once per event)."""
        if self._direct is not None:
            return frames.socketio_frame(event)
        return frames.socketio_text(event)

    def notice(self, name: str, payload: dict[str, Any]) -> Frame:
        """A notice as a Socket.IO EVENT packet named `name`."""
        return self._packet(frames.socketio_message(name, payload))

    def notice_key(self) -> object:
        """Notices are ready frames on a direct WebSocket, Engine.IO packets otherwise."""
        return (self.transport, self._direct is None)

    def _packet(self, packet: str) -> Frame:
        return packet if self._direct is None else frames.engineio_frame(packet)

    def _take_packet(self, packet: str) -> bool:
        """python-socketio's packets for this client (acks, its emits) join the outbox."""
        if self.closed:
            return False  # a closing connection's last words go through Engine.IO
        self.push_reply(self._packet(packet))
        return True

    def write_now(self, frame: Frame) -> bool:
        """Write a ready frame straight to the socket if it can take it now."""
        direct = self._direct
        return direct is not None and isinstance(frame, bytes) and direct.try_write(frame)

    async def write(self, frame: Frame) -> None:
        """Send one packet: a ready frame once the socket drains, else through Engine.IO's queue,
        waiting while that queue is long."""
        if isinstance(frame, bytes):
            assert self._direct is not None
            if not await self._direct.write(frame):
                self._closed = True  # the connection closed: nothing more to write
            return
        # Engine.IO's queue has no "drained" event to await, so poll it briefly.
        while (backlog := engineio_seams.backlog(self._server.eio, self._eio_sid)) is not None:
            if backlog <= ENGINEIO_BACKLOG:
                await self._server.eio.send(self._eio_sid, frame)
                return
            await asyncio.sleep(0.002)
        self._closed = True  # the session is gone

    async def disconnect(self, reason: CloseReason) -> None:
        """Tell the client why (`bridge-disconnect`), then disconnect it."""
        self._closed = True
        with contextlib.suppress(Exception):
            await self._server.emit("bridge-disconnect", {"reason": reason}, to=self.id)
            await self._server.disconnect(self.id)
        # End the Engine.IO session too, so the client cannot simply connect `/` again on it
        # (with a fresh rate limit, say); it has to start over.
        with contextlib.suppress(Exception):
            await self._server.eio.disconnect(self._eio_sid)

    async def stop(self) -> None:
        """Forget this session's packet sink, then stop (see `EdgeConnection.stop`)."""
        if self._server.packet_sinks.get(self._eio_sid) == self._take_packet:
            del self._server.packet_sinks[self._eio_sid]
        await super().stop()


def _after_ack(then: Continuation) -> None:
    # python-socketio queues the ack as soon as the handler returns, without yielding to the
    # event loop; a callback scheduled now therefore runs after the ack is queued.
    asyncio.get_running_loop().call_soon(then)


def _error(exc: RequestError) -> dict[str, Any]:
    return {"ok": False, "error": {"code": exc.code, "message": exc.message}}


def _single_payload(args: tuple[Any, ...]) -> Any:
    if len(args) > 1:
        raise RequestError(ErrorCode.INVALID_PAYLOAD, "send one payload argument")
    return args[0] if args else None


def _project_request(payload: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(payload, str):
        return project_room_of(payload), {}
    if isinstance(payload, dict):
        if "project_id" not in payload:
            raise RequestError(ErrorCode.INVALID_PAYLOAD, "give project_id")
        return project_room_of(payload["project_id"]), payload
    raise RequestError(ErrorCode.INVALID_PAYLOAD, 'send "<project_id>" or {"project_id": "<id>"}')


def _feed_request(payload: Any) -> dict[str, Any]:
    if payload is None:
        return {}
    if isinstance(payload, dict):
        return payload
    raise RequestError(
        ErrorCode.INVALID_PAYLOAD, 'send nothing or {"since": <offset>, "epoch": "<epoch>"}'
    )


class SocketIOTransport:
    """Builds the Socket.IO server and answers its events (docs/clients.md, "Socket.IO")."""

    def __init__(
        self,
        hub: Hub,
        publish: ClientEventSink,
        settings: Settings,
        origins: OriginPolicy,
        authenticator: Authenticator,
        *,
        presence: PresenceRooms,
    ) -> None:
        self._hub = hub
        self._presence = presence
        self._publish = publish
        self._settings = settings
        self._authenticator = authenticator
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
        for name, answer in presence.socketio_requests().items():
            self.server.on(name, self._limited(self._presence_handler(answer)))
        self.server.on("*", self._unknown_event)

    async def _on_connect(self, sid: str, _environ: dict[str, Any], auth: Any = None) -> None:
        try:
            grant = self._authenticator.verify_socketio(auth)
        except AuthError as exc:
            # socket.io-client: connect_error with err.message and err.data.code
            raise socketio.exceptions.ConnectionRefusedError(*self._refusal(sid, exc)) from None
        settings = self._settings
        connection = SocketIOConnection(
            self.server,
            sid,
            limit=settings.outbox_size,
            max_bytes=settings.outbox_max_bytes,
            rate=settings.max_messages_per_second,
        )
        self._connections[sid] = connection
        self._hub.add(connection)
        connection.authorize(grant)

    async def _on_disconnect(self, sid: str, _reason: Any = None) -> None:
        connection = self._connections.pop(sid, None)
        if connection is not None:
            self._presence.closed(connection)
            self._hub.remove(connection)
            await connection.stop()

    async def _on_malformed(self, eio_sid: str) -> None:
        """A packet that cannot be decoded counts against its connection's rate limit (so a
        stream of them is a flood); before the connection exists it refuses the session."""
        sid = socketio_sid(self.server, eio_sid)
        if sid is None or sid not in self._connections:
            refusal = self._refusal(eio_sid, self._authenticator.unreadable_connect())
            await self.server.refuse(eio_sid, *refusal)
            return
        self._admit(sid)

    def _refusal(self, sid: str, exc: AuthError) -> tuple[str, dict[str, str]]:
        """Count and log a refused connection; the message and data of its CONNECT_ERROR."""
        bump(self._hub.tally.auth_refusals, exc.code)
        extra = {"connection_id": sid, "transport": "socketio", "reason": str(exc.code)}
        logger.info("refused Socket.IO client %s: %s (%s)", sid, exc.code, exc.message, extra=extra)
        return exc.message, {"code": exc.code}

    def _admit(self, sid: str) -> dict[str, Any] | None:
        """Count one event against its connection's rate limit: None to handle it, else the
        error ack. A flooding client is disconnected (`bridge-disconnect` reason `flooding`)."""
        connection = self._connections.get(sid)
        if connection is None:
            return None  # the handler answers not_connected
        verdict = connection.limiter.take()
        if verdict is Verdict.ALLOW:
            return None
        connection.tally.rate_limited += 1
        if verdict is Verdict.CLOSE:
            logger.warning(
                "disconnecting Socket.IO client %s: flooding (far above %g messages/s)",
                sid,
                connection.limiter.rate,
                extra=connection.log_ids(CloseReason.FLOODING),
            )
            connection.close_soon(CloseReason.FLOODING)
        return _error(RequestError(ErrorCode.RATE_LIMITED, connection.limiter.refusal()))

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
            raise RequestError(ErrorCode.NOT_CONNECTED, "the connection is closing")
        return connection

    async def _join_project(self, sid: str, *args: Any) -> dict[str, Any]:
        try:
            room, payload = _project_request(_single_payload(args))
            since, epoch = resume_fields(payload)
            connection = self._connection(sid)
            joined = await requests.join(self._hub, connection, JoinRequest(room, since, epoch))
            joined = self._presence.joined(connection, room, joined)
        except RequestError as exc:
            return _error(exc)
        _after_ack(joined.then)
        return {"ok": True, **joined.reply}

    async def _leave_project(self, sid: str, *args: Any) -> dict[str, Any]:
        try:
            room, _ = _project_request(_single_payload(args))
            reply = requests.leave(self._hub, self._connection(sid), room)
            self._presence.left(self._connection(sid), room)
        except RequestError as exc:
            return _error(exc)
        return {"ok": True, **reply}

    async def _join_feed(self, sid: str, *args: Any) -> dict[str, Any]:
        try:
            since, epoch = resume_fields(_feed_request(_single_payload(args)))
            joined = await requests.join(
                self._hub, self._connection(sid), JoinRequest(ACTIVITY_FEED, since, epoch)
            )
        except RequestError as exc:
            return _error(exc)
        _after_ack(joined.then)
        return {"ok": True, **joined.reply}

    async def _leave_feed(self, sid: str, *args: Any) -> dict[str, Any]:
        try:
            _feed_request(_single_payload(args))
            reply = requests.leave(self._hub, self._connection(sid), ACTIVITY_FEED)
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
                event_id = await self._publish(
                    event_type, data, project_id, source=f"socketio:{sid}"
                )
            except RequestError as exc:
                return _error(exc)
            return {"ok": True, "id": event_id}

        return handler

    def _presence_handler(self, answer: Answer) -> Handler:
        async def handler(sid: str, *args: Any) -> dict[str, Any]:
            try:
                return {"ok": True, **answer(self._connection(sid), _single_payload(args))}
            except RequestError as exc:
                return _error(exc)

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
                *self._presence.socketio_requests(),
            ]
        )
        return _error(
            RequestError(ErrorCode.UNKNOWN_EVENT, f"unknown event {shown}; use one of: {known}")
        )
