"""Moving an earlier deployment's classic queues to replicated quorum queues, losing nothing.

Before clusters, `<prefix>.dead-letters`, `<prefix>.epoch` and `<prefix>.checkpoint` were
classic queues, which live on one node. A queue's type cannot change in place, so each one is
moved through a quorum queue beside it, `<name>.migrating`:

1. every message of the classic queue is copied to `<name>.migrating` (publisher confirm), and
   only then removed from the classic queue (acknowledged);
2. the empty classic queue is deleted and declared again as a quorum queue;
3. the messages are moved back the same way, and `<name>.migrating` is deleted.

A migration stopped at any point (Ctrl-C, a lost connection, a crash) is resumed by running it
again: it looks at which of the queues exist and of which type. A message copied but not yet
acknowledged when it stopped is copied again (at least once, never lost). Run it with every
bridge replica of the prefix stopped, or they would declare the classic queues again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, FieldValue

from bridge.broker.topology import Names, queue_arguments
from bridge.errors import BrokerUnavailableError, DeadLetterQueueError
from bridge.ops.counting import counted
from bridge.ops.deadletter_admin import Session
from bridge.ops.deadletter_records import LetterFilter

MIGRATING_SUFFIX = ".migrating"
PUBLISH_TIMEOUT = 10.0


@dataclass
class MigrationReport:
    """What a migration did, queue by queue: messages moved into the new quorum queue."""

    moved: dict[str, int] = field(default_factory=dict)
    already_quorum: list[str] = field(default_factory=list)
    interrupted: bool = False


async def kind_of(
    connection: AbstractConnection, name: str, arguments: dict[str, FieldValue]
) -> str | None:
    """`"quorum"`, `"classic"`, or None when the queue does not exist (probed with the quorum
    queue's `arguments`, on channels of their own: a refused declaration closes its channel)."""
    async with connection.channel() as probe:
        try:
            await probe.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return None
    channel = await connection.channel()
    try:
        await channel.declare_queue(name, durable=True, arguments=arguments)
    except aio_pika.exceptions.ChannelPreconditionFailed as exc:
        if "x-queue-type" in str(exc):
            return "classic"
        raise
    finally:
        if not channel.is_closed:
            await channel.close()
    return "quorum"


async def needed(connection: AbstractConnection, names: Names) -> list[str]:
    """The queues of this prefix that are still classic, or half-way through a migration."""
    left = []
    for name, arguments in queue_arguments(names).items():
        if await kind_of(connection, name, arguments) == "classic" or await kind_of(
            connection, name + MIGRATING_SUFFIX, arguments
        ):
            left.append(name)
    return left


async def migrate(
    connection: AbstractConnection,
    names: Names,
    *,
    stop: asyncio.Event,
    progress: Callable[[str], None],
) -> MigrationReport:
    """Move every classic queue of the prefix to a quorum queue (see the module docstring).

    Raises:
        BrokerUnavailableError: the connection was lost; run it again to resume.
        DeadLetterQueueError: a copy was refused; nothing unconfirmed was removed.
    """
    report = MigrationReport()
    for name, arguments in queue_arguments(names).items():
        if stop.is_set():
            report.interrupted = True
            break
        holding = name + MIGRATING_SUFFIX
        kind = await kind_of(connection, name, arguments)
        holding_kind = await kind_of(connection, holding, arguments)
        if kind != "classic" and holding_kind is None:
            report.already_quorum.append(name)
            continue
        moved = 0
        if kind == "classic":
            progress(f"{name}: classic; copying its messages to {holding}")
            await _declare(connection, holding, arguments)
            moved = await _move(connection, name, holding, stop, progress)
            if stop.is_set():
                report.interrupted = True
                break
            await _delete_empty(connection, name)
        await _declare(connection, name, arguments)
        progress(f"{name}: now a quorum queue; moving the messages back from {holding}")
        moved = max(moved, await _move(connection, holding, name, stop, progress))
        if stop.is_set():
            report.interrupted = True
            break
        await _delete_empty(connection, holding)
        report.moved[name] = moved
        progress(f"{name}: done ({counted(moved, 'message')})")
    return report


async def _declare(
    connection: AbstractConnection, name: str, arguments: dict[str, FieldValue]
) -> None:
    async with connection.channel() as channel:
        await channel.declare_queue(name, durable=True, arguments=arguments)


async def _delete_empty(connection: AbstractConnection, name: str) -> None:
    """Delete a queue only if it is empty (a message that arrived meanwhile keeps it).

    Quorum queues refuse `if-empty` deletes, so for them the count is checked just before.
    """
    refusal = DeadLetterQueueError(
        f"{name} received new messages during the migration (is a bridge replica still "
        "running?): stop every replica, then run the migration again"
    )
    async with connection.channel() as probe:
        queue = await probe.declare_queue(name, passive=True)
    if queue.declaration_result.message_count:
        raise refusal
    try:
        async with connection.channel() as channel:
            await channel.queue_delete(name, if_empty=not name.endswith(MIGRATING_SUFFIX))
    except aio_pika.exceptions.ChannelPreconditionFailed as exc:
        raise refusal from exc


async def _move(
    connection: AbstractConnection,
    source: str,
    target: str,
    stop: asyncio.Event,
    progress: Callable[[str], None],
) -> int:
    """Copy each message of `source` to `target` with a confirm, then remove it from `source`."""
    async with connection.channel() as counter:
        expected = (await counter.declare_queue(source, passive=True)).declaration_result
    total = expected.message_count or 0
    if total == 0:
        return 0
    publisher = await connection.channel(publisher_confirms=True)
    reader = await connection.channel()
    session = Session(reader, source, total, stop)
    moved = 0
    try:
        await session.start()
        async for letter in session.matching(LetterFilter()):
            await _copy(publisher, letter.message, target)
            await session.remove(letter)  # only now: the broker has the copy
            moved += 1
            if moved % 1000 == 0:
                progress(f"  {moved}/{total} moved to {target}")
    finally:
        await session.release()
        with contextlib.suppress(aio_pika.exceptions.AMQPError, ConnectionError):
            await publisher.close()
    return moved


async def _copy(
    channel: AbstractChannel, message: aio_pika.abc.AbstractIncomingMessage, target: str
) -> None:
    """Publish an exact copy of `message` (body, headers, properties) into `target`."""
    copy = aio_pika.Message(
        message.body,
        headers=dict(message.headers or {}),
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        priority=message.priority,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        user_id=message.user_id,
        app_id=message.app_id,
    )
    try:
        await channel.default_exchange.publish(
            copy, routing_key=target, mandatory=True, timeout=PUBLISH_TIMEOUT
        )
    except aio_pika.exceptions.DeliveryError as exc:
        raise DeadLetterQueueError(
            f"RabbitMQ refused a copy into {target} ({exc}); nothing unconfirmed was removed"
        ) from exc
    except (TimeoutError, aio_pika.exceptions.AMQPError, ConnectionError) as exc:
        raise BrokerUnavailableError(
            f"lost RabbitMQ while copying into {target} ({exc!r}): nothing unconfirmed was "
            "removed; run the migration again to resume"
        ) from exc
