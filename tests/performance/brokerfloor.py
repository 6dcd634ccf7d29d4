"""The broker's share of eventbridge's latency: a raw aio-pika consumer of the same events.

eventbridge's events go publisher → RabbitMQ → `<prefix>.log` stream → bridge → clients, where a
bare server builds them in-process. `BrokerFloor` binds a second stream, `<prefix>.floor`, to
eventbridge's exchange like its log and consumes it in the benchmark process while a paced
phase runs, recording each event's publish → consume latency (its `sent_at`). Its p99 is what
any consumer of RabbitMQ sees at that moment, the floor under eventbridge's own p99.
"""

from __future__ import annotations

import json
import time
from typing import Self

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from tests.performance.fanout_phases import percentile


def floor_queue(prefix: str) -> str:
    """The name of the floor's stream (for deleting it with the prefix's objects)."""
    return f"{prefix}.floor"


class BrokerFloor:
    """Consumes `<prefix>.floor` (bound to `<prefix>.events` for every key) from its end."""

    def __init__(self, amqp_url: str, prefix: str) -> None:
        self._url, self._prefix = amqp_url, prefix
        self._latencies: list[float] = []
        self._recording = False
        self._unacked = 0

    async def __aenter__(self) -> Self:
        self._connection = await aio_pika.connect(self._url, name="bench-broker-floor")
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=1000)
        queue = await channel.declare_queue(
            floor_queue(self._prefix), durable=True, arguments={"x-queue-type": "stream"}
        )
        await queue.bind(f"{self._prefix}.events", "#")
        await queue.consume(self._received, arguments={"x-stream-offset": "next"})
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._connection.close()

    async def _received(self, message: AbstractIncomingMessage) -> None:
        arrived = time.time()
        if self._recording:
            self._latencies.append(arrived - json.loads(message.body)["data"]["sent_at"])
        self._unacked += 1
        if self._unacked >= 100:  # a stream consumer's credit comes back with its acks
            self._unacked = 0
            await message.ack(multiple=True)

    def record(self) -> None:
        """Start recording latencies (forgetting earlier ones)."""
        self._latencies = []
        self._recording = True

    def stop(self) -> tuple[float | None, float | None]:
        """Stop recording; the p50 and p99 since `record`, in milliseconds."""
        self._recording = False
        p50, p99 = percentile(self._latencies, 0.5), percentile(self._latencies, 0.99)
        return (
            None if p50 is None else p50 * 1e3,
            None if p99 is None else p99 * 1e3,
        )
