"""Rebuilding what a starting bridge keeps in memory, behind its back, while it is already live.

A starting bridge reads the log live from its tail at once and reports ready; the records below
that point (the warm window, and since the last state checkpoint) are read meanwhile into a
`Backfill`: recent history, snapshot state and the room index, as they would be had the bridge
read them first. Live events that arrive in the meantime are kept aside and appended at the end,
so every structure is still fed in log order; then the hub adopts the backfill's structures in
one step (`Hub.finish_backfill`).
"""

from __future__ import annotations

from bridge.core.events import Event
from bridge.core.history import LastValues, RoomBuffers, RoomIndex
from bridge.core.subscription import HubLimits


class Backfill:
    """History, state and room index being rebuilt from the records below `live_from`.

    Args:
        limits: the hub's bounds (the same budgets as the live structures).
        live_from: the offset live reading started at; the backfill covers what is below it.
        history_from: the first offset kept in the history (the warm window's start); older
            records only update the state and the index.
        state: state restored from a checkpoint, if any, to continue from.
        index: the room index restored from the same checkpoint, if any.
    """

    def __init__(
        self,
        limits: HubLimits,
        *,
        live_from: int,
        history_from: int,
        state: LastValues | None = None,
        index: RoomIndex | None = None,
    ) -> None:
        self.live_from = live_from
        self.history_from = history_from
        self.history = RoomBuffers(limits.history_max_events, limits.history_max_bytes)
        self.history.reset(floor=history_from - 1)
        self.state = state or LastValues(limits.state_max_entries, limits.state_max_bytes)
        if index is None:
            index = RoomIndex(limits.room_index_max)
            index.reset(floor=history_from - 1)
        self.index = index
        self.live: list[Event] = []
        """Live events that arrived while the backfill ran, in log order."""
        self.position = -1
        """The newest offset the backfill has read."""

    def record(self, event: Event) -> None:
        """An event of the log below `live_from`, in log order."""
        if event.offset >= self.history_from:
            self.history.record(event)
        self.state.record(event)
        self.index.record(event)

    def passed(self, offset: int) -> None:
        """The backfill read the record at `offset` (an event, a marker or a dead letter)."""
        self.position = max(self.position, offset)

    def absorb_live(self) -> None:
        """Append the live events kept aside, after everything the backfill read."""
        for event in self.live:
            self.history.record(event)
            self.state.record(event)
            self.index.record(event)
        self.live.clear()
