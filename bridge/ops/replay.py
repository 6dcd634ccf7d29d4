"""Replay, second half: publish selected events again, confirmed, in order.

Republishing reads exactly the records `bridge.ops.replay_selection` selected and sends each
one's original body, either to the exchange (every consumer sees it again) or straight into the
log (only the bridges' rooms see it), with up to `window` publisher confirms in flight. Progress
is the highest original offset all of whose predecessors are confirmed, so a replay stopped at
any point resumes after it, at least once. `bridge/cli/replay.py` is the command.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
from array import array
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Literal

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from bridge.broker.eventlog import REPLAY_OF_HEADER, ROUTING_KEY_HEADER, LogRecord
from bridge.broker.ranges import read_range
from bridge.broker.topology import Names
from bridge.errors import LogGapError, LogUnavailableError, ReplayError

Target = Literal["exchange", "rooms"]


async def selected_records(
    connection: AbstractConnection, log_name: str, offsets: array[int], *, prefetch: int
) -> AsyncGenerator[LogRecord, None]:
    """Yield the records at `offsets` (ascending), read from the log again, in order.

    Raises:
        ReplayError: retention removed some of them, or the log could not be read to the end.
    """
    if not offsets:
        return
    index = 0
    records = read_range(connection, log_name, offsets[0] - 1, offsets[-1], prefetch=prefetch)
    assert isinstance(records, AsyncGenerator)  # closed below as soon as the last one is read
    try:
        async with contextlib.aclosing(records):
            async for record in records:
                if record.offset == offsets[index]:
                    yield record
                    index += 1
                    if index == len(offsets):
                        return
    except LogGapError as exc:
        raise ReplayError(f"retention removed records while they were replayed: {exc}") from exc
    except LogUnavailableError as exc:
        raise ReplayError(f"{exc}: the connection to RabbitMQ was lost") from exc


def replay_message(record: LogRecord, target: Target) -> aio_pika.Message:
    """The message that replays a record: its original body and routing key, marked as a
    replay of its offset (and, straight into the log, carrying its routing key in a header)."""
    headers = {
        name: value
        for name, value in (record.message.headers or {}).items()
        if not name.startswith(("x-stream-", "x-eventbridge-"))
    }
    headers[REPLAY_OF_HEADER] = record.offset
    if target == "rooms":
        headers[ROUTING_KEY_HEADER] = record.routing_key
    event_id = json.loads(record.message.body)["id"]
    return aio_pika.Message(
        record.message.body,
        headers=headers,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(event_id),
    )


class Republisher:
    """Publishes replay messages in order with up to `window` confirms in flight.

    `confirmed_through` is the highest original offset whose replay, and every earlier one, the
    broker confirmed; `failure` is the first publish that failed (nothing after it counts).
    """

    def __init__(
        self,
        connection: AbstractConnection,
        names: Names,
        target: Target,
        *,
        window: int = 64,
        timeout: float = 10.0,
    ) -> None:
        self._connection = connection
        self._names = names
        self._target: Target = target
        self._timeout = timeout
        self._slots = asyncio.Semaphore(window)
        self._in_flight: collections.deque[tuple[int, asyncio.Task[object]]] = collections.deque()
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self.confirmed = 0
        self.confirmed_through: int | None = None
        self.failure: ReplayError | None = None

    @property
    def destination(self) -> str:
        """Where replays go, in words."""
        if self._target == "exchange":
            return f"the exchange {self._names.exchange}"
        return f"the rooms (appended to {self._names.log})"

    async def __aenter__(self) -> Republisher:
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        if self._target == "rooms":
            self._exchange = self._channel.default_exchange
            return self
        try:
            self._exchange = await self._channel.get_exchange(self._names.exchange)
        except aio_pika.exceptions.ChannelNotFoundEntity as exc:
            raise ReplayError(
                f"no exchange {self._names.exchange}: start the bridge once (eventbridge serve)"
            ) from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.drain()
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(aio_pika.exceptions.AMQPError, ConnectionError):
                await self._channel.close()

    async def send(self, record: LogRecord) -> None:
        """Publish one record's replay once a slot in the window is free (returns at once
        after a failure; check `failure`)."""
        if self._exchange is None:
            raise RuntimeError("use the Republisher inside `async with`")
        await self._slots.acquire()
        if self.failure is not None:
            self._slots.release()
            return
        routing_key = self._names.log if self._target == "rooms" else record.routing_key
        publish = self._exchange.publish(
            replay_message(record, self._target),
            routing_key,
            mandatory=True,
            timeout=self._timeout,
        )
        task: asyncio.Task[object] = asyncio.ensure_future(publish)
        self._in_flight.append((record.offset, task))
        task.add_done_callback(lambda done: self._settled(record.offset, done))

    async def drain(self) -> None:
        """Wait until every publish in flight is confirmed or failed."""
        await asyncio.gather(*(task for _, task in self._in_flight), return_exceptions=True)

    def _settled(self, offset: int, task: asyncio.Task[object]) -> None:
        self._slots.release()
        error = None if task.cancelled() else task.exception()
        if (task.cancelled() or error is not None) and self.failure is None:
            self.failure = self._describe(offset, error)
        while self._in_flight and self._in_flight[0][1].done():
            head_offset, head = self._in_flight[0]
            if head.cancelled() or head.exception() is not None:
                break  # nothing after a failed publish counts as done
            self._in_flight.popleft()
            self.confirmed += 1
            self.confirmed_through = head_offset

    def _describe(self, offset: int, error: BaseException | None) -> ReplayError:
        where = f"the replay of offset {offset}"
        if isinstance(error, aio_pika.exceptions.PublishError):
            bound = f"{self._names.log}" if self._target == "rooms" else "any queue"
            return ReplayError(
                f"the broker returned {where} as unroutable: {bound} is not bound for its "
                "routing key; start the bridge (it binds the log), then resume"
            )
        if isinstance(error, aio_pika.exceptions.DeliveryError):
            return ReplayError(f"the broker refused {where} (nack): read its log, then resume")
        if isinstance(error, TimeoutError):
            return ReplayError(
                f"the broker did not confirm {where} within {self._timeout:g} s: check that it "
                "is up and not blocked (memory or disk alarm), then resume"
            )
        return ReplayError(f"{where} failed ({error!r}): check that RabbitMQ is up, then resume")
