"""Replay: select events from the log by time or offset, then publish them again, confirmed.

Selecting reads the log once and never writes to it: the tail is found by reading the last
chunk (not with a sync marker), markers, earlier replays and invalid records are skipped, and
only the selected offsets are kept. Republishing reads exactly those records again and sends
each one's original body, either to the exchange (every consumer sees it again) or straight into
the log (only the bridges' rooms see it), with up to `window` publisher confirms in flight.
Progress is the highest original offset all of whose predecessors are confirmed, so a replay
stopped at any point resumes after it, at least once. `bridge/cli/replay.py` is the command.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
from array import array
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Literal

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from bridge.decoding import DeadLetter, decode_record
from bridge.eventlog import (
    REPLAY_OF_HEADER,
    ROUTING_KEY_HEADER,
    LogClosedError,
    LogGapError,
    LogReader,
    LogRecord,
    OffsetSpec,
    read_range,
)
from bridge.topology import Names
from schemas.envelope import Envelope
from schemas.errors import EventBridgeError

Target = Literal["exchange", "rooms"]
TIME_MARGIN = timedelta(minutes=5)
"""Reading by time starts this long before `since`: producers' clocks are not the broker's."""
TAIL_QUIET_SECONDS = 0.25
"""The last chunk has been read once no record came for this long."""
TAIL_MAX_SECONDS = 1.0
"""With producers publishing, stop following the tail after this long."""
STALL_SECONDS = 3.0
"""How long a record the log holds may take to arrive before reading counts as stuck."""
SAMPLE_SIZE = 5


class ReplayError(EventBridgeError):
    """A replay cannot go on; the message says what happened and what to do."""


class LogMissingError(ReplayError):
    """The event log does not exist under this prefix."""


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


async def find_tail(connection: AbstractConnection, log_name: str, *, prefetch: int) -> int | None:
    """The newest offset in the log (None if it holds nothing), found without writing to it.

    RabbitMQ 3.10 reports no message count for a stream, and a sync marker would append to the
    log, so this reads the last chunk until it goes quiet. Every offset returned exists.
    """
    async with LogReader(connection, log_name, "last", prefetch=prefetch) as reader:
        try:
            record = await asyncio.wait_for(reader.next(), STALL_SECONDS)
        except TimeoutError:
            return None  # an empty log delivers nothing from "last"
        if record is None:
            raise ReplayError(f"{log_name} closed while its tail was read: is the broker up?")
        tail = record.offset
        deadline = asyncio.get_running_loop().time() + TAIL_MAX_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            await reader.done(record)
            try:
                following = await asyncio.wait_for(reader.next(), TAIL_QUIET_SECONDS)
            except TimeoutError:
                break
            if following is None:
                break
            record, tail = following, following.offset
        return tail


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
    selection = Selection(tail=await find_tail(connection, log_name, prefetch=prefetch))
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
                await _check_start(connection, log_name, lower, prefetch=prefetch)
            _consider(selection, record, criteria, max_bytes)
            if on_record is not None:
                on_record(selection, upto)
            if record.offset >= upto:
                return selection
            if stop is not None and stop.is_set():
                selection.interrupted = True
                return selection


async def _check_start(
    connection: AbstractConnection, log_name: str, start: int, *, prefetch: int
) -> None:
    """Raise unless retention left `start` in the log, now that the first record read lies past it.

    Offsets have holes (each new segment of the stream begins with a chunk no consumer receives),
    so only the log's first offset tells whether `start` was removed or never was a record.
    """
    async with LogReader(connection, log_name, "first", prefetch=prefetch) as reader:
        first = await _next_record(reader, log_name, start, may_be_empty=False)
    if first is not None and first.offset > start:
        raise ReplayError(
            f"the log no longer holds offset {start} (it starts at {first.offset} now; "
            f"retention removed the rest): replay --from-offset {first.offset}"
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


async def selected_records(
    connection: AbstractConnection, log_name: str, offsets: array[int], *, prefetch: int
) -> AsyncGenerator[LogRecord, None]:
    """Yield the records at `offsets` (ascending), read from the log again, in order.

    Raises:
        ReplayError: retention removed some of them, or the log could not be read to the end.
    """
    if not offsets:
        return
    index = 0
    records = read_range(connection, log_name, offsets[0] - 1, offsets[-1], prefetch=prefetch)
    assert isinstance(records, AsyncGenerator)  # closed below as soon as the last one is read
    try:
        async with contextlib.aclosing(records):
            async for record in records:
                if record.offset == offsets[index]:
                    yield record
                    index += 1
                    if index == len(offsets):
                        return
    except LogGapError as exc:
        raise ReplayError(f"retention removed records while they were replayed: {exc}") from exc
    except LogClosedError as exc:
        raise ReplayError(f"{exc}: the connection to RabbitMQ was lost") from exc


def replay_message(record: LogRecord, target: Target) -> aio_pika.Message:
    """The message that replays a record: its original body and routing key, marked as a
    replay of its offset (and, straight into the log, carrying its routing key in a header)."""
    headers = {
        name: value
        for name, value in (record.message.headers or {}).items()
        if not name.startswith(("x-stream-", "x-eventbridge-"))
    }
    headers[REPLAY_OF_HEADER] = record.offset
    if target == "rooms":
        headers[ROUTING_KEY_HEADER] = record.routing_key
    event_id = json.loads(record.message.body)["id"]
    return aio_pika.Message(
        record.message.body,
        headers=headers,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(event_id),
    )


class Republisher:
    """Publishes replay messages in order with up to `window` confirms in flight.

    `confirmed_through` is the highest original offset whose replay, and every earlier one, the
    broker confirmed; `failure` is the first publish that failed (nothing after it counts).
    """

    def __init__(
        self,
        connection: AbstractConnection,
        names: Names,
        target: Target,
        *,
        window: int = 64,
        timeout: float = 10.0,
    ) -> None:
        self._connection = connection
        self._names = names
        self._target: Target = target
        self._timeout = timeout
        self._slots = asyncio.Semaphore(window)
        self._in_flight: collections.deque[tuple[int, asyncio.Task[object]]] = collections.deque()
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self.confirmed = 0
        self.confirmed_through: int | None = None
        self.failure: ReplayError | None = None

    @property
    def destination(self) -> str:
        """Where replays go, in words."""
        if self._target == "exchange":
            return f"the exchange {self._names.exchange}"
        return f"the rooms (appended to {self._names.log})"

    async def __aenter__(self) -> Republisher:
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        if self._target == "rooms":
            self._exchange = self._channel.default_exchange
            return self
        try:
            self._exchange = await self._channel.get_exchange(self._names.exchange)
        except aio_pika.exceptions.ChannelNotFoundEntity as exc:
            raise ReplayError(
                f"no exchange {self._names.exchange}: start the bridge once (eventbridge serve)"
            ) from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.drain()
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(aio_pika.exceptions.AMQPError, ConnectionError):
                await self._channel.close()

    async def send(self, record: LogRecord) -> None:
        """Publish one record's replay once a slot in the window is free (returns at once
        after a failure; check `failure`)."""
        if self._exchange is None:
            raise RuntimeError("use the Republisher inside `async with`")
        await self._slots.acquire()
        if self.failure is not None:
            self._slots.release()
            return
        routing_key = self._names.log if self._target == "rooms" else record.routing_key
        publish = self._exchange.publish(
            replay_message(record, self._target),
            routing_key,
            mandatory=True,
            timeout=self._timeout,
        )
        task: asyncio.Task[object] = asyncio.ensure_future(publish)
        self._in_flight.append((record.offset, task))
        task.add_done_callback(lambda done: self._settled(record.offset, done))

    async def drain(self) -> None:
        """Wait until every publish in flight is confirmed or failed."""
        await asyncio.gather(*(task for _, task in self._in_flight), return_exceptions=True)

    def _settled(self, offset: int, task: asyncio.Task[object]) -> None:
        self._slots.release()
        error = None if task.cancelled() else task.exception()
        if (task.cancelled() or error is not None) and self.failure is None:
            self.failure = self._describe(offset, error)
        while self._in_flight and self._in_flight[0][1].done():
            head_offset, head = self._in_flight[0]
            if head.cancelled() or head.exception() is not None:
                break  # nothing after a failed publish counts as done
            self._in_flight.popleft()
            self.confirmed += 1
            self.confirmed_through = head_offset

    def _describe(self, offset: int, error: BaseException | None) -> ReplayError:
        where = f"the replay of offset {offset}"
        if isinstance(error, aio_pika.exceptions.PublishError):
            bound = f"{self._names.log}" if self._target == "rooms" else "any queue"
            return ReplayError(
                f"the broker returned {where} as unroutable: {bound} is not bound for its "
                "routing key; start the bridge (it binds the log), then resume"
            )
        if isinstance(error, aio_pika.exceptions.DeliveryError):
            return ReplayError(f"the broker refused {where} (nack): read its log, then resume")
        if isinstance(error, TimeoutError):
            return ReplayError(
                f"the broker did not confirm {where} within {self._timeout:g} s: check that it "
                "is up and not blocked (memory or disk alarm), then resume"
            )
        return ReplayError(f"{where} failed ({error!r}): check that RabbitMQ is up, then resume")
