"""python-engineio: ending a session without waiting, a session's send backlog, and frames it
cannot parse.

python-engineio has no public API for any of the three (see each piece's docstring); what they
rely on is listed in `SEAMS`, and pyproject.toml keeps the library below its next minor release.
"""

from __future__ import annotations

import logging

import engineio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.upstream.seams import Seam

logger = logging.getLogger(__name__)

SEAMS = (
    Seam(
        "engineio.AsyncServer",
        why="disconnect(sid) waits until the client collects the CLOSE packet, for ever if it "
        "is a long-polling client that is not polling",
        methods={"disconnect": ("sid",), "send": ("sid", "data")},
        attributes=("sockets", "reason"),
    ),
    Seam(
        "engineio.async_socket.AsyncSocket",
        why="the session's packet queue has no public size or 'drained' signal",
        methods={"close": ("wait", "abort", "reason")},
        attributes=("queue", "closed"),
    ),
    Seam(
        "engineio.base_server.BaseServer.reason",
        why="the disconnect reason engine.io passes to its own handlers",
        attributes=("SERVER_DISCONNECT", "CLIENT_DISCONNECT"),
    ),
)

PACKET_TYPES = frozenset("0123456789")
"""What an Engine.IO text frame may start with: python-engineio parses one digit (and ignores
the packet types it does not know), anything else crashes its handler."""


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


def backlog(server: engineio.AsyncServer, sid: str) -> int | None:
    """Packets waiting in a session's queue, or None once the session is gone or closed."""
    socket = server.sockets.get(sid)
    if socket is None or socket.closed:
        return None
    size: int = socket.queue.qsize()
    return size


def frame_guard(app: ASGIApp) -> ASGIApp:
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
                if (text is not None and text[:1] not in PACKET_TYPES) or (
                    text is None and not data
                ):
                    logger.info("closing a Socket.IO WebSocket: a frame that is not Engine.IO")
                    return {"type": "websocket.disconnect", "code": 1002}
            return message

        await app(scope, receive_parsable, send)

    return guarded
