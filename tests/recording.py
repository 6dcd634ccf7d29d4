"""Test doubles of the delivery core's collaborators: a connection that records what it is sent,
a log held in memory, and a way to build decoded events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from bridge.core.connection import ClientConnection, CoalesceKey, Frame
from bridge.core.events import DeadLetter, Event, decode
from bridge.errors import LogGapError, LogUnavailableError
from schemas.codes import CloseReason
from tests.helpers import make_envelope


def event(
    offset: int,
    event_type: str = "deployment_log",
    data: dict[str, Any] | None = None,
    *,
    project: str | None = "p1",
) -> Event:
    """A decoded event at `offset` (a `deployment_log` line of project p1 unless told)."""
    if data is None:
        data = {"deployment_id": "d", "stream": "stdout", "line": f"line {offset}"}
    envelope = make_envelope(event_type, project, data)
    key = f"project.{project}.{event_type}" if project is not None else f"global.{event_type}"
    result = decode(envelope.model_dump_json().encode(), key, offset, max_bytes=65_536)
    assert not isinstance(result, DeadLetter), result
    return result


class RecordingConnection(ClientConnection):
    """A connection that records, in order, every frame the hub queues for it (no writer: what
    is queued counts as sent), and whether it was dropped as slow or disconnected."""

    transport = "recording"

    def __init__(self, name: str = "c1", *, limit: int = 1000, max_bytes: int = 2**30) -> None:
        super().__init__(name, limit=limit, max_bytes=max_bytes)
        self.frames: list[dict[str, Any]] = []
        self.disconnected: list[CloseReason] = []
        self.slow = False

    def frame(self, event: Event) -> str:
        return event.payload.decode()

    def notice(self, name: str, payload: dict[str, Any]) -> str:
        return json.dumps({"notice": name, **payload})

    async def write(self, frame: Frame) -> None:  # pragma: no cover - nothing is written
        raise AssertionError(f"a recording connection has no writer (asked for {frame[:40]!r})")

    async def disconnect(self, reason: CloseReason) -> None:
        self.disconnected.append(reason)

    def push(self, frame: Frame, key: CoalesceKey | None = None) -> None:
        del key  # coalescing is the outbox's business (tests/unit/test_delivery.py)
        self.frames.append(json.loads(frame))

    def push_backlog(self, frames: Iterable[Frame]) -> None:
        self.frames.extend(json.loads(frame) for frame in frames)

    def drop_as_slow(self) -> None:
        self.slow = True

    @property
    def offsets(self) -> list[int]:
        """The offsets of the events received, in order (notices left out)."""
        return [frame["offset"] for frame in self.frames if "notice" not in frame]

    @property
    def notices(self) -> list[dict[str, Any]]:
        """The notices received, in order."""
        return [frame for frame in self.frames if "notice" in frame]


class BatchingConnection(ClientConnection):
    """A connection with ready frames (bytes, one line each) whose socket takes every write at
    once while `open_socket` is set; records each write as the offsets (or reply types) in it."""

    transport = "batching"

    def __init__(self) -> None:
        super().__init__("batching-1", limit=100)
        self.open_socket = True
        self.writes: list[list[Any]] = []

    def frame(self, event: Event) -> bytes:
        return event.payload + b"\n"

    def notice(self, name: str, payload: dict[str, Any]) -> bytes:
        return json.dumps({"type": name, **payload}).encode() + b"\n"

    def _record(self, data: Frame) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        items = [json.loads(line) for line in text.splitlines()]
        self.writes.append([item.get("offset", item.get("type")) for item in items])

    def write_now(self, frame: Frame) -> bool:
        if self.open_socket:
            self._record(frame)
        return self.open_socket

    async def write(self, frame: Frame) -> None:
        self._record(frame)

    async def disconnect(self, reason: CloseReason) -> None:
        pass


class MemoryLog:
    """The log as a list of events: a `RangeReader` for the hub.

    `first` is the oldest offset retention kept; `fail_after` makes a read fail (as a lost
    connection would) after yielding that many events; `gate`, when set, holds every read
    before its first event until the test opens it.
    """

    def __init__(self, events: Sequence[Event] = (), *, first: int = 0) -> None:
        self.events = list(events)
        self.first = first
        self.fail_after: int | None = None
        self.gate: asyncio.Event | None = None
        self.reads: list[tuple[str, int, int]] = []

    async def read(self, room: str, after: int, upto: int) -> AsyncIterator[list[Event]]:
        """Yield the room's events `after < offset <= upto`, in order, one per batch."""
        self.reads.append((room, after, upto))
        if self.gate is not None:
            await self.gate.wait()
        if after + 1 < self.first:
            raise LogGapError(f"the log starts at offset {self.first} now")
        yielded = 0
        for candidate in self.events:
            if after < candidate.offset <= upto and room in candidate.rooms:
                if self.fail_after is not None and yielded >= self.fail_after:
                    raise LogUnavailableError("the connection was lost")
                yielded += 1
                yield [candidate]
        if self.fail_after is not None and yielded >= self.fail_after:
            raise LogUnavailableError("the connection was lost")
