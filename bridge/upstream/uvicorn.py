"""uvicorn: a bound on request heads, a shutdown in the bridge's order, and each WebSocket's TCP
transport made known to the application, with lighter per-connection state.

All of it extends uvicorn through its protocol and server classes (the `http=` and `ws=`
settings take classes for this); what it relies on beyond that is listed in `SEAMS`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from bridge.upstream.primitives import LeanEvent, LeanQueue
from bridge.upstream.seams import Seam

MAX_REQUEST_HEAD_BYTES = 65_536
"""Largest request line plus headers a client may send (nginx allows 32 KiB by default)."""

TRANSPORT_EXTENSION = "eventbridge.transport"
"""The key under `scope["extensions"]` holding a WebSocket's `asyncio.Transport`."""

DIRECT_EXTENSION = "eventbridge.direct"
"""The key under `scope["extensions"]` holding a WebSocket's `DirectWriter`."""

SEAMS = (
    Seam(
        "uvicorn.protocols.http.httptools_impl.HttpToolsProtocol",
        why="httptools buffers a request head without limit; uvicorn has no setting for it",
        methods={
            "data_received": ("data",),
            "on_message_begin": (),
            "on_headers_complete": (),
            "send_400_response": ("msg",),
        },
        attributes=("logger",),
    ),
    Seam(
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        why="ASGI has no way to reach a connection's transport, which a stuck peer's close needs; "
        "its receive queue and writable flag cost 3.8 KB per connection as asyncio's",
        methods={"handle_connect": ("event",)},
        attributes=(
            "queue",
            "transport",
            "scope",
            "conn",
            "writable",
            "handshake_complete",
            "close_sent",
            "disconnected",
            "initial_response",
        ),
    ),
    Seam(
        "websockets.server.ServerProtocol",
        why="which extensions (permessage-deflate) the handshake negotiated",
        attributes=("extensions",),
    ),
    Seam(
        "uvicorn.Server",
        why="no hook runs between 'stop accepting' and uvicorn closing every WebSocket with a "
        "bare 1012, where the bridge must close its clients with a reason first",
        methods={"shutdown": ("sockets",), "serve": ("sockets",)},
        attributes=("servers", "started", "should_exit"),
    ),
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request head larger than 64 KiB with HTTP 400.

    httptools buffers an unfinished header line or URL without limit, so one client sending a
    header that never ends could use any amount of memory; h11 has a limit but holds garbage
    without a line end until it arrives, where httptools refuses it at the first wrong byte.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True

    def data_received(self, data: bytes) -> None:
        """Count what arrives while a request head is being read; refuse past the limit."""
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_REQUEST_HEAD_BYTES:
                self.logger.warning("Request head larger than %d bytes", MAX_REQUEST_HEAD_BYTES)
                self.send_400_response("Request head too large.")
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        """A new request: its head starts now."""
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        """The head is complete: the body, if any, is not counted."""
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()


class DirectWriter:
    """Writes ready WebSocket frames straight to one connection's transport.

    Every client of a room gets the same bytes for an event (a server's frames are not masked),
    so the bridge builds each frame once and hands it to each socket here, without ASGI's
    per-message encoding and without a task per message. A frame is written only while the
    connection is open and its transport's buffer is below the high-water mark (the protocol's
    `writable` flag); otherwise `try_write` says no and the caller queues it. Frames are whole
    (`text_frame`), so they never interleave with the protocol's own (pings, close).
    """

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    @property
    def open(self) -> bool:
        """Whether frames may still be written (accepted, no close sent or received)."""
        protocol = self._protocol
        return (
            protocol.handshake_complete
            and not protocol.close_sent
            and not protocol.disconnected
            and protocol.initial_response is None
            and not protocol.transport.is_closing()
        )

    def try_write(self, frame: bytes) -> bool:
        """Write `frame` now if the connection is open and not backed up; say whether it was."""
        protocol = self._protocol
        if not protocol.writable.is_set() or not self.open:
            return False
        protocol.transport.write(frame)
        return True

    async def write(self, frame: bytes) -> bool:
        """Write `frame` once the transport's buffer has drained below its low-water mark;
        False (nothing written) if the connection closed meanwhile."""
        await self._protocol.writable.wait()
        if not self.open:
            return False
        self._protocol.transport.write(frame)
        return True


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final WebSocket text frame (RFC 6455 section 5.2) carrying `payload`,
    which must be valid UTF-8."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65_536:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload


class TransportAwareWebSockets(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol (the default one), also putting the connection's
    `asyncio.Transport` and a `DirectWriter` into the ASGI scope, under `scope["extensions"]`.

    Closing a WebSocket politely waits until the peer reads the close frame; a peer that stopped
    reading never does, and would keep its socket and kernel buffers as long as it stays
    connected. With the transport at hand, the bridge can abort such a connection. The direct
    writer is left out when permessage-deflate was negotiated (frames are then compressed per
    connection, through ASGI). Its receive queue and writable flag are lean stand-ins for
    asyncio's (`bridge.upstream.primitives`), about 3.8 KB less per connection.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The same roles, with lean primitives (bridge.upstream.primitives); uvicorn calls only
        # put_nowait, get and empty on the queue and set, clear, is_set and wait on the flag.
        self.queue = LeanQueue()  # type: ignore[assignment]
        self.writable = LeanEvent()  # type: ignore[assignment]
        self.writable.set()

    def handle_connect(self, event: Any) -> None:
        """Accept or refuse the handshake as uvicorn does; an accepted one's scope (built just
        now, read by the application only once the event loop runs its task) gets the
        transport and the direct writer."""
        super().handle_connect(event)
        scope: dict[str, Any] | None = getattr(self, "scope", None)
        if scope is not None and scope.get("type") == "websocket":
            extensions = scope.setdefault("extensions", {})
            extensions[TRANSPORT_EXTENSION] = self.transport
            if not self.conn.extensions:
                extensions[DIRECT_EXTENSION] = DirectWriter(self)


def transport_of(scope: Mapping[str, Any]) -> asyncio.Transport | None:
    """The TCP transport of a WebSocket served by `TransportAwareWebSockets`, else None."""
    transport = (scope.get("extensions") or {}).get(TRANSPORT_EXTENSION)
    return transport if isinstance(transport, asyncio.Transport) else None


def direct_writer_of(scope: Mapping[str, Any]) -> DirectWriter | None:
    """The direct writer of a WebSocket served by `TransportAwareWebSockets` (None with
    compression, or under another server)."""
    writer = (scope.get("extensions") or {}).get(DIRECT_EXTENSION)
    return writer if isinstance(writer, DirectWriter) else None


class GracefulServer(uvicorn.Server):
    """uvicorn's server, running `before_shutdown` between "stop accepting" and the rest.

    uvicorn alone would close every WebSocket with a bare 1012 before the application hears of
    the shutdown; the bridge first stops consuming and closes each client with its reason.
    """

    def __init__(
        self, config: uvicorn.Config, before_shutdown: Callable[[], Awaitable[None]]
    ) -> None:
        super().__init__(config)
        self._before_shutdown = before_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting, run `before_shutdown`, then let uvicorn finish."""
        for server in self.servers:
            server.close()
        await self._before_shutdown()
        await super().shutdown(sockets)
