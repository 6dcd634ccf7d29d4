"""One confirming channel on a cluster, opened again on the next node when its connection is lost.

`ConfirmingChannel` is what `EventPublisher` publishes through: it connects to the first node
that answers (retrying every node `attempts` times, with backoff; a refused login is never
retried), opens a channel with publisher confirms and returns, and declares the exchange. When
the connection (or just the channel) is lost, `publisher()` opens a new one — on the next node —
before anything more is sent, so reopening is always safe to retry.
"""

from __future__ import annotations

import asyncio
import logging

import aio_pika
from aio_pika import exceptions as amqp
from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq.abc import AbstractChannel as AmqpChannel
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from producers.connection import Nodes, connect_first, redact
from producers.errors import BrokerAuthenticationError, BrokerUnavailableError, PublishError

log = logging.getLogger(__name__)


def _worth_retrying(exc: BaseException) -> bool:
    """Whether connecting again may succeed: no node answered (a refused login never will)."""
    return isinstance(exc, BrokerUnavailableError) and not isinstance(
        exc, BrokerAuthenticationError
    )


class ConfirmingChannel:
    """A channel with publisher confirms on the exchange `exchange_name`, kept open.

    Args:
        nodes: the cluster's nodes (ignored when `connection` is given).
        exchange_name: the topic exchange to declare and publish to.
        timeout: seconds a node has to answer, and a channel to open.
        attempts: rounds over the nodes when connecting.
        name: the connection name operators see.
        connection: a connection to use instead (left open on close; no failover).
        heartbeat: the AMQP heartbeat to negotiate (None: the broker's).
    """

    def __init__(
        self,
        nodes: Nodes,
        exchange_name: str,
        *,
        timeout: float,
        attempts: int,
        name: str,
        connection: AbstractConnection | None = None,
        heartbeat: int | None = None,
    ) -> None:
        self.nodes = nodes
        self.exchange_name = exchange_name
        self._timeout = timeout
        self._attempts = attempts
        self._name = name
        self._external = connection
        self._heartbeat = heartbeat
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._underlay: AmqpChannel | None = None
        self._reopening = asyncio.Lock()
        self.connect_attempts = 0
        """Connection attempts (rounds over the nodes) of the last connect."""

    @property
    def node(self) -> str | None:
        """The URL (password redacted) of the node connected to, if any."""
        current = self.nodes.current
        return None if self._external is not None or current is None else redact(current)

    async def open(self) -> None:
        """Connect if needed, then open the confirming channel and declare the exchange.

        Raises:
            BrokerAuthenticationError: a node refused the login; not retried.
            BrokerUnavailableError: no node could be reached after every retry.
            PublishError: the exchange cannot be declared.
        """
        try:
            await self._attach()
        except BaseException as exc:
            await self.close()
            translated = self._entry_error(exc)
            if translated is None:
                raise
            raise translated from exc

    async def _attach(self) -> None:
        if self._external is not None:
            connection = self._external
        else:
            connection = self._connection = await self._connect()
        async with asyncio.timeout(self._timeout):
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            self._channel = channel
            await channel.declare_exchange(
                self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
            self._underlay = await channel.get_underlay_channel()

    def _entry_error(self, exc: BaseException) -> PublishError | None:
        """Translate a failure to open into an error that says what to do."""
        own = self._external is None
        where = f"RabbitMQ at {self.nodes.describe()}" if own else "the given connection"
        if isinstance(exc, BrokerAuthenticationError):
            return exc
        if isinstance(exc, amqp.ChannelPreconditionFailed):
            return PublishError(
                f"exchange {self.exchange_name!r} exists with another type or durability: "
                "delete it or use another prefix"
            )
        if isinstance(exc, (BrokerUnavailableError, amqp.AMQPError, ConnectionError, TimeoutError)):
            attempts = f" after {self.connect_attempts} attempt(s)" if own else ""
            return BrokerUnavailableError(
                f"could not open a publishing channel on {where}{attempts} ({exc}): check "
                "that the broker is running and the URL (EVENTBRIDGE_AMQP_URL) points at it"
            )
        return None

    async def _connect(self) -> AbstractConnection:
        """Connect to the first node that answers, trying every node `attempts` times."""

        def warn(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "connecting to %s: attempt %d of %d failed (%s); retrying",
                self.nodes.describe(),
                state.attempt_number,
                self._attempts,
                exc,
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=0.2, max=5.0),
            retry=retry_if_exception(_worth_retrying),
            before_sleep=warn,
            reraise=True,
        )
        async for attempt in retrying:
            self.connect_attempts = attempt.retry_state.attempt_number
            with attempt:
                return await connect_first(
                    self.nodes, name=self._name, timeout=self._timeout, heartbeat=self._heartbeat
                )
        raise AssertionError("unreachable: tenacity returns or re-raises")  # pragma: no cover

    async def publisher(self) -> AmqpChannel:
        """aiormq's channel under the open channel, to `basic_publish` on: after a lost
        connection (or channel), connect again (to the next node) first.

        Publishing on aiormq's channel, the one aio-pika's `Exchange.publish` calls, skips
        building an `aio_pika.Message` per event (`producers.encoding`).

        Raises:
            BrokerUnavailableError: no node could be reached (or the channel not reopened).
        """
        underlay, channel = self._underlay, self._channel
        if underlay is not None and channel is not None and not channel.is_closed:
            return underlay
        async with self._reopening:
            if self._channel is None or self._channel.is_closed or self._underlay is None:
                await self._reattach()
        assert self._underlay is not None
        return self._underlay

    async def _reattach(self) -> None:
        """Open a new channel, on a new connection to the next node if the old one is lost."""
        lost = self._external is None and (self._connection is None or self._connection.is_closed)
        if lost:
            log.warning("lost the connection to %s; connecting to the next node", self.node)
            self.nodes.lost()
            old, self._connection = self._connection, None
            if old is not None:
                await asyncio.shield(_quietly_close(old))
        try:
            await self._attach()
        except BrokerUnavailableError:
            raise
        except (amqp.AMQPError, ConnectionError, TimeoutError) as exc:
            raise BrokerUnavailableError(
                f"could not reopen a publishing channel on {self.nodes.describe()} ({exc!r}): "
                "check that RabbitMQ is running and reachable, then publish again"
            ) from exc

    async def close(self) -> None:
        """Close the channel, and the connection if this channel opened it."""
        channel, connection = self._channel, self._connection
        self._underlay = self._channel = self._connection = None
        try:
            if channel is not None and not channel.is_closed:
                await channel.close()
        except (amqp.AMQPError, ConnectionError, RuntimeError):
            log.debug("the publishing channel was already closing", exc_info=True)
        finally:
            if connection is not None and not connection.is_closed:
                await connection.close()


async def _quietly_close(connection: AbstractConnection) -> None:
    """Close a connection that is already lost, ignoring how it fails."""
    try:
        await asyncio.wait_for(connection.close(), 5)
    except (amqp.AMQPError, ConnectionError, TimeoutError, RuntimeError):
        log.debug("closing a lost connection failed", exc_info=True)
