"""Dead-lettering: invalid log messages are copied to `<prefix>.dead-letters` with the reason.

The writer runs beside the log reader with a bounded queue, so a burst of invalid messages never
stalls valid events for longer than it takes to free one slot, and every copy is confirmed by the
broker before the checkpoint moves past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from types import TracebackType

import aio_pika
from aio_pika.abc import AbstractChannel

from bridge.broker import meta
from bridge.broker.logmessage import LogMessage
from bridge.core.events import DeadLetter, traceparent_of
from bridge.core.tally import bump

logger = logging.getLogger(__name__)

REASON_HEADER = "x-eventbridge-reason"
ERROR_HEADER = "x-eventbridge-error"
OFFSET_HEADER = "x-eventbridge-offset"
EPOCH_HEADER = "x-eventbridge-epoch"
ROUTING_KEY_HEADER = "x-eventbridge-routing-key"
CHECKPOINT_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class _Pending:
    offset: int
    message: LogMessage
    dead_letter: DeadLetter


class DeadLetterWriter:
    """Copies refused messages to the dead-letter queue and keeps the checkpoint.

    Args:
        channel: a channel with publisher confirms.
        queue_name: the dead-letter queue.
        checkpoint_queue: the one-message queue holding the checkpoint.
        epoch: the log's epoch.
        checked: the offset every invalid message up to which is already dead-lettered.
    """

    def __init__(
        self,
        channel: AbstractChannel,
        queue_name: str,
        checkpoint_queue: str,
        epoch: str,
        *,
        checked: int,
        publish_timeout: float,
        queue_size: int = 256,
        counts: dict[str, int] | None = None,
    ) -> None:
        self._channel = channel
        self._queue_name = queue_name
        self._checkpoint_queue = checkpoint_queue
        self._epoch = epoch
        self._publish_timeout = publish_timeout
        self._pending: asyncio.Queue[_Pending] = asyncio.Queue(queue_size)
        self._in_flight = 0
        self.checked = checked
        self.seen = checked
        self._backfill_at: int | None = None
        self._saved = checked
        self._tasks: list[asyncio.Task[None]] = []
        self.failure: BaseException | None = None
        self.counts: dict[str, int] = {} if counts is None else counts
        """Messages dead-lettered (confirmed) by reason, for `/metrics`."""

    async def __aenter__(self) -> DeadLetterWriter:
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="dead-letter-writer"),
            asyncio.create_task(self._checkpoint_loop(), name="dead-letter-checkpoint"),
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # On a clean stop (or shutdown's cancellation) record how far we got, so the next start
        # neither repeats nor skips anything.
        clean = exc is None or isinstance(exc, asyncio.CancelledError)
        if clean and self._pending.empty() and self._in_flight == 0 and self.failure is None:
            self.checked = max(self.checked, self._reached())
            with contextlib.suppress(
                aio_pika.exceptions.AMQPError,
                aio_pika.exceptions.ChannelInvalidStateError,  # the channel closed first
                ConnectionError,
                TimeoutError,
            ):
                await self._save_checkpoint()

    def backfilled(self, offset: int | None) -> None:
        """Note how far a backfill below the live reader got (None once it is done): until
        then the checkpoint does not pass it."""
        self._backfill_at = offset

    def _reached(self) -> int:
        """The offset every invalid record up to which has been handed over."""
        return self.seen if self._backfill_at is None else min(self.seen, self._backfill_at)

    def handled(self, offset: int) -> None:
        """Note that the reader handled the record at `offset` (valid or not)."""
        self.seen = offset

    async def put(self, offset: int, message: LogMessage, why: DeadLetter) -> None:
        """Queue a refused message for the dead-letter queue, waiting if the writer is behind."""
        if offset <= self.checked:
            return  # dead-lettered before the last checkpoint
        if self.failure is not None:
            raise self.failure
        await self._pending.put(_Pending(offset, message, why))

    async def _write_loop(self) -> None:
        try:
            while True:
                item = await self._pending.get()
                self._in_flight = 1
                await self._publish(item)
                self._in_flight = 0
        except asyncio.CancelledError:
            raise
        except (aio_pika.exceptions.AMQPError, ConnectionError, TimeoutError) as exc:
            logger.warning(
                "could not write a dead letter; it is retried after reconnecting: %s", exc
            )
            self.failure = exc

    async def _publish(self, item: _Pending) -> None:
        source = item.message
        headers = dict(source.headers or {})
        headers.update(
            {
                REASON_HEADER: item.dead_letter.reason.value,
                ERROR_HEADER: item.dead_letter.error,
                OFFSET_HEADER: item.offset,
                EPOCH_HEADER: self._epoch,
                ROUTING_KEY_HEADER: source.routing_key or "",
            }
        )
        properties = source.properties
        message = aio_pika.Message(
            source.body,
            headers=headers,
            content_type=properties.content_type,
            content_encoding=properties.content_encoding,
            message_id=properties.message_id or f"{self._epoch}:{item.offset}",
            timestamp=properties.timestamp,
            type=properties.message_type,
            app_id=properties.app_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self._channel.default_exchange.publish(
            message, routing_key=self._queue_name, timeout=self._publish_timeout
        )
        bump(self.counts, item.dead_letter.reason.value)
        logger.info(
            "dead-lettered offset %d (%s): %s",
            item.offset,
            item.dead_letter.reason.value,
            item.dead_letter.error,
            extra={
                "offset": item.offset,
                "reason": item.dead_letter.reason.value,
                "event_id": properties.message_id,
                "traceparent": traceparent_of(source.body),
            },
        )

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL)
            if self._pending.empty() and self._in_flight == 0 and self.failure is None:
                self.checked = max(self.checked, self._reached())
                try:
                    await self._save_checkpoint()
                except (aio_pika.exceptions.AMQPError, ConnectionError, TimeoutError) as exc:
                    logger.warning("could not save the dead-letter checkpoint: %s", exc)
                    return

    async def _save_checkpoint(self) -> None:
        if self.checked > self._saved:
            await meta.write_checkpoint(
                self._channel, self._checkpoint_queue, self._epoch, self.checked
            )
            self._saved = self.checked
