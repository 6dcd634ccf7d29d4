"""python-socketio: refusing binary attachments, handling undecodable packets and reserved event
names quietly, and mapping session ids.

python-socketio dispatches Engine.IO messages in one private method with no hook before the
packet is decoded; the bridge must refuse binary attachments there (python-socketio would
buffer them without bound), handle packets it cannot decode itself (python-socketio would log a
traceback for each: ~700 bytes of log per 5-byte packet) and never run its own handlers for a
client's `connect`/`disconnect` events. What this relies on is listed in `SEAMS`, and
pyproject.toml keeps the library below its next minor release.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import engineio
import socketio
from socketio import packet

from bridge.upstream.engineio import BoundedEngineIO
from bridge.upstream.seams import Seam
from schemas.codes import ErrorCode

logger = logging.getLogger(__name__)

SEAMS = (
    Seam(
        "socketio.AsyncServer",
        why="no public hook runs before a packet is decoded or a handler is looked up",
        methods={
            "_engineio_server_class": (),
            "_handle_eio_message": ("eio_sid", "data"),
            "_handle_connect": ("eio_sid", "namespace", "data"),
            "_handle_disconnect": ("eio_sid", "namespace", "reason"),
            "_handle_event": ("eio_sid", "namespace", "id", "data"),
            "_handle_ack": ("eio_sid", "namespace", "id", "data"),
            "_send_packet": ("eio_sid", "pkt"),
            "_handle_eio_disconnect": ("eio_sid", "reason"),
        },
        attributes=("_binary_packet", "packet_class", "eio", "manager", "reason", "environ"),
    ),
    Seam(
        "socketio.async_manager.AsyncManager",
        why="the mapping between Socket.IO and Engine.IO session ids is only on the manager",
        methods={
            "eio_sid_from_sid": ("sid", "namespace"),
            "sid_from_eio_sid": ("eio_sid", "namespace"),
        },
    ),
)

KEPT_ENVIRON = frozenset({"REMOTE_ADDR", "REQUEST_METHOD", "PATH_INFO", "asgi.scope"})
"""What a session keeps of its first request's environ after the client connected."""

RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error", "*"})
"""Event names python-socketio dispatches to its own handlers."""

MalformedHandler = Callable[[str], Awaitable[None]]
"""Called with the Engine.IO session id of a client that sent a packet that cannot be decoded."""

PacketSink = Callable[[str], bool]
"""Takes an encoded Socket.IO packet bound for one session (True), or declines it (False)."""


class StrictAsyncServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, refusing binary attachments and handling packets it cannot
    decode and reserved event names itself (see the module docstring)."""

    on_malformed: MalformedHandler | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.packet_sinks: dict[str, PacketSink] = {}
        """Per Engine.IO session, where its Socket.IO packets go instead of Engine.IO's queue
        (the bridge's ordered outbox of that connection: acks, events and notices then leave
        in one order)."""

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return BoundedEngineIO

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        sink = self.packet_sinks.get(eio_sid)
        if sink is not None:
            encoded = pkt.encode()
            if isinstance(encoded, str) and sink(encoded):
                return
        await super()._send_packet(eio_sid, pkt)

    async def refuse(self, eio_sid: str, message: str, data: dict[str, str]) -> None:
        """Answer a session that has not connected with CONNECT_ERROR `{message, data}` (the
        client's `connect_error`), then end the session."""
        error = {"message": message, "data": data}
        await self._send_packet(eio_sid, self.packet_class(packet.CONNECT_ERROR, data=error))
        await self.eio.disconnect(eio_sid)

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        socket = self.eio.sockets.get(eio_sid)
        if socket is None or socket.closed:
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
            self._forget_request(eio_sid)
        elif pkt.packet_type == packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        elif pkt.packet_type == packet.EVENT:
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif pkt.packet_type == packet.ACK:
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)
        # CONNECT_ERROR is for servers to send; from a client it means nothing

    def _forget_request(self, eio_sid: str) -> None:
        """Once the client connected, keep only a little of its first request's environ.

        python-socketio keeps that environ for the session's whole life: some thirty entries,
        the headers again as strings, and a body reader whose class python-engineio defines
        per request — about 4 KB per connection that nothing reads after the connect handler
        (each poll brings its own environ, an upgrade too). The dict is emptied rather than
        replaced, as python-engineio's WebSocket handler holds the same one.
        """
        environ = self.environ.get(eio_sid)
        if environ is not None:
            kept = {key: environ[key] for key in KEPT_ENVIRON if key in environ}
            environ.clear()
            environ.update(kept)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        await super()._handle_eio_disconnect(eio_sid, reason)
        if reason == self.eio.reason.CLIENT_DISCONNECT:
            # The client sent Engine.IO's CLOSE packet: python-engineio ends the session but
            # keeps reading its WebSocket (or holds its poll) until the ping timeout.
            await self.eio.disconnect(eio_sid)

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
                error = {
                    "code": ErrorCode.UNKNOWN_EVENT.value,
                    "message": f"{data[0]!r} is reserved and cannot be sent",
                }
                ack = self.packet_class(
                    packet.ACK,
                    namespace=namespace or "/",
                    id=id,
                    data=[{"ok": False, "error": error}],
                )
                await self._send_packet(eio_sid, ack)
            return
        await super()._handle_event(eio_sid, namespace, id, data)


def engineio_sid(server: socketio.AsyncServer, sid: str) -> str:
    """The Engine.IO session id under a Socket.IO session of namespace `/`."""
    eio_sid: str = server.manager.eio_sid_from_sid(sid, "/")
    return eio_sid


def socketio_sid(server: socketio.AsyncServer, eio_sid: str) -> str | None:
    """The Socket.IO session id of namespace `/` on an Engine.IO session, if connected."""
    sid: str | None = server.manager.sid_from_eio_sid(eio_sid, "/")
    return sid
