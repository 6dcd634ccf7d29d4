"""The broker leg of `bench_slow_consumer`'s latency: a plain aio-pika consumer of the bridge's
log stream, so a latency spike can be placed before the bridge (publisher, broker, machine) or
in it.

The probe attaches to `<prefix>.log` at `next` and, for each event of the phase's project,
records its arrival time minus the `sent_at` the publisher stamped (the same clock the normal
clients use). It does nothing else per message: the bridge's own log reader does at least as
much before it can deliver, so the probe's latency is a lower bound of what any client sees.
"""

from __future__ import annotations

import contextlib
import time
from array import array
from types import TracebackType

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

PREFETCH = 1000
ACK_EVERY = 100


def sent_at_of(body: bytes) -> float | None:
    """The `data.sent_at` of a benchmark event body (it is the last field of `data`)."""
    at = body.rfind(b'"sent_at":', max(0, len(body) - 120))
    if at < 0:
        return None
    end = at + 10
    while end < len(body) and body[end] not in b",}":
        end += 1
    try:
        return float(body[at + 10 : end])
    except ValueError:
        return None


class LogProbe:
    """Consumes the log from `next` and records the broker-leg latency of one project's events.

    Args:
        amqp_url: the broker.
        log: the stream queue (`<prefix>.log`).
        routing_key: the routing key of the events to time (others are only acknowledged).
    """

    def __init__(self, amqp_url: str, log: str, routing_key: str) -> None:
        self._url = amqp_url
        self._log = log
        self._routing_key = routing_key
        self.latencies = array("d")
        """Arrival minus `sent_at`, in ms, of every timed event, in arrival order."""
        self.arrivals = array("d")
        """Arrival times (`time.time()`) of the same events."""
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._unacked = 0

    async def __aenter__(self) -> LogProbe:
        self._connection = await aio_pika.connect(
            self._url,
            timeout=10,
            client_properties={"connection_name": "bench-slow-consumer-probe"},
        )
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        self._queue = await channel.get_queue(self._log, ensure=False)
        self._tag = await self._queue.consume(
            self._on_message, arguments={"x-stream-offset": "next"}
        )
        return self

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        now = time.time()
        if message.routing_key == self._routing_key:
            sent_at = sent_at_of(message.body)
            if sent_at is not None:
                self.latencies.append((now - sent_at) * 1000.0)
                self.arrivals.append(now)
        self._unacked += 1
        if self._unacked >= ACK_EVERY:
            self._unacked = 0
            await message.ack(multiple=True)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(aio_pika.exceptions.AMQPError, OSError, TimeoutError):
                await self._queue.cancel(self._tag, timeout=5)
        if self._connection is not None:
            with contextlib.suppress(aio_pika.exceptions.AMQPError, OSError, TimeoutError):
                await self._connection.close()
