"""The log consumer: tail the log into the hub, dead-letter what is invalid — and stay connected.

One supervisor task owns the broker connection. Each *session* (one connection's lifetime):
declares the topology, learns the log's epoch, appends a sync marker, then reads the log in
order. The first session reads live from the tail, so the bridge is ready at once, and rebuilds
buffers and snapshot state in the background (`bridge.broker.session`); later sessions continue
after the newest offset handled. Records already handled are only checked for dead letters;
newer ones are handed to the hub. When the connection drops, the session ends and the supervisor
reconnects with backoff; clients stay connected meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection

from bridge.broker import connect, topology
from bridge.broker.ranges import LogRanges
from bridge.broker.session import Progress, Session
from bridge.broker.supervise import supervise
from bridge.broker.timing import LogTail
from bridge.core.hub import Hub
from bridge.errors import BrokerUnavailableError, EventBridgeError, RequestError, TopologyError
from bridge.settings import Settings
from producers import EventPublisher, InvalidEventError, PublishError
from schemas.codes import ErrorCode

logger = logging.getLogger(__name__)


class LogConsumer:
    """Feeds the hub from the log, independent of any HTTP server; an async context manager.

    Entering it connects (retrying up to `settings.startup_timeout`), declares the topology and
    returns once the log is being consumed live; leaving it stops consuming and closes the
    broker connection. It also publishes client-originated events, on the same connection.
    """

    def __init__(self, settings: Settings, hub: Hub, ranges: LogRanges) -> None:
        self.settings = settings
        self.names = topology.Names(settings.prefix)
        self._hub = hub
        self._ranges = ranges
        self._progress = Progress(tail=LogTail())
        self._closing = False
        self._connected = False
        self._synced = asyncio.Event()
        self._publisher: EventPublisher | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._startup: asyncio.Future[None] | None = None
        self._nodes = connect.Nodes(settings.amqp_url)
        self._lost_node: str | None = None
        self._heartbeat = connect.heartbeat_for(settings.heartbeat_timeout)
        self.reconnects = 0
        """Sessions started after a lost connection."""
        self.failovers = 0
        """Reconnections that went to another node than the one lost."""

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> LogConsumer:
        connection = await connect.connect_with_retry(
            self._nodes,
            "bridge",
            within=self.settings.startup_timeout,
            heartbeat=self._heartbeat,
        )
        self._startup = asyncio.get_running_loop().create_future()
        self._supervisor = asyncio.create_task(self._supervise(connection), name="log-supervisor")
        try:
            await self._startup
        except BaseException:
            await self.close()
            raise
        logger.info(
            "bridge ready: consuming %s (epoch %s) at offset %d",
            self.names.log,
            self._hub.epoch,
            self._hub.head,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop consuming the log: no new events enter the bridge. Ending the session also saves
        the dead-letter checkpoint and closes the broker connection (client events published
        afterwards are refused as broker_unavailable). Safe to call more than once."""
        if self._closing:
            return
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None

    # -- state seen by HTTP and transports ------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up."""
        return self._connected

    @property
    def dead_lettered(self) -> int:
        """Invalid records dead-lettered since start."""
        return self._progress.dead_lettered

    @property
    def log_tail(self) -> int:
        """The newest log offset the broker has delivered to this bridge (-1: none yet)."""
        tail = self._progress.tail
        return -1 if tail is None else tail.received

    @property
    def node(self) -> str | None:
        """The node in use (`host:port`), or None while not connected."""
        current = self._nodes.current
        return connect.node_of(current) if self._connected and current is not None else None

    @property
    def log_name(self) -> str:
        """The name of the log stream being consumed."""
        return self.names.log

    @property
    def ready(self) -> bool:
        """Whether the bridge is connected and consuming the log live."""
        return self._connected and self._synced.is_set()

    async def publish_client_event(
        self, event_type: str, data: dict[str, Any], project_id: str | None, *, source: str
    ) -> str:
        """Publish a client-originated event through the exchange with a confirm; return its id.

        Raises:
            RequestError: the broker is unavailable or refused the publish.
        """
        publisher = self._publisher
        if publisher is None or not self.ready:
            raise RequestError(
                ErrorCode.BROKER_UNAVAILABLE,
                "the bridge is reconnecting to the broker; try again shortly",
            )
        try:
            published = await publisher.publish(
                event_type, data, project_id=project_id, headers={"x-eventbridge-origin": source}
            )
        except InvalidEventError as exc:
            raise RequestError(ErrorCode.INVALID_DATA, str(exc)) from exc
        except PublishError as exc:
            raise RequestError(
                ErrorCode.PUBLISH_FAILED, f"the broker did not accept the event: {exc}"
            ) from exc
        return published.id

    # -- the supervisor and one session --------------------------------------------------

    async def _supervise(self, first: AbstractConnection) -> None:
        await supervise(
            first,
            reconnect=self._reconnect,
            session=self._session,
            failed=self._failed,
            ended=self._ended,
        )

    async def _reconnect(self) -> AbstractConnection:
        connection = await connect.connect(self._nodes, "bridge", heartbeat=self._heartbeat)
        self.reconnects += 1
        if self._lost_node is not None and self._nodes.current != self._lost_node:
            self.failovers += 1
            logger.warning("failed over to RabbitMQ node %s", self.node_in_use)
        return connection

    def _failed(self, exc: Exception) -> bool:
        """Fail the start-up (True: stop), or log what happened and reconnect."""
        if self._startup is not None and not self._startup.done():
            self._startup.set_exception(_startup_error(exc, self.settings))
            return True
        if isinstance(exc, EventBridgeError):
            # A refused login, classic queues: the sentence says what to do.
            logger.error("%s; retrying in case it is fixed", exc)
        elif isinstance(exc, (*connect.TRANSIENT, aio_pika.exceptions.AMQPError)):
            logger.warning("broker connection lost (%s); reconnecting", exc)
        else:
            logger.error("the log consumer failed; reconnecting", exc_info=exc)
        return False

    def _ended(self) -> None:
        """A connection ended: forget what belonged to it."""
        if self._connected:
            self._lost_node = self._nodes.current
            self._nodes.lost()
        self._connected = False
        self._synced.clear()
        self._publisher = None
        self._ranges.connection = None

    @property
    def node_in_use(self) -> str:
        """The node connected to last, for log lines."""
        current = self._nodes.current
        return connect.node_of(current) if current is not None else "(none)"

    async def _session(self, connection: AbstractConnection) -> None:
        self._connected = True
        self._ranges.connection = connection
        session = Session(
            connection,
            self.settings,
            self._hub,
            self._progress,
            on_synced=self._synced_now,
            on_publisher=self._use_publisher,
        )
        await session.run()
        logger.warning(
            "the log consumer stopped (connection to %s lost, or the log deleted); restarting",
            self.node_in_use,
        )

    def _synced_now(self) -> None:
        """The session reached its sync marker: the bridge is consuming live."""
        self._synced.set()
        if self._startup is not None and not self._startup.done():
            self._startup.set_result(None)

    def _use_publisher(self, publisher: EventPublisher | None) -> None:
        self._publisher = publisher


def _startup_error(exc: BaseException, settings: Settings) -> BaseException:
    if isinstance(exc, EventBridgeError):
        return exc  # says what to do already (a refused login, classic queues to migrate)
    if isinstance(exc, aio_pika.exceptions.ChannelPreconditionFailed):
        return TopologyError(
            f"RabbitMQ refused the topology under prefix {settings.prefix!r} ({exc}): an object "
            "with that name exists with other settings; delete it or choose another "
            "EVENTBRIDGE_PREFIX."
        )
    if isinstance(exc, connect.BrokerAuthenticationError):
        return exc
    if isinstance(exc, (*connect.TRANSIENT, aio_pika.exceptions.AMQPError)):
        return BrokerUnavailableError(connect.unreachable(settings.amqp_url, exc))
    return EventBridgeError(f"The bridge could not start: {exc!r}; see the log above.")
