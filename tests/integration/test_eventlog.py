"""The log reader against a real stream: a trickle of records is acknowledged once the reader
waits, so the broker does not count handled records as unacknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import json

import aio_pika

from bridge.broker.eventlog import LogReader


async def unacknowledged(connection_name: str) -> int:
    """The broker's count of unacknowledged deliveries on the channels of one connection."""

    async def rabbitmqctl(*arguments: str) -> list[dict[str, object]]:
        process = await asyncio.create_subprocess_exec(
            "rabbitmqctl",
            "-q",
            *arguments,
            "--formatter",
            "json",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 30)
        result: list[dict[str, object]] = json.loads(output)
        return result

    connections = await rabbitmqctl("list_connections", "pid", "client_properties")
    [pid] = [
        entry["pid"]
        for entry in connections
        if ["connection_name", "longstr", connection_name] in entry["client_properties"]  # type: ignore[operator]
    ]
    channels = await rabbitmqctl("list_channels", "connection", "messages_unacknowledged")
    return sum(
        int(str(entry["messages_unacknowledged"]))
        for entry in channels
        if entry["connection"] == pid
    )


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
            busy = await unacknowledged(name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.next(), 0.5)  # waits: the idle acknowledgement
            idle = await unacknowledged(name)
        assert (busy, idle) == (3, 0)
    finally:
        with contextlib.suppress(aio_pika.exceptions.AMQPError):
            cleanup = await connection.channel()
            await cleanup.queue_delete(stream)
        await connection.close()
