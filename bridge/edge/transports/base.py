"""What both transports' connections share on top of the core's `ClientConnection`: the grant
of the token the client presented, and the end of the connection when that token expires."""

from __future__ import annotations

import asyncio

from bridge.core.connection import ClientConnection
from bridge.edge.auth import NOTHING, Grant, remaining_seconds
from schemas.codes import CloseReason


class EdgeConnection(ClientConnection):
    """A client connection of either transport, holding what its token grants."""

    def __init__(self, connection_id: str, *, limit: int, max_bytes: int) -> None:
        super().__init__(connection_id, limit=limit, max_bytes=max_bytes)
        self.grant: Grant = NOTHING
        self._expiry: asyncio.TimerHandle | None = None

    def authorize(self, grant: Grant) -> None:
        """Hold `grant` from now on; when it expires, disconnect with `token_expired`."""
        self.grant = grant
        remaining = remaining_seconds(grant)
        if remaining is not None:
            loop = asyncio.get_running_loop()
            self._expiry = loop.call_later(
                max(0.0, remaining), self.close_soon, CloseReason.TOKEN_EXPIRED
            )

    async def stop(self) -> None:
        """Forget the expiry timer, then stop the writer (see `ClientConnection.stop`)."""
        if self._expiry is not None:
            self._expiry.cancel()
        await super().stop()
