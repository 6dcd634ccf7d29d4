"""Reading the records below a starting bridge's live start, in the background.

The first session of a bridge reads the log live from its tail and is ready at once; this task
reads `[start, live_from)` meanwhile: valid events into the hub's `Backfill` (history, snapshot
state, room index), invalid records newer than the dead-letter checkpoint to the dead-letter
writer. When it reaches `live_from` the hub adopts what it rebuilt. A lost connection stops it;
the next session resumes it after the last record it read.
"""

from __future__ import annotations

import logging
import time

from aio_pika.abc import AbstractConnection

from bridge.broker.deadletters import DeadLetterWriter
from bridge.broker.eventlog import LogReader, decode_record
from bridge.core.backfill import Backfill
from bridge.core.events import DeadLetter
from bridge.core.hub import Hub

logger = logging.getLogger(__name__)


async def backfill(
    connection: AbstractConnection,
    log_name: str,
    hub: Hub,
    rebuilding: Backfill,
    *,
    start: int,
    writer: DeadLetterWriter | None,
    prefetch: int,
    max_bytes: int,
) -> tuple[int, bool]:
    """Read `[start, live_from)` into `rebuilding`, then hand it to the hub; return how many
    invalid records went to the dead-letter writer, and whether the rebuild is finished (not:
    the log closed first, and the next session goes on)."""
    end = rebuilding.live_from
    dead = 0
    started = time.monotonic()
    if start < end:
        logger.info("rebuilding history and state from offsets %d to %d", start, end - 1)
        async with LogReader(connection, log_name, start, prefetch=prefetch) as reader:
            while (record := await reader.next()) is not None:
                await reader.done(record)
                if record.offset < start:
                    continue  # the broker starts at the chunk holding `start`
                if record.offset >= end:
                    break
                rebuilding.passed(record.offset)
                if writer is not None:
                    writer.backfilled(record.offset)
                if record.marker is not None:
                    continue
                result = decode_record(record, max_bytes=max_bytes)
                if isinstance(result, DeadLetter):
                    if writer is not None:
                        await writer.put(record.offset, record.message, result)
                        dead += 1
                    continue
                rebuilding.record(result)
            else:
                return dead, False  # the log closed: the next session goes on from here
    hub.finish_backfill(rebuilding)
    if writer is not None:
        writer.backfilled(None)
    logger.info(
        "history and state rebuilt (%d events of history, %d state entries) in %.1f s",
        len(rebuilding.history),
        len(rebuilding.state),
        time.monotonic() - started,
    )
    return dead, True
