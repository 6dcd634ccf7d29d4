"""The bridge service: tail the log, decode, route to rooms — and stay connected.

One supervisor task owns the broker connection. Each *session* (one connection's lifetime):
declares the topology, learns the log's epoch, appends a sync marker, then reads the log in
order. The first session starts `warm_start_events` before the tail (a *warm start*: buffers and
snapshot state are rebuilt before the bridge reports ready); later sessions continue after the
newest offset handled. Records already handled are only checked for dead letters; newer ones are
recorded in the history and routed live. When the connection drops, the session ends and the
supervisor reconnects with backoff; clients stay connected meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from types import TracebackType
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection

from bridge import broker, logmeta, topology
from bridge.deadletters import DeadLetterWriter
from bridge.decoding import DeadLetter, decode_record
from bridge.errors import BrokerUnavailableError, RequestError, TopologyError
from bridge.eventlog import LogReader, LogRecord, is_sync, probe_tail
from bridge.history import LastValues, RoomBuffers
from bridge.resume import Resumer
from bridge.rooms import Rooms
from bridge.settings import Settings
from producers import EventPublisher, InvalidEventError, PublishError
from schemas.errors import EventBridgeError

logger = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)


class BridgeService:
    """The running bridge, independent of any HTTP server; an async context manager.

    Entering it connects (retrying up to `settings.startup_timeout`), declares the topology and
    returns once the log is being consumed live; leaving it stops consuming, closes every client
    connection and then the broker connection.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.names = topology.Names(settings.prefix)
        self.rooms = Rooms()
        self.history = RoomBuffers(settings.history_max_events, settings.history_max_bytes)
        self.state = LastValues(settings.state_max_entries, settings.state_max_bytes)
        self.resumer = Resumer(self)
        self.amqp_connection: AbstractConnection | None = None
        self.epoch = ""
        self.head = -1
        """The newest log offset this bridge has handled."""
        self.events_routed = 0
        self.dead_lettered = 0
        self._checked: int | None = None
        self._warm = False
        self._closing = False
        self._connected = False
        self._synced = asyncio.Event()
        self._publisher: EventPublisher | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._startup: asyncio.Future[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> BridgeService:
        connection = await broker.connect_with_retry(
            self.settings.amqp_url, "bridge", within=self.settings.startup_timeout
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
            self.epoch,
            self.head,
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
        """Shut down in order; safe to call more than once."""
        if self._closing:
            return
        self._closing = True
        # 1. Stop consuming the log: no new events enter the bridge. Ending the session also
        #    saves the dead-letter checkpoint and closes the broker connection (client events
        #    published during the rest of the shutdown are refused as broker_unavailable).
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self.resumer.close()
        # 2. Close every client connection with a reason (they resume by offset later); a
        #    client that does not answer its close within the time allowed is dropped.
        connections = list(self.rooms.connections())
        closing = asyncio.gather(
            *(connection.disconnect("shutdown") for connection in connections),
            return_exceptions=True,
        )
        try:
            await asyncio.wait_for(closing, self.settings.shutdown_timeout / 2)
        except TimeoutError:
            logger.warning("some clients did not acknowledge the close in time")
        # 3. Stop the writers; frames a client did not take in time are dropped.
        await asyncio.gather(
            *(connection.stop() for connection in connections), return_exceptions=True
        )

    # -- state seen by HTTP and transports ------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up."""
        return self._connected

    @property
    def ready(self) -> bool:
        """Whether the bridge is connected and consuming the log live."""
        return self._connected and self._synced.is_set()

    async def publish_client_event(
        self, event_type: str, data: dict[str, Any], project_id: str | None, source: str
    ) -> str:
        """Publish a client-originated event through the exchange with a confirm; return its id.

        Raises:
            RequestError: the broker is unavailable or refused the publish.
        """
        publisher = self._publisher
        if publisher is None or not self.ready:
            raise RequestError(
                "broker_unavailable", "the bridge is reconnecting to the broker; try again shortly"
            )
        try:
            published = await publisher.publish(
                event_type, data, project_id=project_id, headers={"x-eventbridge-origin": source}
            )
        except InvalidEventError as exc:
            raise RequestError("invalid_data", str(exc)) from exc
        except PublishError as exc:
            raise RequestError(
                "publish_failed", f"the broker did not accept the event: {exc}"
            ) from exc
        return published.id

    # -- the supervisor and one session --------------------------------------------------

    async def _supervise(self, first: AbstractConnection) -> None:
        connection: AbstractConnection | None = first
        failures = 0
        while True:
            try:
                if connection is None:
                    connection = await broker.connect(self.settings.amqp_url, "bridge")
                async with connection:
                    self._connected = True
                    self.amqp_connection = connection
                    failures = 0
                    await self._session(connection)
                logger.warning(
                    "the log consumer stopped (connection lost or log deleted); restarting"
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the one place that decides: fail start-up, else retry
                if self._startup is not None and not self._startup.done():
                    self._startup.set_exception(_startup_error(exc, self.settings))
                    return
                if isinstance(exc, (*broker.TRANSIENT, aio_pika.exceptions.AMQPError)):
                    logger.warning("broker connection lost (%s); reconnecting", exc)
                else:
                    logger.exception("the log consumer failed; reconnecting")
            finally:
                self._connected = False
                self._synced.clear()
                self._publisher = None
                self.amqp_connection = None
                connection = None
            await asyncio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
            failures += 1

    async def _session(self, connection: AbstractConnection) -> None:
        declared = await topology.declare(connection, self.settings)
        logger.debug("topology declared (log created now: %s)", declared.log_created)
        channel = await connection.channel(publisher_confirms=True)
        epoch = await logmeta.ensure_epoch(
            channel, self.names.epoch, log_created=declared.log_created
        )
        logger.debug("log epoch %s", epoch)
        if self.epoch and epoch != self.epoch:
            logger.warning("the log was re-created (epoch %s → %s)", self.epoch, epoch)
            self.head, self._checked = -1, None
            self.state.reset()
            self.epoch = epoch
            self.resumer.epoch_changed()
        self.epoch = epoch
        writer = None
        if self.settings.dead_letter_writer:
            if self._checked is None:
                self._checked = await logmeta.read_checkpoint(channel, self.names.checkpoint, epoch)
            writer = DeadLetterWriter(
                channel,
                self.names.dead_letters,
                self.names.checkpoint,
                epoch,
                checked=-1 if self._checked is None else self._checked,
                publish_timeout=self.settings.publish_timeout,
            )
        logger.debug("dead-letter checkpoint %s", self._checked)
        sync_id, tail = await probe_tail(channel, connection, self.names.log)
        start = self._start_offset(tail)
        self._warm = self.head < 0  # the buffers start over at the first record read
        publisher = EventPublisher(
            connection=connection,
            prefix=self.settings.prefix,
            source="eventbridge",
            publish_timeout=self.settings.publish_timeout,
            retry_attempts=1,
        )
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(publisher)
            if writer is not None:
                await stack.enter_async_context(writer)
            reader = await stack.enter_async_context(
                LogReader(
                    connection, self.names.log, start, prefetch=self.settings.consumer_prefetch
                )
            )
            self._publisher = publisher
            logger.info("reading %s from offset %s (tail %d)", self.names.log, start, tail)
            while (record := await reader.next()) is not None:
                await self._handle(record, sync_id, writer)
                await reader.done(record)
            if writer is not None:
                self._checked = writer.checked

    def _start_offset(self, tail: int) -> int:
        """Where a session starts reading: after what was handled (or, at a warm start, the
        warm window before the tail), or after the dead-letter checkpoint if that is older."""
        warm = max(0, tail - self.settings.warm_start_events)
        candidates = [self.head + 1 if self.head >= 0 else warm]
        if self.settings.dead_letter_writer and self._checked is not None:
            candidates.append(self._checked + 1)
        return min(candidates)

    async def _handle(
        self, record: LogRecord, sync_id: str, writer: DeadLetterWriter | None
    ) -> None:
        """Decide one record's fate: marker, history, dead letter, or live event."""
        message = record.message
        if self._warm:
            # Complete from here on; earlier offsets were not read (or retention removed them).
            self.history.reset(floor=record.offset - 1)
            self._warm = False
        if record.marker is not None:
            # Every marker moves the head, other replicas' too, so replicas agree on it.
            self.head = max(self.head, record.offset)
            if is_sync(record, sync_id):
                self._synced.set()
                if self._startup is not None and not self._startup.done():
                    # Everything the warm start loaded lives long: keep it out of the garbage
                    # collector's full scans (refcounting still frees it when it is evicted).
                    gc.freeze()
                    self._startup.set_result(None)
            return
        live = record.offset > self.head
        if live:
            self.head = record.offset
        result = decode_record(record, max_bytes=self.settings.max_message_bytes)
        if isinstance(result, DeadLetter):
            if writer is not None:
                await writer.put(record.offset, message, result)
                self.dead_lettered += live
        elif live:
            self.history.record(result)
            self.state.record(result)
            self.rooms.dispatch(result)
            self.events_routed += 1
        if writer is not None:
            writer.handled(record.offset)


def _startup_error(exc: BaseException, settings: Settings) -> BaseException:
    if isinstance(exc, aio_pika.exceptions.ChannelPreconditionFailed):
        return TopologyError(
            f"RabbitMQ refused the topology under prefix {settings.prefix!r} ({exc}): an object "
            "with that name exists with other settings; delete it or choose another "
            "EVENTBRIDGE_PREFIX."
        )
    if isinstance(exc, (*broker.TRANSIENT, aio_pika.exceptions.AMQPError)):
        return BrokerUnavailableError(
            f"Lost RabbitMQ at {broker.redact(settings.amqp_url)} during start-up ({exc}); "
            "check the broker and try again."
        )
    return EventBridgeError(f"The bridge could not start: {exc!r}; see the log above.")
