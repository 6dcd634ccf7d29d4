"""The log reader against a real stream: a trickle of records is acknowledged once the reader
waits, so the broker does not count handled records as unacknowledged; records taken in the
channel's reader (`deliver_inline`) arrive in order, once and whole."""

from __future__ import annotations

import asyncio
import contextlib
import json

import aio_pika
import pytest
from aiormq.abc import DeliveredMessage

from bridge.broker.eventlog import LogReader
from bridge.ops import rabbitmqctl
from bridge.upstream.aiormq import deliver_inline
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
    # An entry can list its properties as a string, not a table (seen in CI: another test's).
    [pid] = [
        entry["pid"]
        for entry in connections
        if isinstance(entry["client_properties"], list) and name in entry["client_properties"]
    ]
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


async def test_records_arrive_in_order_once_and_whole_when_taken_inline(
    amqp_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records of every size (empty, small, and bodies spread over several AMQP frames) reach
    the reader in log order, once and byte for byte, all taken in the channel's reader (aiormq's
    per-delivery task is never used)."""
    stream = f"{prefix}.inline"
    bodies = [b"", *(json.dumps({"n": n}).encode() for n in range(200)), bytes(300_000), b"x"]
    through_tasks: list[object] = []

    async def via_task(self: LogReader, message: object) -> None:
        through_tasks.append(message)

    monkeypatch.setattr(LogReader, "_on_message", via_task)
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        await channel.declare_queue(stream, durable=True, arguments={"x-queue-type": "stream"})
        for body in bodies:
            await channel.default_exchange.publish(aio_pika.Message(body), routing_key=stream)
        received: list[tuple[int, bytes]] = []
        async with LogReader(connection, stream, "first", prefetch=64) as reader:
            while len(received) < len(bodies):
                record = await asyncio.wait_for(reader.next(), 10)
                assert record is not None
                received.append((record.offset, record.message.body))
                await reader.done(record)
            with contextlib.suppress(TimeoutError):
                extra = await asyncio.wait_for(reader.next(), 0.3)
                raise AssertionError(f"a record arrived twice or from nowhere: {extra!r}")
        offsets = [offset for offset, _ in received]
        assert offsets == sorted(set(offsets))
        assert [body for _, body in received] == bodies
        assert through_tasks == []
    finally:
        await connection.close()
        await delete_broker_objects(amqp_url, [stream], [])


async def test_other_consumers_of_the_channel_keep_aiormqs_own_delivery(
    amqp_url: str, prefix: str
) -> None:
    """On a channel where one consumer's deliveries are taken inline, another consumer still
    gets its own messages through its callback, and neither sees the other's."""
    inline_queue, plain_queue = f"{prefix}.inline-one", f"{prefix}.plain-one"
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        for queue in (inline_queue, plain_queue):
            await channel.declare_queue(queue, auto_delete=True)
        underlay = await channel.get_underlay_channel()
        taken: list[bytes] = []
        called: asyncio.Queue[bytes] = asyncio.Queue()

        async def plain(message: DeliveredMessage) -> None:
            await called.put(message.body)

        async def unused(message: DeliveredMessage) -> None:
            raise AssertionError("an inline delivery went through aiormq's task")

        deliver_inline(underlay, "inline-tag", lambda message: taken.append(message.body))
        await underlay.basic_consume(inline_queue, unused, no_ack=True, consumer_tag="inline-tag")
        await underlay.basic_consume(plain_queue, plain, no_ack=True, consumer_tag="plain-tag")
        for number in range(5):
            for queue in (inline_queue, plain_queue):
                body = f"{queue}:{number}".encode()
                await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue)
        plain_bodies = [await asyncio.wait_for(called.get(), 10) for _ in range(5)]
        for _ in range(100):
            if len(taken) == 5:
                break
            await asyncio.sleep(0.05)
        assert taken == [f"{inline_queue}:{n}".encode() for n in range(5)]
        assert plain_bodies == [f"{plain_queue}:{n}".encode() for n in range(5)]
    finally:
        await connection.close()
        await delete_broker_objects(amqp_url, [inline_queue, plain_queue], [])
