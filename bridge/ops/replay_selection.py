"""Replay, first half: select events from the log by time or offset, reading it once.

Selecting never writes to the log: the tail is found by reading the last chunk (not with a sync
marker), markers, earlier replays and invalid records are skipped, and only the selected offsets
are kept (`Selection`). `bridge.ops.replay` republishes them; `bridge/cli/replay.py` is the
command.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aio_pika
from aio_pika.abc import AbstractConnection

from bridge.broker.eventlog import (
    LogReader,
    LogRecord,
    OffsetSpec,
    decode_record,
    first_offset,
    last_offset,
)
from bridge.broker.topology import Names
from bridge.core.events import DeadLetter
from bridge.errors import LogMissingError, LogUnavailableError, ReplayError
from schemas.envelope import Envelope

TIME_MARGIN = timedelta(minutes=5)
"""Reading by time starts this long before `since`: producers' clocks are not the broker's."""
STALL_SECONDS = 3.0
"""How long a record the log holds may take to arrive before reading counts as stuck."""
SAMPLE_SIZE = 5


@dataclass(frozen=True, slots=True)
class Criteria:
    """Which events to replay: a time window (`since <= occurred_at < until`) or an inclusive
    offset range, narrowed by project and type (empty means any)."""

    since: datetime | None = None
    until: datetime | None = None
    from_offset: int | None = None
    to_offset: int | None = None
    projects: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()

    def matches_filters(self, envelope: Envelope) -> bool:
        """Whether an event is of a wanted project and type."""
        if self.projects and envelope.project_id not in self.projects:
            return False
        return not self.types or envelope.type in self.types

    def in_window(self, envelope: Envelope) -> bool:
        """Whether an event occurred inside the time window (always, without one)."""
        if self.since is not None and envelope.occurred_at < self.since:
            return False
        return self.until is None or envelope.occurred_at < self.until


@dataclass(frozen=True, slots=True)
class Sampled:
    """One selected event, as a dry run shows it."""

    offset: int
    occurred_at: datetime
    type: str
    project_id: str | None
    id: str


@dataclass(slots=True)
class Selection:
    """The selected offsets (ascending) and what was skipped on the way."""

    tail: int | None = None
    offsets: array[int] = field(default_factory=lambda: array("q"))
    sample: list[Sampled] = field(default_factory=list)
    read: int = 0
    first_read: int | None = None
    last_read: int | None = None
    invalid: int = 0
    markers: int = 0
    replays: int = 0
    outside_window: array[int] = field(default_factory=lambda: array("q"))
    """Offsets of events of a wanted project and type that the time window left out."""
    interrupted: bool = False

    def left_out_between(self, first: int, last: int) -> int:
        """How many events the time window left out with offsets in `first..last`."""
        return sum(1 for offset in self.outside_window if first <= offset <= last)


async def check_log(connection: AbstractConnection, names: Names) -> None:
    """Raise `LogMissingError` unless the log exists (looked up passively: nothing is created)."""
    async with connection.channel() as channel:
        try:
            await channel.declare_queue(names.log, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity as exc:
            raise LogMissingError(
                f"no event log {names.log}: start the bridge once (eventbridge serve)"
            ) from exc


async def select(
    connection: AbstractConnection,
    log_name: str,
    criteria: Criteria,
    *,
    max_bytes: int,
    prefetch: int,
    stop: asyncio.Event | None = None,
    on_record: Callable[[Selection, int], None] | None = None,
) -> Selection:
    """Read the log from the criteria's start up to its tail right now; keep what matches.

    Raises:
        ReplayError: retention removed the start of an offset range, or reading got stuck.
    """
    try:
        tail = await last_offset(connection, log_name, within=STALL_SECONDS)
    except LogUnavailableError as exc:
        raise ReplayError(f"{exc}: is the broker up?") from exc
    selection = Selection(tail=tail)
    if selection.tail is None or (
        criteria.from_offset is not None and criteria.from_offset > selection.tail
    ):
        return selection
    start, lower, upto = _bounds(criteria, selection.tail)
    async with LogReader(connection, log_name, start, prefetch=prefetch) as reader:
        while True:
            # By time, a start past the last chunk delivers nothing: then nothing is selected.
            may_be_empty = selection.read == 0 and criteria.from_offset is None
            record = await _next_record(reader, log_name, upto, may_be_empty=may_be_empty)
            if record is None:
                return selection
            await reader.done(record)
            if record.offset < lower:
                continue  # the broker starts at the chunk holding the start
            if record.offset > upto:
                return selection  # appended after the replay started
            if criteria.from_offset is not None and selection.read == 0 and record.offset > lower:
                await _check_start(connection, log_name, lower)
            _consider(selection, record, criteria, max_bytes)
            if on_record is not None:
                on_record(selection, upto)
            if record.offset >= upto:
                return selection
            if stop is not None and stop.is_set():
                selection.interrupted = True
                return selection


async def _check_start(connection: AbstractConnection, log_name: str, start: int) -> None:
    """Raise unless retention left `start` in the log, now that the first record read lies past it.

    Offsets have holes (each new segment of the stream begins with a chunk no consumer receives),
    so only the log's first offset tells whether `start` was removed or never was a record.
    """
    try:
        first = await first_offset(connection, log_name, within=STALL_SECONDS)
    except LogUnavailableError as exc:
        raise ReplayError(f"{exc}: is the broker up?") from exc
    if first is not None and first > start:
        raise ReplayError(
            f"the log no longer holds offset {start} (it starts at {first} now; "
            f"retention removed the rest): replay --from-offset {first}"
        )


def _bounds(criteria: Criteria, tail: int) -> tuple[OffsetSpec, int, int]:
    """Where reading starts (an offset, or a time before `since`), the first offset that
    counts, and the last one."""
    if criteria.from_offset is not None:
        upto = tail if criteria.to_offset is None else min(criteria.to_offset, tail)
        return criteria.from_offset, criteria.from_offset, upto
    since = criteria.since or datetime.now(UTC)
    return (since - TIME_MARGIN).astimezone(UTC), 0, tail


async def _next_record(
    reader: LogReader, log_name: str, upto: int, *, may_be_empty: bool
) -> LogRecord | None:
    """The next record; None if none came and none had to (see `may_be_empty`).

    Raises:
        ReplayError: the channel closed, or a record the log holds did not arrive in time.
    """
    try:
        record = await asyncio.wait_for(reader.next(), STALL_SECONDS)
    except TimeoutError:
        if may_be_empty:
            return None
        raise ReplayError(
            f"{log_name} delivered nothing for {STALL_SECONDS:g} s before offset {upto}: "
            "check the broker's health and run the replay again"
        ) from None
    if record is None:
        raise ReplayError(f"{log_name} closed while it was read: is the broker up?")
    return record


def _consider(selection: Selection, record: LogRecord, criteria: Criteria, max_bytes: int) -> None:
    """Count one record of the range and keep its offset if it is a wanted event."""
    selection.read += 1
    if selection.first_read is None:
        selection.first_read = record.offset
    selection.last_read = record.offset
    if record.marker is not None:
        selection.markers += 1
        return
    if record.replay_of is not None:
        selection.replays += 1  # a copy: its original is the event
        return
    if isinstance(decode_record(record, max_bytes=max_bytes), DeadLetter):
        selection.invalid += 1
        return
    envelope = Envelope.model_validate_json(record.message.body)
    if not criteria.matches_filters(envelope):
        return
    if not criteria.in_window(envelope):
        selection.outside_window.append(record.offset)
        return
    selection.offsets.append(record.offset)
    if len(selection.sample) < SAMPLE_SIZE:
        selection.sample.append(
            Sampled(
                record.offset, envelope.occurred_at, envelope.type, envelope.project_id, envelope.id
            )
        )
