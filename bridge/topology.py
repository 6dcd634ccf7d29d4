"""The broker topology as data, and its idempotent declaration.

```
<prefix>.events        topic exchange, durable          ← producers publish here
   └─ "#" → <prefix>.log      stream: the durable, ordered, replayable event log
<prefix>.dead-letters  classic queue, durable            ← invalid messages, with reason headers
<prefix>.epoch         classic queue, durable, length 1  ← the log's current epoch
<prefix>.checkpoint    classic queue, durable, length 1  ← offset up to which invalid messages
                                                            were dead-lettered
```
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

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
    }


SINGLE_VALUE_ARGUMENTS: dict[str, aio_pika.abc.FieldValue] = {
    "x-max-length": 1,
    "x-overflow": "drop-head",
}


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
    dead_letters = await channel.declare_queue(names.dead_letters, durable=True)
    for single in (names.epoch, names.checkpoint):
        await channel.declare_queue(single, durable=True, arguments=SINGLE_VALUE_ARGUMENTS)
    return Topology(exchange, log, dead_letters, log_created)
