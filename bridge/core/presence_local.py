"""This replica's own presence bookkeeping: the bounds from the settings, one user's
connections in one room, and the token bucket of a connection's state updates. `Presence`
(`bridge.core.presence`) owns them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.core.connection import ClientConnection
from bridge.core.presence_messages import Entry


@dataclass(frozen=True, slots=True)
class PresenceLimits:
    """The bounds of presence, from the settings of the same names."""

    expiry: float
    """Seconds after which a silent replica's members are forgotten."""
    state_max_bytes: int
    """The largest state object, as compact JSON."""
    state_per_second: float
    """State updates one connection may make per second (bursts of one second's worth)."""
    max_members: int = 1_000
    """Users a room lists at most; a new user's connection joining a full room is not listed."""


class LocalMember:
    """One user's connections on this replica in one room."""

    __slots__ = ("connections", "name", "state", "state_at")

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.connections: dict[ClientConnection, float] = {}
        self.state: dict[str, Any] | None = None
        self.state_at = 0.0

    def entry(self) -> Entry:
        return {
            "name": self.name,
            "connections": len(self.connections),
            "since": min(self.connections.values()),
            "state": self.state,
            "state_at": self.state_at,
        }


class StateBucket:
    """A token bucket for one connection's state updates."""

    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens, self.at = tokens, at
