"""Delivery: one bounded outbound queue and one writer task per client connection.

A client that stops reading fills only its own queue; when the queue is full the client is
disconnected as slow (it resumes by offset when it returns) and nobody else waits for it.
Both transports implement `ClientConnection`; the router and the resume logic only call
`deliver()`, `catch_up()` and `push()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bridge.auth import NOTHING, TOKEN_EXPIRED, Grant, remaining_seconds
from bridge.decoding import Event

logger = logging.getLogger(__name__)

SLOW_CONSUMER = "slow_consumer"
DEFAULT_OUTBOX_BYTES = 8 * 1024 * 1024
CLOSE_GRACE = 5.0
"""Seconds a client the bridge closes has to let the connection close before it is aborted."""
COALESCE_FRACTION = 2
"""Superseded progress updates are dropped once live frames fill 1/COALESCE_FRACTION of a
client's queue limit (a catch-up in progress does not count)."""

CoalesceKey = tuple[str, str]
"""(project, agent): a progress update supersedes an older queued one with the same key."""


def coalesce_key(event: Event) -> CoalesceKey | None:
    """The key under which a newer event replaces an older queued one: progress updates only
    (each carries the agent's whole progress, so the newest one says all)."""
    if event.type == "progress_update" and event.subject is not None and not event.replayed:
        return (event.project_id or "", event.subject)
    return None


@dataclass(slots=True)
class Subscription:
    """A connection's place in one room.

    Attributes:
        covered_after: every event of the room above this offset is (or will be) delivered.
        joined: when the connection joined, as a per-connection sequence number.
        pending: while a catch-up is read from the log, live events wait here; None when live.
    """

    covered_after: int
    joined: int = 0
    pending: list[Event] | None = field(default=None)
    pending_bytes: int = 0


class ClientConnection(ABC):
    """A browser connection, whichever the transport, as the router sees it."""

    transport: ClassVar[str]

    def __init__(
        self, connection_id: str, *, limit: int, max_bytes: int = DEFAULT_OUTBOX_BYTES
    ) -> None:
        self.id = connection_id
        self.rooms: dict[str, Subscription] = {}
        self._limit = limit
        self._max_bytes = max_bytes
        self._live_bytes = 0
        # (sequence, frame, coalesce key, bytes it counts against max_bytes: 0 for a backlog)
        self._queue: deque[tuple[int, str, CoalesceKey | None, int]] = deque()
        self._newest: dict[CoalesceKey, int] = {}
        self._superseded: set[int] = set()
        self._pushed = 0
        self._written = 0
        self._backlog_until = 0
        self._wakeup = asyncio.Event()
        self._closed = False
        self._writer: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self.grant: Grant = NOTHING
        self._expiry: asyncio.TimerHandle | None = None

    # -- what each transport provides -----------------------------------------------------

    @abstractmethod
    def frame(self, event: Event) -> str:
        """The frame this transport sends for an event (encoded once per event, shared)."""

    @abstractmethod
    def notice(self, name: str, payload: dict[str, Any]) -> str:
        """The frame of a bridge notice such as `resync-required`."""

    @abstractmethod
    async def write(self, frame: str) -> None:
        """Send one frame, waiting while the client's socket is backed up."""

    @abstractmethod
    async def disconnect(self, reason: str) -> None:
        """Close the connection, telling the client why."""

    # -- authorization ----------------------------------------------------------------------

    def authorize(self, grant: Grant) -> None:
        """Hold `grant` from now on; when it expires, disconnect with `token_expired`."""
        self.grant = grant
        remaining = remaining_seconds(grant)
        if remaining is not None:
            loop = asyncio.get_running_loop()
            self._expiry = loop.call_later(max(0.0, remaining), self.close_soon, TOKEN_EXPIRED)

    # -- delivery ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the connection is closing or closed."""
        return self._closed

    @property
    def queued(self) -> int:
        """Frames waiting to be written (superseded progress updates not counted)."""
        return len(self._queue) - len(self._superseded)

    def start(self) -> None:
        """Start the writer task."""
        self._writer = asyncio.create_task(self._write_loop(), name=f"writer-{self.id}")

    def owner(self, event: Event) -> str | None:
        """The room through which this connection gets `event`: of the event's rooms that cover
        it, the one joined first. A connection in two matching rooms thus gets each event once,
        whichever room it joined or resumed first."""
        owner: str | None = None
        earliest = 0
        for room in event.rooms:
            subscription = self.rooms.get(room)
            if subscription is None or subscription.covered_after >= event.offset:
                continue
            if owner is None or subscription.joined < earliest:
                owner, earliest = room, subscription.joined
        return owner

    def deliver(self, event: Event, room: str) -> None:
        """Queue a live event of `room` (or hold it while that room catches up)."""
        subscription = self.rooms[room]
        if subscription.pending is not None:
            subscription.pending.append(event)
            subscription.pending_bytes += len(self.frame(event))
            if (
                len(subscription.pending) > self._limit
                or subscription.pending_bytes > self._max_bytes
            ):
                self.push_overflow()
            return
        self.push(self.frame(event), coalesce_key(event))

    def catch_up(self, room: str, events: Iterable[Event]) -> None:
        """Queue a room's past events, skipping those another of its rooms delivers."""
        self.push_backlog(self.frame(event) for event in events if self.owner(event) == room)

    def push_backlog(self, frames: Iterable[str]) -> None:
        """Queue a bounded batch of past events (a catch-up or a snapshot) in order.

        The batch does not count against the slow-consumer limit: only what is queued beyond
        it does, so a long resume is not mistaken for a client that stopped reading.
        """
        if self._closed:
            return
        for frame in frames:
            self._queue.append((self._pushed, frame, None, 0))
            self._pushed += 1
        self._backlog_until = self._pushed
        self._wakeup.set()

    def go_live(self, room: str) -> None:
        """End a catch-up: queue the live events held meanwhile, then deliver directly."""
        subscription = self.rooms.get(room)
        if subscription is None or subscription.pending is None:
            return
        held, subscription.pending = subscription.pending, None
        subscription.pending_bytes = 0
        for event in held:
            self.push(self.frame(event), coalesce_key(event))

    def push(self, frame: str, key: CoalesceKey | None = None) -> None:
        """Queue a frame (event, notice or reply) in order.

        When the client falls behind, a progress update first replaces the older one of the same
        agent still queued; if the queue is full all the same, the client is disconnected as slow.
        """
        if self._closed:
            return
        queued = len(self._queue) - len(self._superseded)
        backlog = max(0, self._backlog_until - self._written)
        if key is not None and queued - backlog >= self._limit // COALESCE_FRACTION:
            older = self._newest.get(key)
            if older is not None:
                self._superseded.add(older)
                queued -= 1
        if queued >= self._limit + backlog or self._live_bytes + len(frame) > self._max_bytes:
            self.push_overflow()
            return
        self._live_bytes += len(frame)
        self._queue.append((self._pushed, frame, key, len(frame)))
        if key is not None:
            self._newest[key] = self._pushed
        self._pushed += 1
        self._wakeup.set()

    def push_overflow(self) -> None:
        """Disconnect this client as slow: it is not reading what it is sent."""
        if self._closed:
            return
        logger.warning(
            "disconnecting %s client %s: more than %d events or %d bytes queued, it is not reading",
            self.transport,
            self.id,
            self._limit,
            self._max_bytes,
        )
        self.close_soon(SLOW_CONSUMER)

    def tcp_transport(self) -> asyncio.Transport | None:
        """The TCP connection under this client's WebSocket, when known (see `close`)."""
        return None

    def close_soon(self, reason: str) -> None:
        """Stop writing at once and close the connection with `reason` in the background.

        For callers that must not wait (the router, a request handler of this very client).
        """
        if self._closed:
            return
        self._closed = True
        self._forget_queue()
        self._closing = asyncio.create_task(self.close(reason), name=f"close-{self.id}")
        self._closing.add_done_callback(_log_failure)

    async def close(self, reason: str) -> None:
        """Stop writing, tell the client why and close; a client that has not let its
        connection close within `CLOSE_GRACE` seconds (one that stopped reading never takes the
        close frame) has its TCP connection aborted, so it holds no socket or buffer."""
        self._closed = True
        self._forget_queue()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_GRACE):
                await self.disconnect(reason)
                while (transport := self.tcp_transport()) is not None:
                    if transport.is_closing():
                        return
                    await asyncio.sleep(0.1)
                return
        transport = self.tcp_transport()
        if transport is not None and not transport.is_closing():
            logger.info(
                "aborting the connection of %s client %s: it did not take its close (%s) "
                "within %g s",
                self.transport,
                self.id,
                reason,
                CLOSE_GRACE,
            )
            reset(transport)

    async def _write_loop(self) -> None:
        while not self._closed:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue and not self._closed:
                sequence, frame, key, counted = self._queue.popleft()
                self._live_bytes -= counted
                self._written += 1
                if key is not None and self._newest.get(key) == sequence:
                    del self._newest[key]
                if sequence in self._superseded:
                    self._superseded.discard(sequence)
                    continue
                await self.write(frame)

    def _forget_queue(self) -> None:
        self._queue.clear()
        self._live_bytes = 0
        self._newest.clear()
        self._superseded.clear()

    async def stop(self) -> None:
        """Stop the writer; frames not yet written are dropped."""
        self._closed = True
        if self._expiry is not None:
            self._expiry.cancel()
        self._forget_queue()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("closing a client failed", exc_info=task.exception())


def reset(transport: asyncio.Transport) -> None:
    """Abort a TCP connection with a reset, dropping what the kernel still holds for the peer
    (a plain close would keep unsent bytes queued, retried for minutes, to a peer not reading).
    """
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
