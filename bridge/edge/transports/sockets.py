"""The TCP connection under each WebSocket, so that a peer that stops reading can be cut off.

Closing a WebSocket politely means sending a close frame, which waits until the peer reads;
a peer that stopped reading (a slow consumer, by definition) never does, and the server's own
close then waits for ever to flush what is queued. The connection, its file descriptor and
megabytes of kernel send buffer would stay as long as the peer keeps its end open. ASGI has no
way to abort a connection, so the bridge's uvicorn protocol puts each WebSocket's transport into
its scope (`bridge.upstream.uvicorn`); this module keeps it where the connection's closing code
can abort it after a grace period: as the current one for code running in the WebSocket's task,
and by Engine.IO session id for a Socket.IO session that upgraded from long-polling.
"""

from __future__ import annotations

import asyncio
import contextvars

from starlette.types import ASGIApp, Receive, Scope, Send

from bridge.upstream.uvicorn import DirectWriter, direct_writer_of, transport_of

_current: contextvars.ContextVar[asyncio.Transport | None] = contextvars.ContextVar(
    "eventbridge_websocket_transport", default=None
)
_current_direct: contextvars.ContextVar[DirectWriter | None] = contextvars.ContextVar(
    "eventbridge_websocket_direct_writer", default=None
)
_by_engineio_sid: dict[str, asyncio.Transport] = {}


def tracking_transports(app: ASGIApp) -> ASGIApp:
    """Wrap the ASGI app so each WebSocket's transport can be found while it is served."""

    async def tracked(scope: Scope, receive: Receive, send: Send) -> None:
        transport = transport_of(scope) if scope["type"] == "websocket" else None
        if transport is None:
            await app(scope, receive, send)
            return
        sid = _engineio_sid(scope)
        if sid is not None:
            _by_engineio_sid[sid] = transport
        token = _current.set(transport)
        # A session that starts on this WebSocket (not one upgraded from long-polling, whose
        # packets went through Engine.IO's queue before) may write to it directly.
        direct = _current_direct.set(direct_writer_of(scope) if sid is None else None)
        try:
            await app(scope, receive, send)
        finally:
            _current_direct.reset(direct)
            _current.reset(token)
            if sid is not None and _by_engineio_sid.get(sid) is transport:
                del _by_engineio_sid[sid]

    return tracked


def _engineio_sid(scope: Scope) -> str | None:
    if not scope["path"].startswith("/socket.io"):
        return None
    for part in scope.get("query_string", b"").decode("latin-1").split("&"):
        if part.startswith("sid="):
            return part[4:] or None
    return None


def current_transport() -> asyncio.Transport | None:
    """The transport of the WebSocket whose task is running, if any."""
    return _current.get()


def current_direct_writer() -> DirectWriter | None:
    """The direct writer of the WebSocket whose task is running, if it may be used: the native
    endpoint's, or a Socket.IO session's that started on it."""
    return _current_direct.get()


def engineio_transport(sid: str) -> asyncio.Transport | None:
    """The transport of an Engine.IO session that upgraded from long-polling, if it has."""
    return _by_engineio_sid.get(sid)
