"""Reading a range of the log by offset: the records between two offsets (a replay), and one
room's events between two offsets (a resume's catch-up, `bridge.core.resume.RangeReader`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable

import aio_pika

from bridge.broker.eventlog import LogReader, LogRecord, decode_record, first_offset
from bridge.core.events import Event
from bridge.errors import LogGapError, LogUnavailableError
from schemas.routing import ACTIVITY_FEED

BATCH_MAX = 256
"""Most records `read_batches` puts in one batch."""


async def read_batches(
    connection: aio_pika.abc.AbstractConnection,
    log_name: str,
    after: int,
    upto: int,
    *,
    prefetch: int,
) -> AsyncIterator[list[LogRecord]]:
    """Yield the log's records with `after < offset <= upto`, in order, markers included, in
    batches: the records that had arrived when a batch was taken (1 to `BATCH_MAX`), so that a
    reader can handle what the broker sent together in one go (a catch-up writes them to its
    client in one write).

    Raises:
        LogGapError: the first record the log still holds is past `after + 1`.
        LogUnavailableError: reading stopped before `upto`.
    """
    if upto <= after:
        return
    async with LogReader(connection, log_name, after + 1, prefetch=prefetch) as reader:
        first = True
        while (record := await reader.next()) is not None:
            batch: list[LogRecord] = []
            topped_up = False
            while record is not None:
                await reader.done(record)
                if record.offset > after:  # the broker starts at the chunk holding `after + 1`
                    if first and record.offset > after + 1:
                        # Offsets are not dense (each stream segment opens with a chunk no
                        # consumer receives), so a jump is only a gap if retention removed
                        # `after + 1`.
                        oldest = await first_offset(connection, log_name)
                        if oldest is not None and oldest > after + 1:
                            raise LogGapError(f"the log starts at offset {oldest} now")
                    first = False
                    batch.append(record)
                    if record.offset >= upto:
                        yield batch
                        return
                record = reader.ready() if len(batch) < BATCH_MAX else None
                if record is None and not topped_up:  # half the writes to a resuming client
                    topped_up = True
                    record = await reader.ready_after_a_turn()
            if batch:
                yield batch
    raise LogUnavailableError(f"the log could not be read up to offset {upto}")


async def read_range(
    connection: aio_pika.abc.AbstractConnection,
    log_name: str,
    after: int,
    upto: int,
    *,
    prefetch: int,
) -> AsyncIterator[LogRecord]:
    """Yield the log's records with `after < offset <= upto`, one by one (see `read_batches`)."""
    batches = read_batches(connection, log_name, after, upto, prefetch=prefetch)
    assert isinstance(batches, AsyncGenerator)
    async with contextlib.aclosing(batches):
        async for batch in batches:
            for record in batch:
                yield record


class LogRanges:
    """Reads one room's events from the log for resumes (`bridge.core.resume.RangeReader`),
    on the connection the log consumer holds while it is connected."""

    def __init__(self, log_name: str, *, prefetch: int, max_bytes: int) -> None:
        self._log_name = log_name
        self._prefetch = prefetch
        self._max_bytes = max_bytes
        self.connection: aio_pika.abc.AbstractConnection | None = None
        """Set by the consumer while its session runs; None while it is not connected."""

    async def read(self, room: str, after: int, upto: int) -> AsyncIterator[list[Event]]:
        """Yield the room's valid events with `after < offset <= upto`, in order, in batches
        (those of the records the broker sent together; see `read_batches`).

        Raises:
            LogGapError: retention removed offset `after + 1`.
            LogUnavailableError: not connected, or the log could not be read to `upto`.
        """
        connection = self.connection
        if connection is None:
            raise LogUnavailableError("the bridge is not connected to the broker")
        wanted = _routing_key_filter(room)
        try:
            async for batch in read_batches(
                connection, self._log_name, after, upto, prefetch=self._prefetch
            ):
                events = []
                for record in batch:
                    if record.marker is not None or not wanted(record.routing_key):
                        continue  # skipped before decoding: other rooms' records are most of a scan
                    event = decode_record(record, max_bytes=self._max_bytes)
                    if isinstance(event, Event) and room in event.rooms:
                        events.append(event)
                if events:
                    yield events
        except (
            aio_pika.exceptions.AMQPError,
            ConnectionError,
            OSError,
            TimeoutError,
            RuntimeError,  # aio-pika's answer to using a channel that has just closed
        ) as exc:
            raise LogUnavailableError(f"the log could not be read: {exc!r}") from exc


def _routing_key_filter(room: str) -> Callable[[str], bool]:
    """A cheap test on routing keys that keeps every record of `room` (and a few others, which
    decoding then sorts out)."""
    if room == ACTIVITY_FEED:
        return lambda key: key.endswith(".activity_created")
    prefix = f"project.{room.removeprefix('project:')}."
    return lambda key: key.startswith(prefix)
