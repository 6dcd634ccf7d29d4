"""EventPublisher: publish contract-valid events to `<prefix>.events` and wait for the broker.

Every event is validated against `schemas` before anything is sent (`producers.encoding`),
published persistent and `mandatory` on a confirming channel, and each publish is bounded by a
timeout. Only transient connection failures are retried (with exponential backoff); a retry
re-sends the same event id, so consumers that de-duplicate by id see each event once. The typed
per-event-type helpers come from `producers.helpers`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import aio_pika
from aio_pika import exceptions as amqp
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractRobustChannel,
)
from pydantic import BaseModel
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from producers.encoding import HeaderValue, PublishedEvent, build_envelope, encode
from producers.errors import (
    BrokerUnavailableError,
    PublisherClosedError,
    PublishError,
    PublishTimeoutError,
    UnroutableError,
)
from producers.helpers import TypedHelpers
from schemas import Envelope, exchange_name

# HeaderValue and PublishedEvent are re-exported: `from producers.publisher import ...` is public.
__all__ = ["EventPublisher", "HeaderValue", "PublishedEvent"]

log = logging.getLogger(__name__)

_FATAL_CONNECTION_ERRORS = (
    amqp.AuthenticationError,
    amqp.ProbableAuthenticationError,
    amqp.IncompatibleProtocolError,
)


def _is_transient(exc: BaseException) -> bool:
    """Tell whether a failed connect or publish may succeed if tried again unchanged."""
    if isinstance(exc, _FATAL_CONNECTION_ERRORS):
        return False
    # aio-pika's AMQPConnectionError (a dropped or refused connection) is a ConnectionError.
    return isinstance(exc, ConnectionError | amqp.ChannelInvalidStateError)


def _where(url: str) -> str:
    """Name the broker a URL points at (host, port, virtual host) without its credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5672}{parts.path or '/'}"


class EventPublisher(TypedHelpers):
    """Publishes events with publisher confirms; an async context manager.

    Besides `publish`, `publish_envelope` and `publish_batch`, it has one typed helper per event
    type (`progress_update`, `agent_status`, ...; see `TypedHelpers`).

    Args:
        amqp_url: The broker to connect to (ignored when `connection` is given).
        prefix: The topology prefix; events go to the exchange `<prefix>.events`.
        source: The producer's name, written into every envelope it builds.
        publish_timeout: Seconds to wait for the broker to confirm one publish (and to connect).
        retry_attempts: How many times in all to try a connect or publish that fails transiently.
        connection_name: The AMQP connection name operators see in the management UI.
        connection: An open connection to publish on; the publisher then opens only its own
            channel and leaves the connection open on exit.
        max_body_bytes: Refuse events whose JSON body is larger (the bridge's default limit);
            None disables the check.
    """

    def __init__(
        self,
        amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/",
        *,
        prefix: str = "eventbridge",
        source: str = "eventbridge-sdk",
        publish_timeout: float = 10.0,
        retry_attempts: int = 5,
        connection_name: str = "eventbridge-publisher",
        connection: AbstractConnection | None = None,
        max_body_bytes: int | None = 65536,
    ) -> None:
        if publish_timeout <= 0 or retry_attempts < 1:
            raise ValueError("publish_timeout must be positive and retry_attempts at least 1")
        self._url = amqp_url
        self._prefix = prefix
        self._source = source
        self._timeout = publish_timeout
        self._attempts = retry_attempts
        self._connection_name = connection_name
        self._external = connection
        self._max_body = max_body_bytes
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._connect_attempts = 0

    @property
    def exchange_name(self) -> str:
        """The exchange this publisher publishes to."""
        return exchange_name(self._prefix)

    def _retrying(self, doing: str, *, retry_timeouts: bool) -> AsyncRetrying:
        def retry(exc: BaseException) -> bool:
            return _is_transient(exc) or (retry_timeouts and isinstance(exc, TimeoutError))

        def warn(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "%s: attempt %d of %d failed (%r); retrying",
                doing,
                state.attempt_number,
                self._attempts,
                exc,
            )

        return AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=0.2, max=5.0),
            retry=retry_if_exception(retry),
            before_sleep=warn,
            reraise=True,
        )

    async def __aenter__(self) -> Self:
        """Connect (unless given a connection), open a confirming channel, declare the exchange.

        Raises:
            PublisherClosedError: this publisher is already open.
            BrokerUnavailableError: the broker cannot be reached or refused the login.
            PublishError: the exchange cannot be declared (e.g. it exists with another type).
        """
        if self._exchange is not None:
            raise PublisherClosedError("this EventPublisher is already open: enter it only once")
        try:
            if self._external is not None:
                connection = self._external
            else:
                connection = self._connection = await self._connect()
            async with asyncio.timeout(self._timeout):
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                self._channel = channel
                self._exchange = await channel.declare_exchange(
                    self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                )
        except BaseException as exc:
            await self._close()
            translated = self._entry_error(exc)
            if translated is None:
                raise
            raise translated from exc
        return self

    def _entry_error(self, exc: BaseException) -> PublishError | None:
        """Translate a failure to open the publisher into an error that says what to do."""
        own = self._external is None
        where = f"RabbitMQ at {_where(self._url)}" if own else "the given connection"
        if isinstance(exc, amqp.ChannelPreconditionFailed):
            return PublishError(
                f"exchange {self.exchange_name!r} exists with another type or durability: "
                "delete it or use another prefix"
            )
        if isinstance(exc, _FATAL_CONNECTION_ERRORS):
            return BrokerUnavailableError(
                f"{where} refused the connection ({exc}): check the user name, password and "
                "virtual host in the URL (EVENTBRIDGE_AMQP_URL)"
            )
        if isinstance(exc, amqp.AMQPError | ConnectionError | TimeoutError):
            attempts = f" after {self._connect_attempts} attempt(s)" if own else ""
            return BrokerUnavailableError(
                f"could not open a publishing channel on {where}{attempts} ({exc!r}): check "
                "that the broker is running and the URL (EVENTBRIDGE_AMQP_URL) points at it"
            )
        return None

    async def _connect(self) -> AbstractConnection:
        async for attempt in self._retrying(
            f"connecting to {_where(self._url)}", retry_timeouts=True
        ):
            self._connect_attempts = attempt.retry_state.attempt_number
            with attempt:
                return await aio_pika.connect_robust(
                    self._url,
                    timeout=self._timeout,
                    client_properties={"connection_name": self._connection_name},
                )
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the channel, and the connection if this publisher opened it."""
        await self._close()

    async def _close(self) -> None:
        channel, connection = self._channel, self._connection
        self._exchange = self._channel = self._connection = None
        try:
            if channel is not None and not channel.is_closed:
                await channel.close()
        finally:
            if connection is not None and not connection.is_closed:
                await connection.close()

    async def publish(
        self,
        event_type: str,
        data: Mapping[str, Any] | BaseModel,
        *,
        project_id: str | None,
        event_id: str | None = None,
        occurred_at: datetime | None = None,
        headers: Mapping[str, HeaderValue] | None = None,
    ) -> PublishedEvent:
        """Build, validate and publish one event; return it once the broker confirmed it.

        Args:
            event_type: One of the contract's event types, e.g. "progress_update".
            data: The type's payload (a mapping or a pydantic model); extra fields are kept.
            project_id: The project the event belongs to, or None for a global event.
            event_id: The envelope id; a new time-ordered id when omitted.
            occurred_at: When it happened (timezone-aware); now when omitted.
            headers: Extra AMQP headers.

        Raises:
            InvalidEventError: the event breaks the contract; nothing was sent.
            PublisherClosedError: called outside `async with`; nothing was sent.
            UnroutableError: no queue is bound for its routing key.
            PublishTimeoutError: the broker did not confirm in time.
            BrokerUnavailableError: the connection failed on every attempt.
            PublishError: the broker refused the event otherwise.
        """
        envelope = build_envelope(
            event_type,
            data,
            project_id=project_id,
            source=self._source,
            event_id=event_id,
            occurred_at=occurred_at,
        )
        return await self.publish_envelope(envelope, headers=headers)

    async def publish_envelope(
        self, envelope: Envelope, *, headers: Mapping[str, HeaderValue] | None = None
    ) -> PublishedEvent:
        """Validate and publish a ready envelope as is (its id, source and time are kept).

        Raises:
            The same errors as `publish`.
        """
        return await self._send(*encode(envelope, headers, max_body_bytes=self._max_body))

    async def publish_batch(
        self, events: Iterable[Envelope], *, window: int = 256
    ) -> list[PublishedEvent]:
        """Publish many envelopes, keeping up to `window` confirms in flight.

        Every envelope is validated before the first is sent. Events are written in input order
        (a retried one may arrive later than its successors) and returned in input order.

        Raises:
            InvalidEventError: some envelope is invalid; nothing was sent.
            PublishError: the first failure in input order, once every publish has settled; its
                notes say how many failed.
        """
        if window < 1:
            raise ValueError("window must be at least 1")
        prepared = [encode(envelope, None, max_body_bytes=self._max_body) for envelope in events]
        self._require_open()
        slots = asyncio.Semaphore(window)

        async def send(event: PublishedEvent, message: aio_pika.Message) -> PublishedEvent:
            try:
                return await self._send(event, message)
            finally:
                slots.release()

        tasks: list[asyncio.Task[PublishedEvent]] = []
        try:
            for event, message in prepared:
                await slots.acquire()
                tasks.append(asyncio.create_task(send(event, message)))
            results = await asyncio.gather(*tasks, return_exceptions=True)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            failures[0].add_note(
                f"{len(failures)} of {len(results)} events in the batch failed; the rest were "
                "confirmed: publish the failed ones again (same ids) once the cause is fixed"
            )
            raise failures[0]
        return [result for result in results if isinstance(result, PublishedEvent)]

    def _require_open(self) -> AbstractExchange:
        if self._exchange is None:
            raise PublisherClosedError(
                "EventPublisher is not open: publish inside `async with EventPublisher(...)`"
            )
        return self._exchange

    async def _send(self, event: PublishedEvent, message: aio_pika.Message) -> PublishedEvent:
        exchange = self._require_open()
        tries = 0
        try:
            async for attempt in self._retrying(
                f"publishing event {event.id}", retry_timeouts=False
            ):
                tries = attempt.retry_state.attempt_number
                with attempt:
                    # The bound also covers waiting for a robust channel to be restored:
                    # aio-pika fails at once on a closed channel instead of waiting for it.
                    async with asyncio.timeout(self._timeout):
                        if isinstance(self._channel, AbstractRobustChannel):
                            await self._channel.ready()
                        await exchange.publish(
                            message, event.routing_key, mandatory=True, timeout=self._timeout
                        )
        except amqp.PublishError as exc:
            raise UnroutableError(
                f"no queue is bound to {self.exchange_name!r} for routing key "
                f"{event.routing_key!r}, so the broker returned event {event.id}: start the "
                "bridge (it binds the event log) or bind a queue, then publish again",
                routing_key=event.routing_key,
                exchange=self.exchange_name,
            ) from exc
        except amqp.DeliveryError as exc:
            raise PublishError(
                f"the broker refused event {event.id} ({exc}): check its log and queue limits"
            ) from exc
        except TimeoutError as exc:
            raise PublishTimeoutError(
                f"the broker did not confirm event {event.id} within {self._timeout} s: check "
                "that it is up and not blocked (memory or disk alarm), then publish again"
            ) from exc
        except (ConnectionError, amqp.ChannelInvalidStateError) as exc:
            raise BrokerUnavailableError(
                f"publishing event {event.id} failed after {tries} attempt(s): {exc!r}; "
                "check that RabbitMQ is running and reachable, then publish again"
            ) from exc
        except amqp.AMQPError as exc:
            raise PublishError(
                f"the broker closed the channel while publishing event {event.id}: {exc!r}; "
                f"check that {self.exchange_name!r} still exists (re-open the publisher to "
                "declare it again) and read the broker's log"
            ) from exc
        return event
