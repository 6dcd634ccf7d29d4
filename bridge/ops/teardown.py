"""What `eventbridge topology delete` removes: every broker object of one prefix, surveyed
first (what exists, how many messages, whether anything consumes it), then deleted.

A prefix's objects are those `bridge.broker.topology` declares — the exchange, the log and
checkpoint streams, the dead-letter, epoch and checkpoint queues — and any holding queue a
migration left behind (`bridge.ops.migrate`).

Whether a bridge still reads them: AMQP reports a queue's consumers, but RabbitMQ 3.10 reports
none for a stream, so for a local broker `rabbitmqctl` is asked too. Where neither can tell,
the survey says so (`consumers` is None) and the command treats it as "maybe".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractConnection

from bridge.broker.topology import Names, queue_arguments
from bridge.ops import rabbitmqctl
from bridge.ops.migrate import MIGRATING_SUFFIX


def queue_names(names: Names) -> list[str]:
    """Every queue the prefix may have: the log, the checkpoints, the queues beside them, and
    leftovers of a migration."""
    queues = list(queue_arguments(names))
    return [names.log, names.snapshots, *queues, *(queue + MIGRATING_SUFFIX for queue in queues)]


@dataclass(frozen=True, slots=True)
class QueueFound:
    """One queue of the prefix that exists."""

    name: str
    stream: bool
    messages: int
    """Messages ready (a stream's count over AMQP lags, and is 0 on RabbitMQ 3.10)."""
    consumers: int
    """Consumers as AMQP reports them (never a stream's on RabbitMQ 3.10)."""


@dataclass
class Survey:
    """The prefix's objects that exist, and who reads them."""

    names: Names
    queues: list[QueueFound] = field(default_factory=list)
    exchange: bool = False
    consumers: int | None = None
    """Consumers of all its queues together; None where it cannot be told."""
    consumers_source: str = "amqp"

    @property
    def empty(self) -> bool:
        """Whether nothing of the prefix exists."""
        return not self.queues and not self.exchange

    @property
    def objects(self) -> list[str]:
        """The names of everything that exists, the exchange last."""
        return [queue.name for queue in self.queues] + ([self.names.exchange] * self.exchange)


async def count(connection: AbstractConnection, name: str) -> tuple[int, int] | None:
    """A queue's messages and consumers as AMQP reports them, or None if it does not exist."""
    async with connection.channel() as probe:
        try:
            queue = await probe.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return None
        result = queue.declaration_result
        return result.message_count or 0, result.consumer_count or 0


async def exchange_exists(connection: AbstractConnection, name: str) -> bool:
    """Whether the exchange exists (looked up, never declared)."""
    async with connection.channel() as probe:
        try:
            await probe.declare_exchange(name, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return False
        return True


async def survey(connection: AbstractConnection, names: Names, amqp_url: str) -> Survey:
    """What of the prefix exists, with messages and consumers."""
    found = Survey(names)
    streams = {names.log, names.snapshots}
    for name in queue_names(names):
        if (counts := await count(connection, name)) is not None:
            found.queues.append(QueueFound(name, name in streams, *counts))
    found.exchange = await exchange_exists(connection, names.exchange)
    amqp_consumers = sum(queue.consumers for queue in found.queues)
    has_stream = any(queue.stream for queue in found.queues)
    rows = await rabbitmqctl.list_queues(amqp_url, "consumers") if found.queues else None
    mine = {queue.name for queue in found.queues}
    # Only where the local node holds these queues: it need not be the URL's broker.
    listed = [row.get("consumers") for row in rows or [] if row.get("name") in mine]
    if listed:
        found.consumers = max(amqp_consumers, sum(n for n in listed if isinstance(n, int)))
        found.consumers_source = "rabbitmqctl"
    elif amqp_consumers or not has_stream:
        found.consumers = amqp_consumers
    return found


async def delete(connection: AbstractConnection, found: Survey) -> list[str]:
    """Delete every object of the survey (queues first, then the exchange); return their
    names."""
    for queue in found.queues:
        async with connection.channel() as channel:
            await channel.queue_delete(queue.name)
    if found.exchange:
        async with connection.channel() as channel:
            await channel.exchange_delete(found.names.exchange)
    return found.objects
