"""Lean stand-ins for `asyncio.Queue` and `asyncio.Event`, for state every connection holds.

A stock `asyncio.Queue` holds four deques (its items, waiting getters, waiting putters, and the
event behind `join`), an `asyncio.Event` one more, and each empty deque takes 760 bytes: uvicorn
gives every WebSocket one of each, about 3.8 KB of its ~40 KB (`tests/performance/README.md`,
bench_connections). These hold a list, and a list of waiters only while someone waits, and offer
exactly what their users call: `put_nowait`, `get`, `empty`, `qsize`; `set`, `clear`,
`is_set`, `wait`. Neither is bounded; the protocol that fills the queue bounds it (uvicorn stops
reading a socket while its queue holds a message).
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


def _wake_first(waiters: list[asyncio.Future[None]]) -> None:
    """Wake the longest-waiting waiter still waiting, dropping the cancelled ones before it."""
    while waiters:
        waiter = waiters.pop(0)
        if not waiter.done():
            waiter.set_result(None)
            return


class LeanQueue(Generic[T]):
    """An unbounded first-in, first-out queue for one event loop (`put_nowait`, `get`)."""

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._getters: list[asyncio.Future[None]] | None = None

    def empty(self) -> bool:
        """Whether nothing is queued."""
        return not self._items

    def qsize(self) -> int:
        """How many items are queued."""
        return len(self._items)

    def put_nowait(self, item: T) -> None:
        """Queue `item` and wake the longest-waiting `get`."""
        self._items.append(item)
        if self._getters:
            _wake_first(self._getters)

    async def get(self) -> T:
        """The oldest item, waiting for one if the queue is empty."""
        while not self._items:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(waiter)
            try:
                await waiter
            except BaseException:
                getters = self._getters or []
                if waiter in getters:
                    getters.remove(waiter)
                elif not waiter.cancelled() and self._items and getters:
                    _wake_first(getters)  # woken, then cancelled: pass the item on
                raise
            finally:
                if not self._getters:
                    self._getters = None
        return self._items.pop(0)


class LeanEvent:
    """A flag tasks can wait for (`set`, `clear`, `is_set`, `wait`), as `asyncio.Event`."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._set

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        """Clear the flag; `wait` blocks again."""
        self._set = False

    async def wait(self) -> bool:
        """Return True once the flag is set (at once if it is)."""
        if self._set:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
                if not self._waiters:
                    self._waiters = None
        return True
