"""State checkpoints: the snapshot state and the room index, saved beside the log now and then,
so a starting bridge reads one checkpoint and a short tail of the log instead of the whole log.

A checkpoint is one message in the stream `<prefix>.snapshots` (replicated like the log, and
short-lived: a newer checkpoint makes the older ones useless): zlib-compressed JSON with the
offset it covers, the room index and every state event (its payload as delivered). Building and
parsing it runs in a worker thread, so the event loop never stalls on a large state; the state's
events are tuples of strings and numbers, which the thread can read while the loop goes on.
Only the replica that writes dead letters writes checkpoints; every replica reads them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection

from bridge.broker.eventlog import LogReader
from bridge.broker.logmessage import LogMessage
from bridge.core.events import Event
from bridge.core.history import LastValues, RoomIndex
from bridge.core.subscription import HubLimits
from bridge.errors import LogUnavailableError
from schemas.routing import rooms_for

logger = logging.getLogger(__name__)

FORMAT = 1
EPOCH_HEADER = "x-eventbridge-epoch"
OFFSET_HEADER = "x-eventbridge-offset"
READ_SECONDS = 5.0
"""How long the newest checkpoint may take to arrive before the bridge starts without one."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """State restored from a checkpoint: complete up to `offset` of the log."""

    offset: int
    state: LastValues
    index: RoomIndex


def _encode(offset: int, entries: list[Event], rooms: list[tuple[str, int]], floor: int) -> bytes:
    """The checkpoint message's body (runs in a worker thread)."""
    document = {
        "format": FORMAT,
        "offset": offset,
        "index_floor": floor,
        "index": rooms,
        "state": [
            [event.offset, event.id, event.type, event.project_id, event.subject,
             event.payload.decode(), event.occurred_at]
            for event in entries
        ],
    }  # fmt: skip
    return zlib.compress(json.dumps(document, separators=(",", ":")).encode(), 1)


def _decode(body: bytes, limits: HubLimits) -> Checkpoint:
    """A checkpoint from its message body (runs in a worker thread).

    Raises:
        ValueError: the body is not a checkpoint this version can read.
    """
    document: dict[str, Any] = json.loads(zlib.decompress(body))
    if document.get("format") != FORMAT:
        raise ValueError(f"checkpoint format {document.get('format')!r} is not {FORMAT}")
    state = LastValues(limits.state_max_entries, limits.state_max_bytes)
    for offset, event_id, event_type, project_id, subject, payload, *rest in document["state"]:
        # `occurred_at` was added last; checkpoints written before it lack it.
        occurred_at = float(rest[0]) if rest else 0.0
        state.record(
            Event(
                offset=offset,
                id=event_id,
                type=event_type,
                project_id=project_id,
                rooms=rooms_for(event_type, project_id),
                subject=subject,
                payload=payload.encode(),
                occurred_at=occurred_at,
            )
        )
    index = RoomIndex(limits.room_index_max)
    index.restore(document["index"], floor=document["index_floor"])
    return Checkpoint(document["offset"], state, index)


async def save(
    channel: AbstractChannel,
    stream: str,
    epoch: str,
    *,
    offset: int,
    entries: list[Event],
    rooms: list[tuple[str, int]],
    floor: int,
) -> int:
    """Write one checkpoint (with a publisher confirm); return its size in bytes."""
    body = await asyncio.to_thread(_encode, offset, entries, rooms, floor)
    message = aio_pika.Message(
        body,
        headers={EPOCH_HEADER: epoch, OFFSET_HEADER: offset},
        content_type="application/json",
        content_encoding="deflate",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    await channel.default_exchange.publish(message, routing_key=stream, timeout=30)
    return len(body)


async def load(
    connection: AbstractConnection, stream: str, epoch: str, limits: HubLimits
) -> Checkpoint | None:
    """The newest checkpoint of this epoch, or None if there is none (or it cannot be read)."""
    newest: LogMessage | None = None
    try:
        async with LogReader(connection, stream, "last", prefetch=16) as reader:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + READ_SECONDS
            while (left := deadline - loop.time()) > 0:
                try:
                    record = await asyncio.wait_for(reader.next(), min(left, 0.5))
                except TimeoutError:
                    break
                if record is None:
                    break
                await reader.done(record)
                headers = record.message.headers or {}
                if headers.get(EPOCH_HEADER) == epoch:
                    newest = record.message
    except (LogUnavailableError, aio_pika.exceptions.AMQPError) as exc:
        logger.warning("could not read the state checkpoint (%s); starting without it", exc)
        return None
    if newest is None:
        return None
    try:
        return await asyncio.to_thread(_decode, newest.body, limits)
    except (ValueError, KeyError, TypeError, zlib.error) as exc:
        logger.warning("the state checkpoint cannot be read (%s); starting without it", exc)
        return None
