"""The TCP connection under each WebSocket, so that a peer that stops reading can be cut off.

Closing a WebSocket politely means sending a close frame, which waits until the peer reads;
a peer that stopped reading (a slow consumer, by definition) never does, and uvicorn's own
close then waits for ever to flush what is queued. The connection, its file descriptor and
megabytes of kernel send buffer would stay as long as the peer keeps its end open. ASGI has no
way to abort a connection, so this module finds uvicorn's transport behind the ASGI `receive`
callable (uvicorn passes its protocol's bound methods) and keeps it where the connection's
closing code can abort it after a grace period.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

_current: contextvars.ContextVar[asyncio.Transport | None] = contextvars.ContextVar(
    "eventbridge_websocket_transport", default=None
)
_by_engineio_sid: dict[str, asyncio.Transport] = {}


def _transport_of(receive: Receive) -> asyncio.Transport | None:
    transport: Any = getattr(getattr(receive, "__self__", None), "transport", None)
    return transport if isinstance(transport, asyncio.Transport) else None


def tracking_transports(app: ASGIApp) -> ASGIApp:
    """Wrap the ASGI app so each WebSocket's transport can be found while it is served: as the
    current one (for code running in its task) and, for an Engine.IO session upgraded from
    long-polling, by that session's id."""

    async def tracked(scope: Scope, receive: Receive, send: Send) -> None:
        transport = _transport_of(receive) if scope["type"] == "websocket" else None
        if transport is None:
            await app(scope, receive, send)
            return
        sid = _engineio_sid(scope)
        if sid is not None:
            _by_engineio_sid[sid] = transport
        token = _current.set(transport)
        try:
            await app(scope, receive, send)
        finally:
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


def engineio_transport(sid: str) -> asyncio.Transport | None:
    """The transport of an Engine.IO session that upgraded from long-polling, if it has."""
    return _by_engineio_sid.get(sid)
