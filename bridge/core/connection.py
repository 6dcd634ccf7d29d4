"""A client connection as the hub sees it: frames written straight to the socket when it keeps
up, else one bounded queue drained by a writer task.

Delivering an event to a client that keeps up costs one write to its socket: when nothing is
queued for it and its socket's buffer is below the high-water mark, the frame goes out at once
(`write_now`), with no task and no wake-up. When the hub delivers several events in a row (the
records the broker sent together), such a client's frames are held and written together, one
write per client per batch (`flush_batch`). Only a client that falls behind gets a queue and a
writer task, which waits for its socket and exits once the queue is empty again. The queue is
bounded: once live frames fill half of it, a progress update replaces the older one of the same
agent still queued; when it is full all the same, the client is disconnected as slow (it resumes
by offset when it returns) and nobody else waits for it.

Both transports implement `ClientConnection`: they say how an event or a notice is framed and
how a frame is written; the hub only calls `deliver()`, `deliver_backlog()` and `notify()`.
Which rooms a connection is in is the hub's business, not the connection's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar

from bridge.core.events import Event
from bridge.core.outbox import CoalesceKey, Frame, Outbox, coalesce_key
from bridge.core.tally import UNCOUNTED, TransportTally
from schemas.codes import CloseReason

__all__ = ["COALESCE_FRACTION", "ClientConnection", "CoalesceKey", "Frame", "reset"]

logger = logging.getLogger(__name__)

DEFAULT_OUTBOX_BYTES = 8 * 1024 * 1024
CLOSE_GRACE = 5.0
"""Seconds a client the bridge closes has to let the connection close before it is aborted."""
COALESCE_FRACTION = 2
"""Superseded progress updates are dropped once live frames fill 1/COALESCE_FRACTION of a
client's queue limit (a catch-up in progress does not count)."""


class ClientConnection(ABC):
    """A browser connection, whichever the transport, as the hub sees it."""

    transport: ClassVar[str]

    def __init__(
        self, connection_id: str, *, limit: int, max_bytes: int = DEFAULT_OUTBOX_BYTES
    ) -> None:
        self.id = connection_id
        self.limit = limit
        """Events queued (beyond a catch-up) before the client counts as slow."""
        self.max_bytes = max_bytes
        """Bytes of live events queued before the client counts as slow."""
        self._queue: Outbox | None = None
        self._batched: bytes | list[bytes] | None = None
        """Frames of the hub's current batch, held to be written together (`flush_batch`): the
        one frame itself, or a list once there are more (no allocation in the common case)."""
        self._writer: asyncio.Task[None] | None = None
        self._writing = False
        self._closed = False
        self._closing: asyncio.Task[None] | None = None
        self.tally: TransportTally = UNCOUNTED
        """Where this connection's deliveries count (its transport's, once the hub adds it)."""
        self.close_reason: str | None = None
        """Why the bridge ended the connection (a `CloseReason`, or `auth_refused`); None while
        open or when the client left."""

    # -- what each transport provides -----------------------------------------------------

    @abstractmethod
    def frame(self, event: Event) -> Frame:
        """The frame this transport sends for an event (built once per event, shared)."""

    @abstractmethod
    def notice(self, name: str, payload: dict[str, Any]) -> Frame:
        """The frame of a bridge notice such as `resync-required`."""

    def notice_key(self) -> object:
        """Connections with equal keys encode a notice alike (presence encodes once per key)."""
        return type(self)

    def write_now(self, frame: Frame) -> bool:
        """Hand a frame to the socket at once if it can take it without waiting (the fast
        path); False when the transport offers none or the socket is backed up."""
        del frame
        return False

    @abstractmethod
    async def write(self, frame: Frame) -> None:
        """Send one frame, waiting while the client's socket is backed up."""

    @abstractmethod
    async def disconnect(self, reason: CloseReason) -> None:
        """Close the connection, telling the client why."""

    # -- delivery ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the connection is closing or closed."""
        return self._closed

    @property
    def queued(self) -> int:
        """Frames waiting to be written (superseded progress updates not counted)."""
        return 0 if self._queue is None else self._queue.queued

    def deliver(self, event: Event, batch: list[ClientConnection] | None = None) -> None:
        """Send a live event (a progress update may replace an older one still queued).

        With `batch` (the hub is delivering several events in a row), the frame for a client
        that keeps up is held, to be written with the batch's other frames in one write when
        the hub calls `flush_batch`; the connection adds itself to `batch` when it holds the
        first one.
        """
        frame = self.frame(event)
        if self._queue is None and not self._writing and not self._closed:
            if batch is not None and isinstance(frame, bytes):
                held = self._batched
                if held is None:
                    self._batched = frame
                    batch.append(self)
                elif isinstance(held, bytes):
                    self._batched = [held, frame]
                else:
                    held.append(frame)
                return
            if self.write_now(frame):
                return  # the common case: straight to a socket that keeps up
        self.push(frame, coalesce_key(event))

    def flush_batch(self) -> None:
        """Write the frames held for the hub's batch, in one write if the socket takes it."""
        held, self._batched = self._batched, None
        if held is None or self._closed:
            return
        data = held if isinstance(held, bytes) else b"".join(held)
        if self._queue is None and not self._writing and self.write_now(data):
            return
        for frame in [held] if isinstance(held, bytes) else held:
            self.push(frame)

    def deliver_backlog(self, events: Iterable[Event]) -> None:
        """Send past events (a catch-up or a snapshot) in order; see `push_backlog`."""
        self.push_backlog(self.frame(event) for event in events)

    def notify(self, name: str, payload: dict[str, Any]) -> None:
        """Send a bridge notice such as `resync-required`, in order with the events."""
        self.push(self.notice(name, payload))

    def push(self, frame: Frame, key: CoalesceKey | None = None) -> None:
        """Send a frame (event, notice or reply) in order: at once when nothing waits before
        it and the socket can take it, else queued.

        When the client falls behind, a progress update first replaces the older one of the same
        agent still queued; if the queue is full all the same, the client is disconnected as slow.
        """
        if self._batched is not None:
            self.flush_batch()  # what the batch holds goes first
        if self._closed:
            return
        queue = self._queue
        if queue is None:
            if not self._writing and self.write_now(frame):
                return
            queue = self._queue = Outbox()
        counted = queue.counted
        if key is not None and counted >= self.limit // COALESCE_FRACTION:
            older = queue.newest.get(key)
            if older is not None:
                queue.superseded.add(older)
                counted -= 1
                self.tally.coalesced += 1
        size = len(frame)
        if counted >= self.limit or queue.live_bytes + size > self.max_bytes:
            self.drop_as_slow()
            return
        queue.live_bytes += size
        if key is not None:
            queue.newest[key] = queue.pushed
        queue.add(frame, key, size)
        if counted >= self.tally.outbox_high_water:
            self.tally.outbox_high_water = counted + 1
        self._wake()

    def push_all(self, frames: list[Frame]) -> None:
        """Send notices in order: ready frames in one write when nothing waits before them."""
        if self._queue is None and not self._writing and self._batched is None and frames:
            ready = [frame for frame in frames if isinstance(frame, bytes)]
            if len(ready) == len(frames) and not self._closed and self.write_now(b"".join(ready)):
                return
        for frame in frames:
            self.push(frame)

    def push_reply(self, frame: Frame) -> None:
        """Send the answer to a client's request in order with everything else. Answers do not
        count against the slow-consumer limit: the client's message rate limit bounds them, and
        a client that floods requests is closed for that (`flooding`), not as slow."""
        if self._batched is not None:
            self.flush_batch()
        if self._closed:
            return
        if self._queue is None and not self._writing and self.write_now(frame):
            return
        if self._queue is None:
            self._queue = Outbox()
        self._queue.add(frame, None, -1)
        self._wake()

    def push_backlog(self, frames: Iterable[Frame]) -> None:
        """Queue a bounded batch of past events (a catch-up or a snapshot) in order.

        The batch does not count against the slow-consumer limit: only what is queued beyond
        it does, so a long resume is not mistaken for a client that stopped reading.
        """
        if self._batched is not None:
            self.flush_batch()
        if self._closed:
            return
        pending = iter(frames)
        if self._queue is None and not self._writing:
            ready = list(pending)
            if all(isinstance(frame, bytes) for frame in ready):
                joined = b"".join(ready)  # type: ignore[arg-type]  # all bytes, checked above
                if not joined or self.write_now(joined):
                    return  # the whole batch in one write
            pending = iter(ready)
            for frame in pending:
                if not self.write_now(frame):
                    self._queue = Outbox()
                    self._queue.add(frame, None, -1)
                    break
            else:
                return
        if self._queue is None:
            self._queue = Outbox()
        for frame in pending:
            self._queue.add(frame, None, -1)
        self._wake()

    def _wake(self) -> None:
        """Make sure a writer task drains the queue."""
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop(), name=f"writer-{self.id}")

    async def wait_drained(self, below: int) -> None:
        """Wait until fewer than `below` frames are queued (a catch-up reading the log waits
        here, so a client that reads slowly slows the read instead of filling memory)."""
        while not self._closed and self.queued >= below:
            writer = self._writer
            if writer is None:
                return
            await asyncio.sleep(0.005)

    def drop_as_slow(self) -> None:
        """Disconnect this client as slow: it is not reading what it is sent."""
        if self._closed:
            return
        logger.warning(
            "disconnecting %s client %s: more than %d events or %d bytes queued, it is not reading",
            self.transport,
            self.id,
            self.limit,
            self.max_bytes,
            extra=self.log_ids(CloseReason.SLOW_CONSUMER),
        )
        self.close_soon(CloseReason.SLOW_CONSUMER)

    def log_ids(self, reason: str) -> dict[str, str]:
        """This connection's ids and `reason`, for a log call's `extra` (JSON lines carry them)."""
        return {"connection_id": self.id, "transport": self.transport, "reason": str(reason)}

    def tcp_transport(self) -> asyncio.Transport | None:
        """The TCP connection under this client's WebSocket, when known (see `close`)."""
        return None

    def close_soon(self, reason: CloseReason) -> None:
        """Stop writing at once and close the connection with `reason` in the background.

        For callers that must not wait (the hub, a request handler of this very client).
        """
        if self._closed:
            return
        self._closed = True
        self.close_reason = reason
        self._queue = None
        self._closing = asyncio.create_task(self.close(reason), name=f"close-{self.id}")
        self._closing.add_done_callback(_log_failure)

    async def close(self, reason: CloseReason) -> None:
        """Stop writing, tell the client why and close; a client that has not let its
        connection close within `CLOSE_GRACE` seconds (one that stopped reading never takes the
        close frame) has its TCP connection aborted, so it holds no socket or buffer."""
        if self.close_reason is None:
            self.close_reason = reason
        self._closed = True
        self._queue = None
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
                extra=self.log_ids(reason),
            )
            reset(transport)

    async def _write_loop(self) -> None:
        """Drain the queue, then end (the next frame that must wait starts a new writer)."""
        while (queue := self._queue) is not None and not self._closed:
            if not queue.frames:
                self._queue = None
                self._writer = None  # this task ends; idle clients keep no task
                return
            sequence, frame, key, counted = queue.frames.popleft()
            if counted < 0:
                queue.exempt -= 1
            else:
                queue.live_bytes -= counted
            if key is not None and queue.newest.get(key) == sequence:
                del queue.newest[key]
            if sequence in queue.superseded:
                queue.superseded.discard(sequence)
                continue
            self._writing = True
            try:
                await self.write(frame)
            finally:
                self._writing = False

    async def stop(self) -> None:
        """Stop the writer; frames not yet written are dropped."""
        self._closed = True
        self._queue = None
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
