"""Facts kept beside the log, each in a one-message durable queue: its epoch and a checkpoint.

- The *epoch* names one incarnation of the log. It is written when the bridge creates the log,
  so it changes exactly when the log is re-created, and clients holding offsets of an older log
  can be told to resync.
- The *checkpoint* records the offset up to which this deployment has dead-lettered invalid
  messages, so a restarted bridge dead-letters what arrived while it was down, and nothing twice
  (except the few messages handled after the last checkpoint, at worst).

A value is read with basic.get and returned to the queue at once (nack with requeue); a write
replaces it (the queue holds one message and drops the oldest).
"""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
from aio_pika.abc import AbstractChannel


async def read_value(channel: AbstractChannel, queue_name: str, *, attempts: int = 3) -> str | None:
    """Return the value held in a one-message queue, or None if it holds none.

    Another reader may hold the message for an instant, so an empty answer is retried.
    """
    queue = await channel.get_queue(queue_name, ensure=False)
    for attempt in range(attempts):
        message = await queue.get(no_ack=False, fail=False, timeout=10)
        if message is not None:
            value = message.body.decode()
            await message.nack(requeue=True)
            return value
        if attempt + 1 < attempts:
            await asyncio.sleep(0.05)
    return None


async def write_value(channel: AbstractChannel, queue_name: str, value: str) -> None:
    """Replace the value held in a one-message queue (persistent, confirmed)."""
    await channel.default_exchange.publish(
        aio_pika.Message(value.encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        routing_key=queue_name,
        timeout=10,
    )


async def ensure_epoch(channel: AbstractChannel, queue_name: str, *, log_created: bool) -> str:
    """Return the log's epoch, writing a new one if the log was just created or has none."""
    if not log_created:
        existing = await read_value(channel, queue_name)
        if existing:
            return existing
    await write_value(channel, queue_name, uuid.uuid4().hex[:16])
    # Read back: if two bridges created the log at the same instant, both adopt the last write.
    value = await read_value(channel, queue_name)
    if value is None:
        raise RuntimeError(f"the epoch written to {queue_name} could not be read back")
    return value


async def read_checkpoint(channel: AbstractChannel, queue_name: str, epoch: str) -> int | None:
    """Return the dead-letter checkpoint offset of this epoch, or None if there is none."""
    value = await read_value(channel, queue_name, attempts=1)
    if value is None:
        return None
    stored_epoch, _, offset = value.partition(":")
    if stored_epoch != epoch or not offset.isdigit():
        return None
    return int(offset)


async def write_checkpoint(
    channel: AbstractChannel, queue_name: str, epoch: str, offset: int
) -> None:
    """Record that every message up to `offset` of this epoch was checked."""
    await write_value(channel, queue_name, f"{epoch}:{offset}")
