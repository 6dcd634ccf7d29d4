"""Recent history in memory: per-room event buffers and the last value of each piece of state.

- `RoomBuffers` keeps the newest events of every room, bounded by one global budget (events
  and bytes) with first-in-first-out eviction, so every room's buffer is complete for offsets
  above one `floor`.
  Short resumes are served from here without touching the broker.
- `LastValues` keeps the latest `agent_status` and `progress_update` of each agent and the latest
  `deployment_status` of each deployment, per project: the snapshot a fresh join receives.

Both are fed every valid event in log order, at warm start and live alike.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from bridge.decoding import Event


class TooManyEventsError(Exception):
    """More events than the catch-up limit would have to be sent."""


class RoomBuffers:
    """The newest events of every room, at most `budget` events and `max_bytes` bytes in all.

    Attributes:
        floor: every room's buffer holds every event of that room with an offset above this.
    """

    def __init__(self, budget: int, max_bytes: int = 2**62) -> None:
        self._budget = budget
        self._max_bytes = max_bytes
        self.bytes = 0
        self._order: deque[Event] = deque()
        self._rooms: dict[str, deque[Event]] = {}
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
        self._order.append(event)
        self.bytes += event.size
        for room in event.rooms:
            buffer = self._rooms.get(room)
            if buffer is None:
                self._rooms[room] = buffer = deque()
            buffer.append(event)
        while self._order and (len(self._order) > self._budget or self.bytes > self._max_bytes):
            oldest = self._order.popleft()
            self.bytes -= oldest.size
            for room in oldest.rooms:
                buffer = self._rooms[room]
                buffer.popleft()
                if not buffer:
                    del self._rooms[room]
            self.floor = oldest.offset

    def covers(self, after: int) -> bool:
        """Whether every event above offset `after` is still in memory."""
        return after >= self.floor

    def between(self, room: str, after: int, upto: int, *, limit: int) -> list[Event]:
        """The room's events with `after < offset <= upto`, oldest first.

        Raises:
            TooManyEventsError: there are more than `limit` of them.
        """
        found: list[Event] = []
        for event in reversed(self._rooms.get(room, ())):
            if event.offset <= after:
                break
            if event.offset <= upto:
                found.append(event)
                if len(found) > limit:
                    raise TooManyEventsError
        found.reverse()
        return found

    def newest_offsets(self) -> dict[str, int]:
        """The offset of the newest event held for each room."""
        return {room: buffer[-1].offset for room, buffer in self._rooms.items()}


class LastValues:
    """The latest state events per project, at most `capacity` entries and `max_bytes` bytes
    (least recently updated entries are evicted first)."""

    def __init__(self, capacity: int, max_bytes: int = 2**62) -> None:
        self._capacity = capacity
        self._max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[tuple[str, str, str], Event] = OrderedDict()
        self._projects: dict[str, dict[tuple[str, str, str], Event]] = {}

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
            self.bytes -= replaced.size
        self._entries[key] = event
        self.bytes += event.size
        self._entries.move_to_end(key)
        self._projects.setdefault(event.project_id, {})[key] = event
        while self._entries and (
            len(self._entries) > self._capacity or self.bytes > self._max_bytes
        ):
            (project, *_), evicted = old = self._entries.popitem(last=False)
            self.bytes -= evicted.size
            entries = self._projects[project]
            del entries[old[0]]
            if not entries:
                del self._projects[project]

    def newest_offsets(self) -> dict[str, int]:
        """The offset of the newest state event held for each project."""
        return {
            project: max(event.offset for event in entries.values())
            for project, entries in self._projects.items()
        }

    def snapshot(self, project_id: str) -> list[Event]:
        """The project's current state events, oldest offset first."""
        return sorted(self._projects.get(project_id, {}).values(), key=lambda event: event.offset)
