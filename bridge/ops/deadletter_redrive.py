"""Re-driving dead letters: republish them to `<prefix>.events`, then remove them from the queue.

Each selected message is republished with its original routing key, body and properties, minus
the dead-letter headers and plus `x-eventbridge-redriven: true`, persistent and mandatory, and
is acknowledged (removed) only once the broker has confirmed the republish. A run that dies at
any point has therefore removed only what is safely on the exchange; what it confirmed but had
not yet removed is republished again by the next run (at-least-once, with the same message id).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractExchange, FieldValue

from bridge.broker.deadletters import (
    EPOCH_HEADER,
    ERROR_HEADER,
    OFFSET_HEADER,
    REASON_HEADER,
    ROUTING_KEY_HEADER,
)
from bridge.errors import BrokerUnavailableError, DeadLetterQueueError
from bridge.ops.deadletter_admin import DeadLetterQueue
from bridge.ops.deadletter_records import LetterFilter, StoredDeadLetter

REDRIVEN_HEADER = "x-eventbridge-redriven"
"""Marks a message republished from the dead-letter queue."""
DEAD_LETTER_HEADERS = frozenset(
    {REASON_HEADER, ERROR_HEADER, OFFSET_HEADER, EPOCH_HEADER, ROUTING_KEY_HEADER}
)
"""The headers the dead-letter writer added; a re-driven message goes out without them."""


@dataclass(slots=True)
class RedriveReport:
    """How far a re-drive got; kept up to date while it runs.

    Attributes:
        republished: confirmed by the broker and removed from the dead-letter queue.
        examined: dead letters looked at (matching or not).
        skipped: dead letters the filters did not select; they stay in the queue.
        expected: dead letters the queue held when the re-drive began.
    """

    republished: int = 0
    examined: int = 0
    skipped: int = 0
    expected: int = 0


def redriven(letter: StoredDeadLetter) -> aio_pika.Message:
    """Build the message to republish: the original body and properties, re-driven headers.

    `user_id` and `expiration` are not carried over: the broker refuses a `user_id` other than
    the publishing connection's user, and the dead-letter writer never copies either.
    """
    source = letter.message
    headers: dict[str, FieldValue] = {
        name: value
        for name, value in (source.headers or {}).items()
        if name not in DEAD_LETTER_HEADERS
    }
    headers[REDRIVEN_HEADER] = True
    return aio_pika.Message(
        source.body,
        headers=headers,
        content_type=source.content_type,
        content_encoding=source.content_encoding,
        priority=source.priority,
        correlation_id=source.correlation_id,
        reply_to=source.reply_to,
        message_id=source.message_id,
        timestamp=source.timestamp,
        type=source.type,
        app_id=source.app_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


async def redrive(
    dead_letters: DeadLetterQueue,
    selection: LetterFilter,
    report: RedriveReport,
    *,
    stop: asyncio.Event,
    publish_timeout: float,
    rate: float | None = None,
    progress: Callable[[RedriveReport], None] | None = None,
    every: int = 100,
) -> None:
    """Republish the selected dead letters one at a time, each removed once confirmed.

    Args:
        dead_letters: the open dead-letter queue.
        selection: which dead letters to re-drive; the others stay in the queue.
        report: updated as the re-drive goes, so it is accurate even if this raises.
        stop: when set, the re-drive ends after the message in hand (Ctrl-C).
        publish_timeout: seconds to wait for the broker's confirm of one republish.
        rate: at most this many republishes per second (None: as fast as confirms come).
        progress: called after every `every` republished messages.

    Raises:
        DeadLetterQueueError: the exchange is missing, or routed a message nowhere.
        BrokerUnavailableError: the broker went away or did not confirm in time.
    """
    exchange_name = dead_letters.names.exchange
    channel = await dead_letters.connection.channel(publisher_confirms=True, on_return_raises=True)
    try:
        try:
            exchange = await channel.get_exchange(exchange_name)  # a passive declare
        except aio_pika.exceptions.ChannelNotFoundEntity as exc:
            raise DeadLetterQueueError(
                f"no exchange {exchange_name}: start the bridge once"
            ) from exc
        loop = asyncio.get_running_loop()
        started: float | None = None
        async with dead_letters.session(stop) as session:
            report.expected = session.expected
            async for letter in session.matching(selection):
                if rate is not None:
                    # The schedule starts with the first letter (see `eventbridge replay`).
                    started = loop.time() if started is None else started
                    await _pace(stop, started + report.republished / rate - loop.time())
                    if stop.is_set():
                        break
                await _republish(exchange, letter, publish_timeout)
                await session.remove(letter)  # only now: the broker has the republished copy
                report.republished += 1
                report.examined, report.skipped = session.examined, session.skipped
                if progress is not None and report.republished % every == 0:
                    progress(report)
            report.examined, report.skipped = session.examined, session.skipped
    finally:
        if not channel.is_closed:
            with contextlib.suppress(aio_pika.exceptions.AMQPError, ConnectionError):
                await channel.close()


async def _pace(stop: asyncio.Event, delay: float) -> None:
    if delay > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


async def _republish(exchange: AbstractExchange, letter: StoredDeadLetter, within: float) -> None:
    what = f"message {letter.message_id or '(no id)'} (routing key {letter.routing_key!r})"
    try:
        await exchange.publish(
            redriven(letter), routing_key=letter.routing_key, mandatory=True, timeout=within
        )
    except aio_pika.exceptions.DeliveryError as exc:  # returned unroutable, or nacked
        raise DeadLetterQueueError(
            f"{exchange.name} did not accept {what}: {exc}; it stays in the dead-letter queue. "
            f"Check that {exchange.name} is bound to the log (start the bridge once)"
        ) from exc
    except TimeoutError as exc:
        raise BrokerUnavailableError(
            f"RabbitMQ did not confirm {what} within {within:g} s: it stays in the dead-letter "
            "queue and may reach the exchange twice; run the command again"
        ) from exc
    except (aio_pika.exceptions.AMQPError, ConnectionError) as exc:
        raise BrokerUnavailableError(
            f"lost the connection to RabbitMQ while republishing {what} ({exc!r}): what was "
            "not yet removed stays in the dead-letter queue; run the command again"
        ) from exc
