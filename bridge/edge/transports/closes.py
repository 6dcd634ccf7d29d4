"""How the native WebSocket transport ends a connection: the close code and reason it sends for
each way the bridge ends one (docs/clients.md lists them for clients)."""

from __future__ import annotations

from schemas.codes import CloseReason

CLOSE_REASONS: dict[CloseReason, tuple[int, str]] = {
    CloseReason.SLOW_CONSUMER: (
        1013,
        "slow consumer: too many events queued; reconnect and resume by offset",
    ),
    CloseReason.SHUTDOWN: (1012, "the bridge is restarting; reconnect and resume by offset"),
    CloseReason.FLOODING: (1008, "flooding: far more messages per second than allowed; slow down"),
    CloseReason.IDLE: (
        1000,
        "idle: no room joined and nothing sent; subscribe, or send ping to stay",
    ),
    CloseReason.TOKEN_EXPIRED: (
        4401,
        "token_expired: reconnect with a fresh token and resume by offset",
    ),
}
"""The WebSocket close code and reason of each way the bridge ends a connection."""
AUTH_CLOSE_CODE = 4401
"""Close code of a connection whose authentication failed (4000-4999 are the application's)."""
MAX_CLOSE_REASON_BYTES = 123
