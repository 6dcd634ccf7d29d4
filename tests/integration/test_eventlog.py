"""The log reader against a real stream: a trickle of records is acknowledged once the reader
waits, so the broker does not count handled records as unacknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import json

import aio_pika

from bridge.broker.eventlog import LogReader
from bridge.ops import rabbitmqctl
from tests.helpers import delete_broker_objects


async def unacknowledged(amqp_url: str, connection_name: str) -> int:
    """The broker's count of unacknowledged deliveries on the channels of one connection."""
    connections = await rabbitmqctl.listing(
        amqp_url, "list_connections", "pid", "client_properties"
    )
    channels = await rabbitmqctl.listing(
        amqp_url, "list_channels", "connection", "messages_unacknowledged"
    )
    assert connections is not None, "rabbitmqctl could not list the connections"
    assert channels is not None, "rabbitmqctl could not list the channels"
    name = ["connection_name", "longstr", connection_name]
    [pid] = [entry["pid"] for entry in connections if name in entry["client_properties"]]
    return sum(entry["messages_unacknowledged"] for entry in channels if entry["connection"] == pid)


async def test_a_trickle_is_acknowledged_a_moment_after_the_reader_waits(
    amqp_url: str, prefix: str
) -> None:
    """Three records handled one by one stay unacknowledged while the reader is busy, and are
    acknowledged within a moment once it waits for more (not only after 64 are handled)."""
    name = f"{prefix}-reader"
    stream = f"{prefix}.trickle"
    connection = await aio_pika.connect(amqp_url, client_properties={"connection_name": name})
    try:
        channel = await connection.channel()
        await channel.declare_queue(stream, durable=True, arguments={"x-queue-type": "stream"})
        for number in range(3):
            body = json.dumps({"number": number}).encode()
            await channel.default_exchange.publish(aio_pika.Message(body), routing_key=stream)
        async with LogReader(connection, stream, "first", prefetch=1000) as reader:
            for _ in range(3):
                record = await asyncio.wait_for(reader.next(), 10)
                assert record is not None
                await reader.done(record)
            busy = await unacknowledged(amqp_url, name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.next(), 0.5)  # waits: the idle acknowledgement
            idle = await unacknowledged(amqp_url, name)
        assert (busy, idle) == (3, 0)
    finally:
        await connection.close()
        await delete_broker_objects(amqp_url, [stream], [])
