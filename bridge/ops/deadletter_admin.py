"""Operator access to `<prefix>.dead-letters`: read its messages in place, select some, take them.

Every operation works on the messages the queue holds when it starts (the ready count of a
passive declare). They are consumed with manual acknowledgement on a channel whose prefetch
covers all of them, so the broker hands each one over once; whatever is not acknowledged goes
back to the queue, unchanged and in its place, when the session ends. Reading therefore removes
nothing and never spins on one message the way get-then-requeue in a loop would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)

from bridge.broker import connect
from bridge.broker.topology import Names
from bridge.errors import BrokerUnavailableError, DeadLetterQueueError
from bridge.ops.deadletter_records import LetterFilter, StoredDeadLetter
from bridge.upstream.aiormq import on_consumer_cancelled

MAX_PREFETCH = 65_535
"""basic.qos takes a 16-bit count; past it the channel's prefetch is left unlimited."""
IDLE_SECONDS = 1.0
"""How long to wait for the next delivery before asking the broker whether any is left."""
IDLE_CHECKS = 10
"""Idle waits after which a session ends even though the broker still reports messages."""


class Session:
    """One pass over the messages the queue held when it began; see `DeadLetterQueue.session`.

    Attributes:
        expected: how many messages the queue held when the session began.
        examined: how many it has handed out so far.
        skipped: how many of those the selection did not match (they stay in the queue).
    """

    def __init__(
        self, channel: AbstractChannel, queue_name: str, expected: int, stop: asyncio.Event
    ) -> None:
        self.channel = channel
        self.queue_name = queue_name
        self.expected = expected
        self.stop = stop
        self.examined = 0
        self.skipped = 0
        self._inbox: asyncio.Queue[AbstractIncomingMessage | None] = asyncio.Queue()
        self._releasing = False
        self._consumer: tuple[AbstractQueue, str] | None = None

    async def start(self) -> None:
        """Start consuming: the broker hands over up to `expected` messages, unacknowledged."""
        self.channel.close_callbacks.add(self._on_close)
        await on_consumer_cancelled(self.channel, self._on_close)
        # Nothing is acknowledged while reading, so the prefetch must cover every message, or
        # the broker would stop handing them over.
        prefetch = self.expected if self.expected <= MAX_PREFETCH else 0
        await self.channel.set_qos(prefetch_count=prefetch)
        queue = await self.channel.get_queue(self.queue_name, ensure=False)
        self._consumer = (queue, await queue.consume(self._on_message, no_ack=False))

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._inbox.put_nowait(message)  # never suspends, so deliveries keep their order

    def _on_close(self, *_: Any) -> None:
        self._inbox.put_nowait(None)  # the channel closed

    async def _next(self) -> AbstractIncomingMessage | None:
        for _ in range(IDLE_CHECKS):
            try:
                item = await asyncio.wait_for(self._inbox.get(), IDLE_SECONDS)
            except TimeoutError:
                if self.stop.is_set() or await self._ready() == 0:
                    return None
                continue
            if item is None:
                if self._releasing:
                    return None
                raise BrokerUnavailableError(
                    f"lost the channel to RabbitMQ while reading {self.queue_name} (the broker "
                    "went away or the queue was deleted): nothing unconfirmed was removed; run "
                    "the command again"
                )
            return item
        return None

    async def _ready(self) -> int:
        try:
            queue = await self.channel.declare_queue(self.queue_name, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity as exc:
            raise DeadLetterQueueError(f"{self.queue_name} was deleted while reading") from exc
        return queue.declaration_result.message_count or 0

    async def matching(self, selection: LetterFilter) -> AsyncIterator[StoredDeadLetter]:
        """Yield the selected dead letters, in queue order, until the limit or `stop`."""
        taken = 0
        while self.examined < self.expected and not self.stop.is_set():
            if selection.limit is not None and taken >= selection.limit:
                return
            message = await self._next()
            if message is None:
                return
            self.examined += 1
            letter = StoredDeadLetter.from_message(message)
            if not selection.matches(letter):
                self.skipped += 1
                continue
            taken += 1
            yield letter

    async def remove(self, letter: StoredDeadLetter) -> None:
        """Remove one dead letter from the queue for good (acknowledge it)."""
        await letter.message.ack()

    async def release(self) -> None:
        """Give back every message not removed, in its place, and close the channel."""
        self._releasing = True
        if self.channel.is_closed:
            return
        with contextlib.suppress(aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError):
            # Cancel first, or the broker would hand the returned messages straight back; then
            # return all outstanding deliveries at once (tag 0 with multiple = "all").
            if self._consumer is not None:
                queue, tag = self._consumer
                await queue.cancel(tag)
            underlay = await self.channel.get_underlay_channel()
            await underlay.basic_nack(0, multiple=True, requeue=True)
            await self.channel.close()


class DeadLetterQueue:
    """A named connection to the broker for working on one prefix's dead-letter queue.

    Args:
        amqp_url: the broker.
        prefix: the topology prefix; the queue is `<prefix>.dead-letters`.
        connect_timeout: seconds to wait for the broker to answer.

    Raises (on entry):
        BrokerUnavailableError: the broker cannot be reached.
        DeadLetterQueueError: the queue does not exist.
    """

    def __init__(self, amqp_url: str, prefix: str, *, connect_timeout: float = 10.0) -> None:
        self.names = Names(prefix)
        self._url = amqp_url
        self._connect_timeout = connect_timeout
        self._connection: AbstractConnection | None = None

    @property
    def connection(self) -> AbstractConnection:
        """The open connection (only inside `async with`)."""
        if self._connection is None:
            raise RuntimeError("DeadLetterQueue is used outside `async with`")
        return self._connection

    async def __aenter__(self) -> DeadLetterQueue:
        self._connection = await connect.open_connection(
            self._url, "dead-letters", connect_timeout=self._connect_timeout
        )
        try:
            await self.count()
        except BaseException:
            await self._connection.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._connection is not None:
            with contextlib.suppress(aio_pika.exceptions.AMQPError, ConnectionError):
                await self._connection.close()

    async def count(self) -> int:
        """How many messages the queue holds ready now."""
        # A passive declare of a missing queue closes its channel, so it gets one of its own.
        async with self.connection.channel() as probe:
            try:
                queue = await probe.declare_queue(self.names.dead_letters, passive=True)
            except aio_pika.exceptions.ChannelNotFoundEntity as exc:
                raise DeadLetterQueueError(
                    f"no dead-letter queue {self.names.dead_letters}: start the bridge once"
                ) from exc
            return queue.declaration_result.message_count or 0

    @contextlib.asynccontextmanager
    async def session(self, stop: asyncio.Event) -> AsyncIterator[Session]:
        """Consume the messages held now; on exit, whatever was not removed returns in place.

        Args:
            stop: when set, the session hands out no more messages (Ctrl-C).
        """
        expected = await self.count()
        channel = await self.connection.channel()
        session = Session(channel, self.names.dead_letters, expected, stop)
        try:
            if expected:
                await session.start()
            yield session
        finally:
            await session.release()
