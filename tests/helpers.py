"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import aio_pika

from bridge.broker.topology import Names
from bridge.ops.teardown import queue_names
from schemas.envelope import Envelope, new_event_id, utc_now


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `predicate()` is true, or fail the test after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


def make_envelope(event_type: str, project_id: str | None, data: dict[str, Any]) -> Envelope:
    """A new envelope, built the way a producer would."""
    return Envelope(
        id=new_event_id(),
        type=event_type,
        schema_version=1,
        project_id=project_id,
        source="tests",
        occurred_at=utc_now(),
        data=data,
    )


async def delete_prefix(amqp_url: str, prefix: str) -> None:
    """Delete every broker object the bridge declares under `prefix` (the list `eventbridge
    topology delete` uses); what does not exist is skipped."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        for queue in queue_names(Names(prefix)):
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.queue_delete(queue)
            if not channel.is_closed:
                await channel.close()
        channel = await connection.channel()
        with contextlib.suppress(aio_pika.exceptions.AMQPError):
            await channel.exchange_delete(Names(prefix).exchange)
