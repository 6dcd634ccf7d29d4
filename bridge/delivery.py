"""Delivery: one bounded outbound queue and one writer task per client connection.

A client that stops reading fills only its own queue; when the queue is full the client is
disconnected as slow (it resumes by offset when it returns) and nobody else waits for it.
Both transports implement `ClientConnection`; the router only ever calls `offer()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections import deque
from typing import ClassVar

from bridge.decoding import Event

logger = logging.getLogger(__name__)

SLOW_CONSUMER = "slow_consumer"


class ClientConnection(ABC):
    """A browser connection, whichever the transport, as the router sees it.

    Attributes:
        id: the connection's id (Socket.IO sid or a generated WebSocket id).
        rooms: the rooms it is in.
        last_offset: the offset of the newest event queued for it; an event at or below this
            offset is never queued again, so a client in two matching rooms gets it once.
    """

    transport: ClassVar[str]

    def __init__(self, connection_id: str, *, limit: int) -> None:
        self.id = connection_id
        self.rooms: set[str] = set()
        self.last_offset = -1
        self._limit = limit
        self._queue: deque[str] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._writer: asyncio.Task[None] | None = None

    @abstractmethod
    def frame(self, event: Event) -> str:
        """The frame this transport sends for an event (encoded once per event, shared)."""

    @abstractmethod
    async def write(self, frame: str) -> None:
        """Send one frame, waiting while the client's socket is backed up."""

    @abstractmethod
    async def disconnect(self, reason: str) -> None:
        """Close the connection, telling the client why."""

    @property
    def closed(self) -> bool:
        """Whether the connection is closing or closed."""
        return self._closed

    @property
    def queued(self) -> int:
        """Frames waiting to be written."""
        return len(self._queue)

    def start(self) -> None:
        """Start the writer task."""
        self._writer = asyncio.create_task(self._write_loop(), name=f"writer-{self.id}")

    def offer(self, event: Event) -> None:
        """Queue an event unless this connection already got it (same or newer offset)."""
        if event.offset <= self.last_offset:
            return
        self.last_offset = event.offset
        self.push(self.frame(event))

    def push(self, frame: str) -> None:
        """Queue a frame (event or reply) in order; a full queue disconnects the client as slow."""
        if self._closed:
            return
        if len(self._queue) >= self._limit:
            self._closed = True
            self._queue.clear()
            logger.warning(
                "disconnecting %s client %s: %d frames queued, it is not reading",
                self.transport,
                self.id,
                self._limit,
            )
            task = asyncio.create_task(self.disconnect(SLOW_CONSUMER))
            task.add_done_callback(_log_failure)
            return
        self._queue.append(frame)
        self._wakeup.set()

    async def _write_loop(self) -> None:
        while not self._closed:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue and not self._closed:
                await self.write(self._queue.popleft())

    async def stop(self) -> None:
        """Stop the writer; frames not yet written are dropped."""
        self._closed = True
        self._queue.clear()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("closing a slow client failed", exc_info=task.exception())
