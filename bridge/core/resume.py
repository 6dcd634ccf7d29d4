"""Resume planning: what a join sends before the room's live events.

- A join without `since`: the project's snapshot (latest agent and deployment state).
- A join with `since`: every event of the room after `since` up to the join, from memory when
  the buffers still cover it, else read from the log; or `resync-required` with a reason, then
  the snapshot.

`plan()` decides from what the hub knows at the join, without I/O; what memory no longer holds
is read (by `bridge.core.catchup`) through a `RangeReader`, the only way the core touches the log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from bridge.core.events import Event
from bridge.core.history import LastValues, RoomBuffers
from bridge.errors import TooManyEventsError
from schemas.codes import ResyncReason
from schemas.routing import ACTIVITY_FEED

RESYNC_NOTICE = "resync-required"
"""The notice's name (Socket.IO event; `resync_required` as a WebSocket frame type)."""


class RangeReader(Protocol):
    """Reads one room's events from the log (the broker layer implements it)."""

    def read(self, room: str, after: int, upto: int) -> AsyncIterator[Sequence[Event]]:
        """Yield the room's valid events with `after < offset <= upto`, in order, in batches
        (as they come: a batch is what can be sent to the client in one write).

        Raises:
            LogGapError: retention removed offset `after + 1`.
            LogUnavailableError: the log could not be read to `upto`.
        """
        ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Send the room's current state (a fresh join, or after a resync notice)."""

    events: Sequence[Event]
    resync: ResyncReason | None = None


@dataclass(frozen=True, slots=True)
class Missed:
    """Send these events the client missed (all still in memory)."""

    events: Sequence[Event]


@dataclass(frozen=True, slots=True)
class FromLog:
    """Read the missed events `since < offset <= upto` from the log first."""

    since: int


Plan = Snapshot | Missed | FromLog


def snapshot_of(state: LastValues, room: str, upto: int) -> list[Event]:
    """The room's snapshot: its project's latest state events up to `upto` (none for the feed)."""
    if room == ACTIVITY_FEED:
        return []
    project_id = room.removeprefix("project:")
    return [event for event in state.snapshot(project_id) if event.offset <= upto]


def refusal(
    since: int | None, epoch: str | None, *, head: int, current: str
) -> ResyncReason | None:
    """Why a resume from `since` (of `epoch`) cannot be served at all, or None."""
    if since is None:
        return None
    if epoch is not None and epoch != current:
        return ResyncReason.EPOCH_MISMATCH
    if since > head:
        return ResyncReason.FUTURE_OFFSET
    return None


def plan(
    room: str,
    since: int | None,
    epoch: str | None,
    *,
    head: int,
    current_epoch: str,
    history: RoomBuffers,
    state: LastValues,
    limit: int,
) -> Plan:
    """Decide what a join sends before its live events (see the module docstring)."""
    reason = refusal(since, epoch, head=head, current=current_epoch)
    if since is None or reason is not None:
        return Snapshot(snapshot_of(state, room, head), reason)
    if not history.covers(since):
        return FromLog(since)
    try:
        return Missed(history.between(room, since, head, limit=limit))
    except TooManyEventsError:
        return Snapshot(snapshot_of(state, room, head), ResyncReason.TOO_MANY)


def notice(room: str, reason: ResyncReason, epoch: str, upto: int) -> dict[str, object]:
    """The resync notice; its `offset` is where live delivery of the room resumes after."""
    return {"room": room, "reason": reason.value, "epoch": epoch, "offset": upto}
