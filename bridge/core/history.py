"""Recent history in memory: per-room event buffers and the last value of each piece of state.

- `RoomBuffers` keeps the newest events of every room, bounded by one global budget (events
  and bytes) with first-in-first-out eviction, so every room's buffer is complete for offsets
  above one `floor`.
  Short resumes are served from here without touching the broker.
- `LastValues` keeps the latest `agent_status` and `progress_update` of each agent and the latest
  `deployment_status` of each deployment, per project: the snapshot a fresh join receives.
- `RoomIndex` keeps the offset of the newest event of every room, so a resume of a quiet room
  reads the log only as far as that room's last event, or learns at once that nothing was
  missed.

All three are fed every valid event in log order.

The buffers hold each event as a plain tuple of its fields (`Stored`), not as an `Event`: a
plain tuple of strings, bytes and numbers is untracked by the garbage collector, so the hundred
thousand events of a full history cost no collection any time (an `Event`, a `NamedTuple`
subclass, would stay tracked and make every full collection walk them all). Events are rebuilt
(`Event._make`, about a quarter of a microsecond) only when they are read.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

from bridge.core.events import EVENT_OVERHEAD_BYTES, Event
from bridge.errors import TooManyEventsError

Stored = tuple[Any, ...]
"""An event's fields as a plain tuple, in `Event`'s order."""
_OFFSET, _ROOMS, _PAYLOAD = (
    Event._fields.index("offset"),
    Event._fields.index("rooms"),
    Event._fields.index("payload"),
)
_event = Event._make


def _size(stored: Stored) -> int:
    return len(stored[_PAYLOAD]) + EVENT_OVERHEAD_BYTES


class RoomBuffers:
    """The newest events of every room, at most `budget` events and `max_bytes` bytes in all.

    Attributes:
        floor: every room's buffer holds every event of that room with an offset above this.
    """

    def __init__(self, budget: int, max_bytes: int = 2**62) -> None:
        self._budget = budget
        self._max_bytes = max_bytes
        self.bytes = 0
        self._order: deque[Stored] = deque()
        self._rooms: dict[str, deque[Stored]] = {}
        self.floor = -1

    def __len__(self) -> int:
        return len(self._order)

    def reset(self, floor: int) -> None:
        """Forget everything; the buffers are complete above `floor` from now on."""
        self._order.clear()
        self._rooms.clear()
        self.bytes = 0
        self.floor = floor

    def record(self, event: Event) -> None:
        """Add an event (events arrive in offset order), evicting the oldest past the budget."""
        if not event.rooms:
            return
        stored = tuple(event)
        self._order.append(stored)
        self.bytes += event.size
        for room in event.rooms:
            buffer = self._rooms.get(room)
            if buffer is None:
                self._rooms[room] = buffer = deque()
            buffer.append(stored)
        while self._order and (len(self._order) > self._budget or self.bytes > self._max_bytes):
            oldest = self._order.popleft()
            self.bytes -= _size(oldest)
            for room in oldest[_ROOMS]:
                buffer = self._rooms[room]
                buffer.popleft()
                if not buffer:
                    del self._rooms[room]
            self.floor = oldest[_OFFSET]

    def covers(self, after: int) -> bool:
        """Whether every event above offset `after` is still in memory."""
        return after >= self.floor

    def between(self, room: str, after: int, upto: int, *, limit: int) -> list[Event]:
        """The room's events with `after < offset <= upto`, oldest first.

        Raises:
            TooManyEventsError: there are more than `limit` of them.
        """
        found: list[Stored] = []
        for stored in reversed(self._rooms.get(room, ())):
            offset = stored[_OFFSET]
            if offset <= after:
                break
            if offset <= upto:
                found.append(stored)
                if len(found) > limit:
                    raise TooManyEventsError(f"more than {limit} events to resume {room}")
        return [_event(stored) for stored in reversed(found)]

    def newest_offsets(self) -> dict[str, int]:
        """The offset of the newest event held for each room."""
        return {room: buffer[-1][_OFFSET] for room, buffer in self._rooms.items()}


class LastValues:
    """The latest state events per project, at most `capacity` entries and `max_bytes` bytes
    (least recently updated entries are evicted first)."""

    def __init__(self, capacity: int, max_bytes: int = 2**62) -> None:
        self._capacity = capacity
        self._max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[tuple[str, str, str], Stored] = OrderedDict()
        self._projects: dict[str, dict[tuple[str, str, str], Stored]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def reset(self) -> None:
        """Forget everything (the log was re-created)."""
        self._entries.clear()
        self._projects.clear()
        self.bytes = 0

    def record(self, event: Event) -> None:
        """Keep the event if it is the newest state of its agent or deployment."""
        if event.subject is None or event.project_id is None or event.replayed:
            return  # a replay shows history again; it does not roll state back
        key = (event.project_id, event.type, event.subject)
        replaced = self._entries.get(key)
        if replaced is not None:
            self.bytes -= _size(replaced)
        stored = tuple(event)
        self._entries[key] = stored
        self.bytes += event.size
        self._entries.move_to_end(key)
        self._projects.setdefault(event.project_id, {})[key] = stored
        while self._entries and (
            len(self._entries) > self._capacity or self.bytes > self._max_bytes
        ):
            (project, *_), evicted = old = self._entries.popitem(last=False)
            self.bytes -= _size(evicted)
            entries = self._projects[project]
            del entries[old[0]]
            if not entries:
                del self._projects[project]

    def newest_offsets(self) -> dict[str, int]:
        """The offset of the newest state event held for each project."""
        return {
            project: max(stored[_OFFSET] for stored in entries.values())
            for project, entries in self._projects.items()
        }

    def entries(self) -> list[Event]:
        """Every state event held, least recently updated first (for a checkpoint)."""
        return [_event(stored) for stored in self._entries.values()]

    def snapshot(self, project_id: str) -> list[Event]:
        """The project's current state events, oldest offset first."""
        stored = sorted(self._projects.get(project_id, {}).values(), key=lambda s: s[_OFFSET])
        return [_event(each) for each in stored]


class RoomIndex:
    """The offset of the newest event of each room, for at most `capacity` rooms (the least
    recently active are forgotten first).

    Attributes:
        floor: every event of a room this index does not hold is at or below this offset.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._newest: OrderedDict[str, int] = OrderedDict()
        self.floor = -1

    def __len__(self) -> int:
        return len(self._newest)

    def reset(self, floor: int) -> None:
        """Forget everything: no room's events above `floor` are known yet."""
        self._newest.clear()
        self.floor = floor

    def record(self, event: Event) -> None:
        """Note an event (events arrive in offset order)."""
        newest = self._newest
        for room in event.rooms:
            newest[room] = event.offset
            newest.move_to_end(room)
        while len(newest) > self._capacity:
            _, forgotten = newest.popitem(last=False)
            self.floor = max(self.floor, forgotten)

    def bound(self, room: str) -> int:
        """An offset no event of `room` is newer than: its newest event's, or `floor`."""
        return self._newest.get(room, self.floor)

    def items(self) -> list[tuple[str, int]]:
        """Every room and its newest offset, least recently active first."""
        return list(self._newest.items())

    def restore(self, rooms: list[tuple[str, int]], *, floor: int) -> None:
        """Take over a saved index (`items()` of another one, and its floor)."""
        self.reset(floor)
        for room, offset in rooms:
            self._newest[room] = offset
        while len(self._newest) > self._capacity:
            _, forgotten = self._newest.popitem(last=False)
            self.floor = max(self.floor, forgotten)
