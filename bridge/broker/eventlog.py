"""The durable event log: a RabbitMQ stream, read in order by offset.

Besides producers' events, the bridge appends *markers* straight into the stream (never through
the exchange, so plain consumers never see them): a sync marker tells a reader it has caught up
with everything published before it started. Every reader skips markers.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel
from aiormq.abc import AbstractChannel as UnderlayChannel
from aiormq.abc import DeliveredMessage

from bridge.broker.logmessage import LogMessage
from bridge.broker.timing import LogTail
from bridge.core.events import DeadLetter, Event, decode
from bridge.errors import LogUnavailableError
from bridge.upstream.aiormq import deliver_inline, on_consumer_cancelled

logger = logging.getLogger(__name__)

MARKER_HEADER = "x-eventbridge-marker"
REPLAY_OF_HEADER = "x-eventbridge-replay-of"
"""On a replayed record: the offset of the original in the log."""
ROUTING_KEY_HEADER = "x-eventbridge-routing-key"
"""On a record appended straight to the log (a replay to rooms): its event's routing key."""
SYNC_ID_HEADER = "x-eventbridge-sync-id"
OFFSET_HEADER = "x-stream-offset"
ACK_BATCH = 64
"""Records acknowledged together (at most half the prefetch, so credit never runs out)."""
ACK_IDLE_SECONDS = 0.05
"""How long the reader waits for more records before acknowledging a partial batch."""

OffsetSpec = int | datetime | str
"""Where reading starts: an offset, a timestamp, or one of `first`, `last`, `next`."""


class _Idle:
    """What the reader's idle timer puts into its inbox: acknowledge what was handled."""


_IDLE = _Idle()


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One message of the log and its offset."""

    offset: int
    message: LogMessage

    @property
    def routing_key(self) -> str:
        """The event's routing key (a record appended straight to the log carries it in a
        header, since its AMQP routing key is the log's name)."""
        headers = self.message.headers or {}
        key = headers.get(ROUTING_KEY_HEADER) if REPLAY_OF_HEADER in headers else None
        return str(key) if key is not None else (self.message.routing_key or "")

    @property
    def replay_of(self) -> int | None:
        """The original's offset if this record is a replay, else None."""
        value = (self.message.headers or {}).get(REPLAY_OF_HEADER)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def marker(self) -> str | None:
        """The marker kind if the bridge wrote this record for itself, else None."""
        value = (self.message.headers or {}).get(MARKER_HEADER)
        return str(value) if value is not None else None


def decode_record(record: LogRecord, *, max_bytes: int) -> Event | DeadLetter:
    """Decode one log record (see `bridge.core.events.decode`)."""
    return decode(
        record.message.body,
        record.routing_key,
        record.offset,
        max_bytes=max_bytes,
        replay_of=record.replay_of,
    )


class LogReader:
    """Reads the log stream in order from a starting point, on its own channel.

    Use as an async context manager; `next()` returns records in log order and `None` once the
    channel closed or the broker cancelled the consumer (broker gone, stream deleted). Call
    `done()` after handling each record: acks are credit for the stream, sent in batches, so at
    most `prefetch` records are in memory.
    """

    def __init__(
        self,
        connection: aio_pika.abc.AbstractConnection,
        log_name: str,
        start: OffsetSpec,
        *,
        prefetch: int,
        tail: LogTail | None = None,
    ) -> None:
        self._connection = connection
        self._log_name = log_name
        self._start = start
        self._prefetch = prefetch
        self._tail = tail
        self._ack_batch = max(1, min(ACK_BATCH, prefetch // 2))
        self._inbox: asyncio.Queue[DeliveredMessage | _Idle | None] = asyncio.Queue()
        self._channel: AbstractChannel | None = None
        self._underlay: UnderlayChannel | None = None
        self._consumer_tag: str | None = None
        self._unacked = 0
        self._last: LogMessage | None = None
        self._idle: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> LogReader:
        self._channel = await self._connection.channel()
        self._channel.close_callbacks.add(self._on_close)
        # A consumer cancelled by the broker (the log was deleted) must end the read too.
        await on_consumer_cancelled(self._channel, self._on_close)
        await self._channel.set_qos(prefetch_count=self._prefetch)
        # Consumed on the aiormq channel: no aio-pika `IncomingMessage` and second task per
        # record (see `bridge.broker.logmessage`), and each delivery taken in the channel's
        # reader rather than in a task of its own (`deliver_inline`, set up before consuming).
        self._underlay = await self._channel.get_underlay_channel()
        tag = f"eventbridge-log-{uuid.uuid4().hex}"
        deliver_inline(self._underlay, tag, self._take)
        await self._underlay.basic_consume(
            self._log_name,
            self._on_message,
            arguments={"x-stream-offset": self._start},
            consumer_tag=tag,
        )
        self._consumer_tag = tag
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self._channel is not None and not self._channel.is_closed:
            try:
                # Cancel first: a stream consumer whose channel just closes stays counted in
                # the broker's consumer numbers for tens of seconds.
                if self._underlay is not None and self._consumer_tag is not None:
                    await self._underlay.basic_cancel(self._consumer_tag)
                await self._channel.close()
            except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError):
                logger.debug("log reader channel was already closing", exc_info=True)

    async def _on_message(self, message: DeliveredMessage) -> None:
        # aiormq's consumer callback, which `deliver_inline` bypasses for this consumer.
        self._take(message)

    def _take(self, message: DeliveredMessage) -> None:
        # Called in the channel's reader, in delivery order; must not raise.
        self._inbox.put_nowait(message)
        if self._tail is not None:
            offset = (message.header.properties.headers or {}).get(OFFSET_HEADER)
            if isinstance(offset, int) and offset > self._tail.received:
                self._tail.received = offset

    def _on_close(self, *_: Any) -> None:
        self._inbox.put_nowait(None)

    async def next(self) -> LogRecord | None:
        """Return the next record, or None once the channel has closed."""
        while True:
            if self._inbox.empty() and self._last is not None and self._idle is None:
                # About to wait: acknowledge what was handled a moment from now, so a slow
                # trickle of events is acknowledged neither one by one nor late. One timer for
                # any number of records (not a timed wait per record), and the acks are sent
                # here, in the reader's task, so they go out in order.
                loop = asyncio.get_running_loop()
                self._idle = loop.call_later(ACK_IDLE_SECONDS, self._inbox.put_nowait, _IDLE)
            message = await self._inbox.get()
            if not isinstance(message, _Idle):
                break
            self._idle = None
            await self.flush_acks()
        if message is None:
            self._inbox.put_nowait(None)  # stay closed for later calls
            return None
        return self._record(message)

    def ready(self) -> LogRecord | None:
        """The next record if it has already arrived, else None (without waiting)."""
        while not self._inbox.empty():
            message = self._inbox.get_nowait()
            if isinstance(message, _Idle):
                self._idle = None  # records are coming: `done()` acknowledges them in batches
                continue
            if message is None:
                self._inbox.put_nowait(None)  # closed: `next()` says so
                return None
            return self._record(message)
        return None

    async def ready_after_a_turn(self) -> LogRecord | None:
        """The next record if it has arrived by the end of one turn of the event loop.

        A batch (what a catch-up writes to its client in one write, what the session delivers in
        one write per client) takes the records that have arrived; one turn more lets the
        connection parse what the socket already holds: batches of about 7 records instead of
        3.5 on a long read (more turns add nothing; tests/performance/README.md).
        """
        await asyncio.sleep(0)
        return self.ready()

    def _record(self, delivered: DeliveredMessage) -> LogRecord:
        message = LogMessage(delivered)
        offset = (message.headers or {}).get(OFFSET_HEADER)
        if not isinstance(offset, int):
            raise TypeError(f"{self._log_name} delivered a message without a stream offset")
        return LogRecord(offset, message)

    async def done(self, record: LogRecord) -> None:
        """Acknowledge handled records in batches, keeping the stream's credit flowing."""
        self._unacked += 1
        self._last = record.message
        if self._unacked >= self._ack_batch:
            await self.flush_acks()

    async def flush_acks(self) -> None:
        """Acknowledge every record handled so far."""
        # Taken first: cancelled while the ack is sent, a later flush must not send it again
        # (a delivery tag acknowledged twice closes the channel).
        last, self._last, self._unacked = self._last, None, 0
        if (
            last is not None
            and last.delivery_tag is not None
            and self._underlay is not None
            and not self._underlay.is_closed
        ):
            await self._underlay.basic_ack(last.delivery_tag, multiple=True)


FIRST_RECORD_SECONDS = 3.0
"""How long the log may take to deliver its first record before it counts as empty."""
TAIL_QUIET_SECONDS = 0.25
"""The last chunk has been read once no record came for this long."""
TAIL_MAX_SECONDS = 1.0
"""With producers publishing, stop following the tail after this long."""


async def first_offset(
    connection: aio_pika.abc.AbstractConnection,
    log_name: str,
    *,
    within: float = FIRST_RECORD_SECONDS,
) -> int | None:
    """The offset of the oldest record the log still holds; None if it holds none.

    Raises:
        LogUnavailableError: the log closed (the connection was lost, or it was deleted).
    """
    async with LogReader(connection, log_name, "first", prefetch=10) as reader:
        try:
            record = await asyncio.wait_for(reader.next(), within)
        except TimeoutError:
            return None  # an empty log delivers nothing
    if record is None:
        raise LogUnavailableError(f"{log_name} closed before its first record could be read")
    return record.offset


async def last_offset(
    connection: aio_pika.abc.AbstractConnection,
    log_name: str,
    *,
    within: float = FIRST_RECORD_SECONDS,
    quiet: float = TAIL_QUIET_SECONDS,
    longest: float = TAIL_MAX_SECONDS,
) -> int | None:
    """The newest offset in the log (None if it holds nothing), found without writing to it.

    RabbitMQ 3.10 reports no message count for a stream over AMQP, and a sync marker (see
    `probe_tail`, exact but a write) would append to the log, so this reads the last chunk
    until no record came for `quiet` seconds (or for `longest` seconds while producers keep
    publishing). Every offset returned exists.

    Raises:
        LogUnavailableError: the log closed (the connection was lost, or it was deleted).
    """
    async with LogReader(connection, log_name, "last", prefetch=1000) as reader:
        try:
            record = await asyncio.wait_for(reader.next(), within)
        except TimeoutError:
            return None  # an empty log delivers nothing from "last"
        if record is None:
            raise LogUnavailableError(f"{log_name} closed while its tail was read")
        tail = record.offset
        deadline = asyncio.get_running_loop().time() + longest
        while asyncio.get_running_loop().time() < deadline:
            await reader.done(record)
            try:
                following = await asyncio.wait_for(reader.next(), quiet)
            except TimeoutError:
                break
            if following is None:
                break
            record, tail = following, max(tail, following.offset)
        return tail


async def probe_tail(
    channel: AbstractChannel, connection: aio_pika.abc.AbstractConnection, log_name: str
) -> tuple[str, int]:
    """Append a sync marker and return its id and offset: the log's tail right now.

    The reader attaches at "next" *before* the marker is appended, so it is sure to see it
    ("last" is not: with other producers publishing, the last chunk may already lie past it).
    """
    async with LogReader(connection, log_name, "next", prefetch=1000) as reader:
        sync_id = await append_sync_marker(channel, log_name)
        while (record := await reader.next()) is not None:
            await reader.done(record)
            if is_sync(record, sync_id):
                return sync_id, record.offset
    raise LogUnavailableError("the log closed before its tail could be found")


def is_sync(record: LogRecord, sync_id: str) -> bool:
    """Whether a record is the sync marker with this id."""
    return record.marker == "sync" and (record.message.headers or {}).get(SYNC_ID_HEADER) == sync_id


async def append_sync_marker(channel: AbstractChannel, log_name: str) -> str:
    """Append a sync marker to the log (with a publisher confirm) and return its id.

    A reader that meets this marker has seen everything published before this call.
    """
    sync_id = uuid.uuid4().hex
    message = aio_pika.Message(
        b"",
        headers={MARKER_HEADER: "sync", SYNC_ID_HEADER: sync_id},
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    await channel.default_exchange.publish(message, routing_key=log_name, timeout=10)
    return sync_id
