"""Presence between replicas, through the broker (docs/architecture.md, "Presence across
replicas").

Every replica binds its own exclusive, auto-delete queue to the fanout exchange
`<prefix>.presence` (nothing durable: presence lives in the replicas and is rebuilt from their
snapshots). On each connection a replica sends `hello` (every other replica answers with its
snapshot at once) and its own snapshot; then each change of its members as it happens, and its
snapshot again every `presence_heartbeat` seconds. A replica silent for `presence_expiry`
seconds — killed, cut off — is forgotten and its members leave (`Presence.expire`, checked every
half second). A starting replica is ready once the answers to its hello stopped arriving for a
quarter of a second (at most one heartbeat: by then every live replica has sent a snapshot).

Presence has its own named connection (`eventbridge-presence@<host>`), so the log consumer and
presence never wait on each other; it reconnects with backoff like the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from types import TracebackType

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractExchange, AbstractIncomingMessage

from bridge.broker import connect, topology
from bridge.broker.supervise import supervise
from bridge.core.presence import Presence
from bridge.core.presence_messages import Message
from bridge.settings import Settings

logger = logging.getLogger(__name__)

SETTLE = 0.25
"""Seconds without an answer to `hello` after which a starting replica knows the members."""
EXPIRE_EVERY = 0.5
"""Seconds between two checks for silent replicas."""
OUTBOX_SIZE = 10_000
"""Changes waiting to be sent; beyond it they are dropped (the next snapshot carries them)."""


class PresenceLink:
    """Carries one replica's presence to the others and theirs to it; an async context
    manager (entering connects; `wait_ready` returns once the current members are known)."""

    def __init__(self, settings: Settings, presence: Presence) -> None:
        self._settings = settings
        self._presence = presence
        self._names = topology.Names(settings.prefix)
        self._nodes = connect.Nodes(settings.amqp_url)
        self._heartbeat = connect.heartbeat_for(settings.heartbeat_timeout)
        self._outbox: asyncio.Queue[Message] = asyncio.Queue(OUTBOX_SIZE)
        self._exchange: AbstractExchange | None = None
        self._last_heard = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()
        """Set once this replica knows the other replicas' members."""
        self.received = 0
        """Messages received from other replicas (and this one's own, which are skipped)."""

    async def __aenter__(self) -> PresenceLink:
        connection = await connect.connect_with_retry(
            self._nodes,
            "presence",
            within=self._settings.startup_timeout,
            heartbeat=self._heartbeat,
        )
        self._presence.publish = self._send
        self._tasks = [
            asyncio.create_task(self._supervise(connection), name="presence-link"),
            asyncio.create_task(self._tick(), name="presence-heartbeat"),
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def wait_ready(self, within: float) -> None:
        """Wait until this replica knows the other replicas' members (at most `within` s:
        after that it answers with what it has, and says so in the log)."""
        try:
            await asyncio.wait_for(self.ready.wait(), within)
        except TimeoutError:
            logger.warning("presence: the other replicas' members are not known yet; serving")

    async def close(self) -> None:
        """Say goodbye (the other replicas drop this one's members at once), then stop and
        close the connection. Safe to call more than once."""
        self._presence.publish = _drop
        exchange, self._exchange = self._exchange, None
        if exchange is not None:
            bye = {"kind": "bye", "replica": self._presence.replica}
            with contextlib.suppress(Exception):  # best effort: expiry covers a lost goodbye
                await asyncio.wait_for(_publish(exchange, bye), 1.0)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- sending ---------------------------------------------------------------------------

    def _send(self, message: Message) -> None:
        """Queue one of this replica's messages (dropped while not connected: the snapshot
        sent on reconnecting carries the same)."""
        if self._exchange is None:
            return
        with contextlib.suppress(asyncio.QueueFull):
            self._outbox.put_nowait(message)

    async def _tick(self) -> None:
        """Expire silent replicas every half second; send a snapshot every heartbeat."""
        heartbeat = self._settings.presence_heartbeat
        next_snapshot = time.monotonic() + heartbeat
        while True:
            await asyncio.sleep(min(EXPIRE_EVERY, heartbeat))
            self._presence.expire()
            if time.monotonic() >= next_snapshot:
                next_snapshot = time.monotonic() + heartbeat
                self._send(self._presence.snapshot())

    # -- the connection ----------------------------------------------------------------------

    async def _supervise(self, first: AbstractConnection) -> None:
        await supervise(
            first,
            reconnect=lambda: connect.connect(self._nodes, "presence", heartbeat=self._heartbeat),
            session=self._session,
            failed=_log_failure,
            ended=self._ended,
        )

    def _ended(self) -> None:
        """The connection ended: nothing is sent until the next one."""
        self._exchange = None
        self._nodes.lost()

    async def _session(self, connection: AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=False)
        exchange, queue = await topology.declare_presence(
            channel, self._names, ttl=self._settings.presence_expiry
        )
        await queue.consume(self._on_message, no_ack=True)
        while not self._outbox.empty():  # what was queued for the previous connection
            self._outbox.get_nowait()
        self._exchange = exchange
        hello_at = time.monotonic()
        await _publish(exchange, {"kind": "hello", "replica": self._presence.replica})
        await _publish(exchange, self._presence.snapshot())
        if not self.ready.is_set():
            await self._settle(hello_at)
            self.ready.set()
            logger.info(
                "presence: ready (%d other replicas heard from)", len(self._presence.replicas())
            )
        while True:
            await _publish(exchange, await self._outbox.get())

    async def _settle(self, since: float) -> None:
        """Wait until answers to `hello` stopped arriving for `SETTLE` seconds, at most one
        heartbeat after it was sent."""
        limit = since + self._settings.presence_heartbeat
        while (now := time.monotonic()) < limit:
            quiet = now - max(since, self._last_heard)
            if quiet >= SETTLE:
                return
            await asyncio.sleep(min(SETTLE - quiet, limit - now))

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self.received += 1
        try:
            decoded = json.loads(message.body)
            if not isinstance(decoded, dict):
                raise TypeError("not a JSON object")  # noqa: TRY301 - one handler for all
            if (
                decoded.get("kind") == "snapshot"
                and decoded.get("replica") != self._presence.replica
            ):
                self._last_heard = time.monotonic()
            self._presence.receive(decoded)
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            logger.warning("presence: dropped a malformed message (%s)", exc)


async def _publish(exchange: AbstractExchange, message: Message) -> None:
    body = json.dumps(message, separators=(",", ":")).encode()
    await exchange.publish(aio_pika.Message(body, content_type="application/json"), routing_key="")


def _log_failure(exc: Exception) -> bool:
    """Log why the link's connection ended; never stop (it reconnects)."""
    if isinstance(exc, (*connect.TRANSIENT, aio_pika.exceptions.AMQPError)):
        logger.warning("presence: broker connection lost (%s); reconnecting", exc)
    else:
        logger.error("presence: the link failed; reconnecting", exc_info=exc)
    return False


def _drop(_: Message) -> None:
    """Where changes go once the link is closed."""
