"""What waits for a client that fell behind: its queue of frames, and which progress updates
a newer one supersedes (`bridge.core.connection` owns one per slow client)."""

from __future__ import annotations

from collections import deque

from bridge.core.events import Event
from schemas.events import EventType

Frame = str | bytes
"""What a transport writes: a ready WebSocket frame (bytes), or text its library frames."""

CoalesceKey = tuple[str, str]
"""(project, agent): a progress update supersedes an older queued one with the same key."""


def coalesce_key(event: Event) -> CoalesceKey | None:
    """The key under which a newer event replaces an older queued one: progress updates only
    (each carries the agent's whole progress, so the newest one says all)."""
    if event.type == EventType.PROGRESS_UPDATE and event.subject is not None and not event.replayed:
        return (event.project_id or "", event.subject)
    return None


class Outbox:
    """What is waiting for one slow client, and the bookkeeping of coalescing (only exists
    while something is queued)."""

    __slots__ = ("exempt", "frames", "live_bytes", "newest", "pushed", "superseded")

    def __init__(self) -> None:
        # (sequence, frame, coalesce key, bytes it counts against max_bytes: -1 when exempt)
        self.frames: deque[tuple[int, Frame, CoalesceKey | None, int]] = deque()
        self.newest: dict[CoalesceKey, int] = {}
        self.superseded: set[int] = set()
        self.pushed = 0
        self.exempt = 0
        """Queued frames that do not count against the limits: catch-ups, snapshots, replies."""
        self.live_bytes = 0

    @property
    def queued(self) -> int:
        return len(self.frames) - len(self.superseded)

    @property
    def counted(self) -> int:
        """Queued live frames: what the slow-consumer limit applies to."""
        return self.queued - self.exempt

    def add(self, frame: Frame, key: CoalesceKey | None, counted: int) -> None:
        self.frames.append((self.pushed, frame, key, counted))
        if counted < 0:
            self.exempt += 1
        self.pushed += 1
