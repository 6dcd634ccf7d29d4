"""One broker connection's lifetime of the log consumer: declare, find the tail, read the log.

A session declares the topology, learns the log's epoch and the dead-letter checkpoint, appends
a sync marker (the tail right now), and reads the log in order from

- the first session: the tail itself, so the bridge is ready at once. What memory should hold
  from before — recent history, snapshot state, the room index — is rebuilt in the background
  (`bridge.broker.backfill`) from the newest state checkpoint and a window of the log
  (`EVENTBRIDGE_WARM_START_EVENTS`), and invalid records since the dead-letter checkpoint are
  dead-lettered there too;
- later sessions (after a lost connection): right after the newest offset handled, or after the
  dead-letter checkpoint if that is older (records already handled are only checked for dead
  letters). An unfinished rebuild goes on where it stopped.

The writer replica also saves a state checkpoint every `EVENTBRIDGE_SNAPSHOT_INTERVAL` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection

from bridge.broker import meta, snapshots, topology
from bridge.broker.backfill import backfill
from bridge.broker.deadletters import DeadLetterWriter
from bridge.broker.eventlog import LogReader, LogRecord, decode_record, is_sync, probe_tail
from bridge.broker.timing import LogTail, observe_delivery
from bridge.core.backfill import Backfill
from bridge.core.events import DeadLetter, traceparent_of
from bridge.core.hub import Hub
from bridge.settings import Settings
from producers import EventPublisher

logger = logging.getLogger(__name__)

BATCH_RECORDS = 64
"""Most records delivered as one batch (`Hub.batch`): enough to write a burst in few writes,
few enough that the first of them is not held back long."""


@dataclass
class Progress:
    """What one session leaves to the next."""

    checked: int | None = None
    """The dead-letter checkpoint: every invalid record up to it is dead-lettered."""
    live_from: int = -1
    """Where the first session started reading live; older records are the backfill's."""
    rebuilding: Backfill | None = None
    """A rebuild below `live_from` not finished yet."""
    rebuild_start: int = 0
    checkpointed: int = -1
    """The offset the newest state checkpoint written covers."""
    dead_lettered: int = 0
    tail: LogTail | None = None
    """The newest record the broker has delivered (for the lag metrics)."""

    def restart(self) -> None:
        """The log was re-created: nothing of the old one carries over."""
        self.checked, self.live_from, self.rebuilding = None, -1, None
        self.rebuild_start, self.checkpointed = 0, -1
        if self.tail is not None:
            self.tail.received = -1  # the new log's offsets start over


class Session:
    """Reads the log for the lifetime of one connection (see the module docstring)."""

    def __init__(
        self,
        connection: AbstractConnection,
        settings: Settings,
        hub: Hub,
        progress: Progress,
        *,
        on_synced: Callable[[], None],
        on_publisher: Callable[[EventPublisher | None], None],
    ) -> None:
        self._connection = connection
        self._settings = settings
        self._names = topology.Names(settings.prefix)
        self._hub = hub
        self._progress = progress
        self._on_synced = on_synced
        self._on_publisher = on_publisher
        self._sync_id = ""
        self._first_sync = True

    async def run(self) -> None:
        """Read until the connection is lost or the log deleted (then return)."""
        settings, names, hub, progress = self._settings, self._names, self._hub, self._progress
        connection = self._connection
        declared = await topology.declare(connection, settings)
        channel = await connection.channel(publisher_confirms=True)
        epoch = await meta.ensure_epoch(channel, names.epoch, log_created=declared.log_created)
        if hub.epoch and epoch != hub.epoch:
            progress.restart()
        hub.set_epoch(epoch)
        writer = None
        if settings.dead_letter_writer:
            if progress.checked is None:
                progress.checked = await meta.read_checkpoint(channel, names.checkpoint, epoch)
            writer = DeadLetterWriter(
                channel,
                names.dead_letters,
                names.checkpoint,
                epoch,
                checked=-1 if progress.checked is None else progress.checked,
                publish_timeout=settings.publish_timeout,
                counts=hub.tally.dead_letters,
            )
        self._sync_id, tail = await probe_tail(channel, connection, names.log)
        first = hub.head < 0
        if first:
            await self._plan_rebuild(tail, epoch)
        start = tail if first else self._resume_offset()
        publisher = EventPublisher(
            connection=connection,
            prefix=settings.prefix,
            source="eventbridge",
            publish_timeout=settings.publish_timeout,
            retry_attempts=1,
        )
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(publisher)
            if writer is not None:
                await stack.enter_async_context(writer)
            tasks = self._background(channel, writer, epoch)
            reader = await stack.enter_async_context(
                LogReader(
                    connection,
                    names.log,
                    start,
                    prefetch=settings.consumer_prefetch,
                    tail=progress.tail,
                )
            )
            self._on_publisher(publisher)
            logger.info("reading %s from offset %s (tail %d)", names.log, start, tail)
            try:
                while (record := await reader.next()) is not None:
                    # What the broker delivered together is delivered together: one write per
                    # client for the whole batch.
                    with self._hub.batch():
                        handled, topped_up = 0, False
                        while record is not None:
                            await self._handle(record, writer)
                            await reader.done(record)
                            handled += 1
                            record = reader.ready() if handled < BATCH_RECORDS else None
                            if record is None and handled > 1 and not topped_up:
                                # A burst: fewer, larger writes. A lone event is not held back.
                                topped_up = True
                                record = await reader.ready_after_a_turn()
            finally:
                self._on_publisher(None)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            if writer is not None:
                progress.checked = writer.checked

    async def _plan_rebuild(self, tail: int, epoch: str) -> None:
        """The first session reads live from the tail: decide what to rebuild below it."""
        settings, hub, progress = self._settings, self._hub, self._progress
        progress.live_from = tail
        hub.start_at(tail)
        checkpoint = await snapshots.load(
            self._connection, self._names.snapshots, epoch, hub.limits
        )
        history_from = max(0, tail - settings.warm_start_events)
        start = history_from
        if checkpoint is not None:
            start = min(start, checkpoint.offset + 1)
        elif history_from > 0:
            logger.info("no state checkpoint: the snapshot state starts with the warm window")
        if settings.dead_letter_writer and progress.checked is not None:
            start = min(start, progress.checked + 1)
        progress.rebuild_start = start
        progress.rebuilding = hub.begin_backfill(
            live_from=tail,
            history_from=history_from,
            state=checkpoint.state if checkpoint is not None else None,
            index=checkpoint.index if checkpoint is not None else None,
        )

    def _resume_offset(self) -> int:
        """Where a later session starts: after what was handled, or after the dead-letter
        checkpoint if that is older (but never below the first session's live start)."""
        progress = self._progress
        candidates = [self._hub.head + 1]
        if self._settings.dead_letter_writer and progress.checked is not None:
            candidates.append(progress.checked + 1)
        return max(progress.live_from, min(candidates))

    def _background(
        self, channel: AbstractChannel, writer: DeadLetterWriter | None, epoch: str
    ) -> list[asyncio.Task[None]]:
        """Start the rebuild (if one is pending) and the state checkpoints (on the writer)."""
        tasks = []
        if (rebuilding := self._progress.rebuilding) is not None:
            tasks.append(asyncio.create_task(self._rebuild(rebuilding, writer), name="backfill"))
        if self._settings.dead_letter_writer and self._settings.snapshot_interval > 0:
            tasks.append(
                asyncio.create_task(self._checkpoints(channel, epoch), name="state-checkpoints")
            )
        return tasks

    async def _rebuild(self, rebuilding: Backfill, writer: DeadLetterWriter | None) -> None:
        progress = self._progress
        start = max(progress.rebuild_start, rebuilding.position + 1)
        if writer is not None:
            writer.backfilled(start - 1)
        dead, finished = await backfill(
            self._connection,
            self._names.log,
            self._hub,
            rebuilding,
            start=start,
            writer=writer,
            prefetch=self._settings.consumer_prefetch,
            max_bytes=self._settings.max_message_bytes,
        )
        progress.dead_lettered += dead
        if finished:
            progress.rebuilding = None

    async def _checkpoints(self, channel: AbstractChannel, epoch: str) -> None:
        """Save the state now and then, once it is complete and has moved on."""
        hub, progress = self._hub, self._progress
        while True:
            await asyncio.sleep(self._settings.snapshot_interval)
            if not hub.state_complete.is_set() or hub.head <= progress.checkpointed:
                continue
            offset = hub.head
            try:
                size = await snapshots.save(
                    channel,
                    self._names.snapshots,
                    epoch,
                    offset=offset,
                    entries=hub.state.entries(),
                    rooms=hub.index.items(),
                    floor=hub.index.floor,
                )
            except (aio_pika.exceptions.AMQPError, ConnectionError, TimeoutError) as exc:
                logger.warning("could not save a state checkpoint: %s", exc)
                return
            progress.checkpointed = offset
            logger.debug("state checkpoint at offset %d (%d bytes)", offset, size)

    async def _handle(self, record: LogRecord, writer: DeadLetterWriter | None) -> None:
        """Decide one record's fate: marker, dead letter, or live event."""
        hub, progress = self._hub, self._progress
        if record.offset < progress.live_from:
            return  # below the first session's live start: the rebuild's
        if record.marker is not None:
            # Every marker moves the head, other replicas' too, so replicas agree on it.
            hub.advance(record.offset)
            if self._first_sync and is_sync(record, self._sync_id):
                self._first_sync = False
                # What is loaded so far lives long: keep it out of the garbage collector's full
                # scans (refcounting still frees it when it is evicted).
                gc.freeze()
                self._on_synced()
            return
        live = record.offset > hub.head
        result = decode_record(record, max_bytes=self._settings.max_message_bytes)
        if isinstance(result, DeadLetter):
            hub.advance(record.offset)
            if writer is not None:
                await writer.put(record.offset, record.message, result)
                progress.dead_lettered += live
        elif live:
            hub.publish(result)
            observe_delivery(hub.tally, result, record.message)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "routed %s event %s at offset %d",
                    result.type,
                    result.id,
                    result.offset,
                    extra={
                        "event_id": result.id,
                        "offset": result.offset,
                        "traceparent": traceparent_of(result.payload),
                    },
                )
        if writer is not None:
            writer.handled(record.offset)
