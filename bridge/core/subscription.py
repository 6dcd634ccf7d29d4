"""The hub's small value types: its limits, one connection's place in a room, a join's answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.core.events import Event

Continuation = Callable[[], None]
"""What a transport runs right after it has queued a join's reply."""


@dataclass(frozen=True, slots=True)
class HubLimits:
    """The hub's bounds (each is a setting of the same name; see docs/configuration.md)."""

    history_max_events: int = 100_000
    history_max_bytes: int = 32 * 1024 * 1024
    state_max_entries: int = 100_000
    state_max_bytes: int = 16 * 1024 * 1024
    catchup_max_events: int = 10_000
    catchup_max_records: int = 50_000
    """Most log records one resume may read; a resume that would read more gets `too_many` at
    once (a quiet room's resume reads only up to that room's newest event)."""
    catchup_concurrency: int = 2
    room_index_max: int = 1_000_000
    """Rooms whose newest offset is remembered."""
    snapshot_wait: float = 30.0
    """Seconds a fresh join waits for a starting bridge to rebuild the snapshot state, before
    it gets `resync-required` (`unavailable`) instead."""
    max_rooms_per_connection: int = 100
    future_grace: float = 1.0
    """Seconds a join whose `since` is a little ahead of this bridge's head waits for the head
    to get there (another replica may have read a record this one has not yet)."""


@dataclass(slots=True)
class Subscription:
    """A connection's place in one room.

    Attributes:
        covered_after: every event of the room above this offset is (or will be) delivered.
        joined: the order of the join among all joins; of two rooms covering an event, the one
            joined first delivers it.
        held: while what precedes the live events is prepared, live events wait here; None
            once the room is live.
        held_bytes: the size of the held events' frames.
        spill: whether held events that overflow the connection's limits are dropped from
            memory and read from the log later, rather than cutting the client off as slow: set
            while a join waits for a starting bridge's state, which is not the client's doing.
        spilled_upto: the newest event dropped that way, not yet sent; everything of the room
            after the catch-up's start up to it is read from the log.
    """

    covered_after: int
    joined: int
    held: list[Event] | None = None
    held_bytes: int = 0
    spill: bool = False
    spilled_upto: int | None = None


@dataclass(frozen=True, slots=True)
class Joined:
    """A join's reply fields (`room`, `epoch`, `offset`) and what to run after the reply."""

    reply: dict[str, Any]
    then: Continuation


def nothing() -> None:
    """A continuation with nothing to do."""
