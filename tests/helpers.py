"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
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


async def delete_broker_objects(
    amqp_url: str, queues: Sequence[str], exchanges: Sequence[str]
) -> list[str]:
    """Delete queues and exchanges (bounded by timeouts); return the names that failed.

    Each deletion gets its own channel, since a failed one closes its channel.
    """
    failed: list[str] = []
    connection = await aio_pika.connect(
        amqp_url, timeout=10, client_properties={"connection_name": "eventbridge-tests-cleanup"}
    )
    async with connection:
        for name, is_queue in [(q, True) for q in queues] + [(e, False) for e in exchanges]:
            try:
                async with asyncio.timeout(10):
                    channel = await connection.channel()
                    if is_queue:
                        await channel.queue_delete(name)
                    else:
                        await channel.exchange_delete(name)
                    await channel.close()
            except (aio_pika.exceptions.AMQPError, OSError, TimeoutError):
                failed.append(name)
    return failed


async def delete_prefix(
    amqp_url: str, *prefixes: str, extra_queues: Sequence[str] = ()
) -> list[str]:
    """Delete every broker object the bridge declares under these prefixes (the list
    `eventbridge topology delete` uses) and `extra_queues`; return the names that failed.
    What does not exist counts as deleted."""
    queues = [name for prefix in prefixes for name in queue_names(Names(prefix))]
    exchanges = [Names(prefix).exchange for prefix in prefixes]
    return await delete_broker_objects(amqp_url, [*queues, *extra_queues], exchanges)
