"""EventPublisher: publish contract-valid events to `<prefix>.events` and wait for the broker.

Every event is validated against `schemas` before anything is sent (`producers.encoding`),
published persistent and `mandatory` on a confirming channel, and each publish is bounded by a
timeout. The URL may list several nodes of one cluster (`producers.connection`): the publisher
connects to one that answers and, when that connection is lost, goes on with the next one.

What is retried, and what is not: connecting is retried (`retry_attempts` rounds over the
nodes, with backoff), and so is everything not yet sent when a connection is lost, on the next
node. A publish that was sent but not confirmed is *in doubt* (the broker may have stored it):
it is never re-sent behind the caller's back, but raised (by id, for a batch), so no event is
stored twice unless the caller decides to publish it again. The typed per-event-type helpers
come from `producers.helpers`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from aio_pika import exceptions as amqp
from aio_pika.abc import AbstractConnection
from pydantic import BaseModel

from producers.channel import ConfirmingChannel
from producers.connection import Nodes
from producers.deadlines import Deadlines
from producers.encoding import HeaderValue, Outgoing, build_envelope, encode
from producers.errors import (
    BatchPublishError,
    BrokerUnavailableError,
    PublisherClosedError,
    PublishError,
    PublishTimeoutError,
    UnroutableError,
)
from producers.helpers import TypedHelpers
from producers.published import PublishedEvent
from schemas import Envelope, exchange_name

# HeaderValue and PublishedEvent are re-exported: `from producers.publisher import ...` is public.
__all__ = ["EventPublisher", "HeaderValue", "PublishedEvent"]

log = logging.getLogger(__name__)

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


class EventPublisher(TypedHelpers):
    """Publishes events with publisher confirms; an async context manager.

    Besides `publish`, `publish_envelope` and `publish_batch`, it has one typed helper per event
    type (`progress_update`, `agent_status`, ...; see `TypedHelpers`).

    Args:
        amqp_url: The broker: one URL, or the comma-separated URLs of one cluster's nodes
            (ignored when `connection` is given).
        prefix: The topology prefix; events go to the exchange `<prefix>.events`.
        source: The producer's name, written into every envelope it builds.
        publish_timeout: Seconds to wait for the broker to confirm one publish (and for a node
            to answer a connection). A publish that takes longer raises `PublishTimeoutError`
            at most a quarter of a second (or a quarter of the timeout, if less) after that.
        retry_attempts: How many rounds over the nodes to try when connecting (at start, and
            again after a connection is lost).
        connection_name: The AMQP connection name operators see in the management UI.
        connection: An open connection to publish on; the publisher then opens only its own
            channel, leaves the connection open on exit, and cannot fail over.
        max_body_bytes: Refuse events whose JSON body is larger (the bridge's default limit);
            None disables the check.
        heartbeat: The AMQP heartbeat to negotiate, in seconds (None: the broker's); a dead or
            silent node is noticed within about three of it.

    Raises:
        ValueError: (from the constructor) `amqp_url` is not a list of AMQP URLs of one cluster,
            or a number is out of range; the message says what is wrong.
    """

    def __init__(
        self,
        amqp_url: str = DEFAULT_URL,
        *,
        prefix: str = "eventbridge",
        source: str = "eventbridge-sdk",
        publish_timeout: float = 10.0,
        retry_attempts: int = 5,
        connection_name: str = "eventbridge-publisher",
        connection: AbstractConnection | None = None,
        max_body_bytes: int | None = 65536,
        heartbeat: int | None = None,
    ) -> None:
        if publish_timeout <= 0 or retry_attempts < 1:
            raise ValueError("publish_timeout must be positive and retry_attempts at least 1")
        self._prefix = prefix
        self._source = source
        self._timeout = publish_timeout
        self._deadlines = Deadlines(publish_timeout)
        self._max_body = max_body_bytes
        self._channel = ConfirmingChannel(
            Nodes(amqp_url),
            exchange_name(prefix),
            timeout=publish_timeout,
            attempts=retry_attempts,
            name=connection_name,
            connection=connection,
            heartbeat=heartbeat,
        )
        self._open = False

    @property
    def exchange_name(self) -> str:
        """The exchange this publisher publishes to."""
        return exchange_name(self._prefix)

    @property
    def node(self) -> str | None:
        """The URL (password redacted) of the node this publisher is connected to, if any."""
        return self._channel.node

    async def __aenter__(self) -> Self:
        """Connect (unless given a connection), open a confirming channel, declare the exchange.

        Raises:
            PublisherClosedError: this publisher is already open.
            BrokerAuthenticationError: a node refused the login; not retried.
            BrokerUnavailableError: no node could be reached after every retry.
            PublishError: the exchange cannot be declared (e.g. it exists with another type).
        """
        if self._open:
            raise PublisherClosedError("this EventPublisher is already open: enter it only once")
        await self._channel.open()
        self._open = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the channel, and the connection if this publisher opened it."""
        self._open = False
        await self._channel.close()

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
        return await self._send(encode(envelope, headers, max_body_bytes=self._max_body))

    async def publish_envelope(
        self, envelope: Envelope, *, headers: Mapping[str, HeaderValue] | None = None
    ) -> PublishedEvent:
        """Validate and publish a ready envelope as is (its id, source and time are kept).

        Raises:
            The same errors as `publish`.
        """
        return await self._send(encode(envelope, headers, max_body_bytes=self._max_body))

    async def publish_batch(
        self, events: Iterable[Envelope], *, window: int = 256
    ) -> list[PublishedEvent]:
        """Publish many envelopes, keeping up to `window` confirms in flight.

        Every envelope is validated before the first is sent. Events are sent in input order and
        returned in input order. When the connection is lost mid-batch, what was not sent yet is
        sent on the next node; what was in flight is in doubt and reported, never re-sent.

        Raises:
            InvalidEventError: some envelope is invalid; nothing was sent.
            BatchPublishError: some events were not confirmed; it lists them by id (with why)
                and the confirmed ones, once every publish has settled.
        """
        if window < 1:
            raise ValueError("window must be at least 1")
        prepared = [encode(envelope, None, max_body_bytes=self._max_body) for envelope in events]
        self._require_open()
        failed: dict[str, PublishError] = {}
        confirmed: list[PublishedEvent | None] = [None] * len(prepared)
        # A semaphore bounds what is in flight: waiting on the set itself would cost O(window)
        # per event.
        slots = asyncio.Semaphore(window)
        in_flight: set[asyncio.Task[None]] = set()

        async def send(index: int, outgoing: Outgoing) -> None:
            try:
                confirmed[index] = await self._send(outgoing)
            except PublishError as exc:
                failed[outgoing.event.id] = exc
            finally:
                slots.release()

        try:
            for index, outgoing in enumerate(prepared):
                await slots.acquire()
                task = asyncio.create_task(send(index, outgoing))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if in_flight:
                await asyncio.wait(in_flight)
        except BaseException:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            raise
        published = [event for event in confirmed if event is not None]
        if failed:
            first = next(iter(failed.values()))
            raise BatchPublishError(
                f"{len(failed)} of {len(prepared)} events were not confirmed (the first: "
                f"{first}); the other {len(published)} were. Publish the failed ones again "
                "(same ids) once the cause is fixed; `failed` lists them by id",
                confirmed=published,
                failed=failed,
            )
        return published

    def _require_open(self) -> None:
        if not self._open:
            raise PublisherClosedError(
                "EventPublisher is not open: publish inside `async with EventPublisher(...)`"
            )

    async def _send(self, outgoing: Outgoing) -> PublishedEvent:
        self._require_open()
        event = outgoing.event
        channel = await self._channel.publisher()
        try:
            # The whole publish, the wait for the confirm included, is bounded in this task by
            # one timer for every publish in flight (`producers.deadlines`).
            with self._deadlines:
                await channel.basic_publish(
                    outgoing.body,
                    exchange=self._channel.exchange_name,
                    routing_key=event.routing_key,
                    properties=outgoing.properties,
                    mandatory=True,
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
                f"the broker did not confirm event {event.id} within {self._timeout:g} s: check "
                "that it is up and not blocked (a memory or disk alarm blocks publishers); it "
                "may have been stored, so publish it again (same id) only if it must arrive"
            ) from exc
        except (ConnectionError, amqp.ChannelInvalidStateError) as exc:
            raise BrokerUnavailableError(
                f"the connection to {self.node} was lost while publishing event {event.id} "
                f"({exc!r}); it may have been stored: publish it again (same id) only if it "
                "must arrive (the next publish connects to the next node)"
            ) from exc
        except amqp.AMQPError as exc:
            raise PublishError(
                f"the broker closed the channel while publishing event {event.id}: {exc!r}; "
                f"check that {self.exchange_name!r} still exists and read the broker's log "
                "(the next publish opens a new channel and declares the exchange again)"
            ) from exc
        return event
