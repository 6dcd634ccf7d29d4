"""The broker topology as data, and its idempotent declaration.

```
<prefix>.events        topic exchange, durable         ← producers publish here
   └─ "#" → <prefix>.log      stream, replicated: the durable, ordered, replayable event log
<prefix>.dead-letters  quorum queue                    ← invalid messages, with reason headers
<prefix>.epoch         quorum queue, length 1          ← the log's current epoch
<prefix>.checkpoint    quorum queue, length 1          ← offset up to which invalid messages
                                                          were dead-lettered
<prefix>.snapshots     stream, replicated, short-lived ← state checkpoints (bridge.broker.snapshots)
<prefix>.presence      fanout exchange, auto-delete    ← replicas' presence (bridge.broker.presence)
   └─ one exclusive, auto-delete queue per replica
```

Everything is replicated (the stream on `EVENTBRIDGE_LOG_REPLICAS` nodes, the quorum queues on
every node up to RabbitMQ's default), so the bridge starts, reads and dead-letters with any one
node of three down. Deployments from before this layout have classic queues, which live on one
node: declaring refuses to start on them, naming the command that migrates them
(`eventbridge topology migrate`, `bridge.ops.migrate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from bridge.errors import TopologyError
from bridge.settings import Settings
from schemas.routing import exchange_name


@dataclass(frozen=True, slots=True)
class Names:
    """The names of every broker object under one prefix."""

    prefix: str

    @property
    def exchange(self) -> str:
        """The topic exchange producers publish to."""
        return exchange_name(self.prefix)

    @property
    def log(self) -> str:
        """The stream every event is appended to."""
        return f"{self.prefix}.log"

    @property
    def snapshots(self) -> str:
        """The stream of state checkpoints."""
        return f"{self.prefix}.snapshots"

    @property
    def presence(self) -> str:
        """The fanout exchange replicas exchange presence on (nothing durable: presence is
        rebuilt from the replicas' snapshots)."""
        return f"{self.prefix}.presence"

    @property
    def dead_letters(self) -> str:
        """The queue invalid messages are moved to."""
        return f"{self.prefix}.dead-letters"

    @property
    def epoch(self) -> str:
        """The one-message queue that names the log's current epoch."""
        return f"{self.prefix}.epoch"

    @property
    def checkpoint(self) -> str:
        """The one-message queue that records how far dead-lettering got."""
        return f"{self.prefix}.checkpoint"


def log_arguments(settings: Settings) -> dict[str, aio_pika.abc.FieldValue]:
    """The arguments the log stream is declared with."""
    return {
        "x-queue-type": "stream",
        "x-max-age": settings.log_max_age,
        "x-max-length-bytes": settings.log_max_bytes,
        "x-stream-max-segment-size-bytes": settings.log_segment_bytes,
        "x-initial-cluster-size": settings.log_replicas,
    }


def snapshot_arguments(settings: Settings) -> dict[str, aio_pika.abc.FieldValue]:
    """The arguments the checkpoint stream is declared with: replicated like the log, and kept
    briefly (only the newest checkpoint is ever read)."""
    return {
        "x-queue-type": "stream",
        "x-max-age": "1D",
        "x-max-length-bytes": 512 * 1024 * 1024,
        "x-stream-max-segment-size-bytes": 64 * 1024 * 1024,
        "x-initial-cluster-size": settings.log_replicas,
    }


QUORUM_ARGUMENTS: dict[str, aio_pika.abc.FieldValue] = {"x-queue-type": "quorum"}
"""A replicated queue (Raft): it survives the loss of a minority of its nodes."""

SINGLE_VALUE_ARGUMENTS: dict[str, aio_pika.abc.FieldValue] = {
    **QUORUM_ARGUMENTS,
    "x-max-length": 1,
    "x-overflow": "drop-head",
}
"""A quorum queue that holds one value: writing a new message drops the old one."""


def queue_arguments(names: Names) -> dict[str, dict[str, aio_pika.abc.FieldValue]]:
    """Every queue besides the log, with the arguments it is declared with."""
    return {
        names.dead_letters: QUORUM_ARGUMENTS,
        names.epoch: SINGLE_VALUE_ARGUMENTS,
        names.checkpoint: SINGLE_VALUE_ARGUMENTS,
    }


class ClassicQueuesError(TopologyError):
    """Queues of an earlier eventbridge are classic (one node's); they must be migrated."""


def migration_needed(prefix: str, queues: list[str]) -> ClassicQueuesError:
    """The sentence that tells the operator what to run."""
    return ClassicQueuesError(
        f"{', '.join(queues)} are classic queues from an earlier eventbridge: they live on one "
        "node, so the bridge could not start or dead-letter while it is down. Stop every bridge "
        f"replica of prefix {prefix!r}, run `eventbridge topology migrate --prefix {prefix}` "
        "(it moves them to replicated quorum queues and loses no dead letter), then start them "
        "again."
    )


@dataclass(frozen=True, slots=True)
class Topology:
    """The declared broker objects."""

    exchange: AbstractExchange
    log: AbstractQueue
    dead_letters: AbstractQueue
    log_created: bool


async def declare_exchange(channel: AbstractChannel, prefix: str) -> AbstractExchange:
    """Declare the topic exchange (idempotent)."""
    return await channel.declare_exchange(
        exchange_name(prefix), aio_pika.ExchangeType.TOPIC, durable=True
    )


async def declare_presence(
    channel: AbstractChannel, names: Names, ttl: float
) -> tuple[AbstractExchange, AbstractQueue]:
    """Declare the presence exchange and this replica's own queue, bound to it: exclusive and
    auto-delete (it goes with the connection), messages older than `ttl` seconds dropped."""
    # auto-delete: the exchange goes with the last replica's queue, leaving nothing behind
    exchange = await channel.declare_exchange(
        names.presence, aio_pika.ExchangeType.FANOUT, durable=False, auto_delete=True
    )
    queue = await channel.declare_queue(
        exclusive=True, auto_delete=True, arguments={"x-message-ttl": int(ttl * 1000)}
    )
    await queue.bind(exchange)
    return exchange, queue


async def declare(connection: aio_pika.abc.AbstractConnection, settings: Settings) -> Topology:
    """Declare the whole topology idempotently; tell whether the log stream was created now.

    A log that already exists keeps the arguments it was created with; RabbitMQ refuses a
    re-declaration whose retention differs, so the log is first looked up passively.
    """
    names = Names(settings.prefix)
    async with connection.channel() as probe:
        try:
            await probe.declare_queue(names.log, passive=True)
            log_created = False
        except aio_pika.exceptions.ChannelNotFoundEntity:
            log_created = True
    channel = await connection.channel()
    exchange = await declare_exchange(channel, settings.prefix)
    if log_created:
        log = await channel.declare_queue(
            names.log, durable=True, arguments=log_arguments(settings)
        )
    else:
        log = await channel.declare_queue(names.log, passive=True)
    await log.bind(exchange, routing_key="#")
    await _declare_stream(connection, names.snapshots, snapshot_arguments(settings))
    classic: list[str] = []
    for name, arguments in queue_arguments(names).items():
        if await _declare_queue(connection, name, arguments) is None:
            classic.append(name)
    if classic:
        raise migration_needed(settings.prefix, classic)
    dead_letters = await channel.declare_queue(names.dead_letters, passive=True)
    return Topology(exchange, log, dead_letters, log_created)


async def _declare_stream(
    connection: aio_pika.abc.AbstractConnection,
    name: str,
    arguments: dict[str, aio_pika.abc.FieldValue],
) -> None:
    """Declare a stream unless it exists (an existing one keeps the arguments it was created
    with, and RabbitMQ would refuse others)."""
    async with connection.channel() as probe:
        try:
            await probe.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            exists = False
        else:
            exists = True
    if not exists:
        async with connection.channel() as channel:
            await channel.declare_queue(name, durable=True, arguments=arguments)


async def _declare_queue(
    connection: aio_pika.abc.AbstractConnection,
    name: str,
    arguments: dict[str, aio_pika.abc.FieldValue],
) -> AbstractQueue | None:
    """Declare a queue with its arguments; None if it exists as a classic queue (the refusal
    closes only the channel opened for it)."""
    channel = await connection.channel()
    try:
        return await channel.declare_queue(name, durable=True, arguments=arguments)
    except aio_pika.exceptions.ChannelPreconditionFailed as exc:
        if "x-queue-type" not in str(exc):
            raise
        return None
    finally:
        if not channel.is_closed:
            await channel.close()
