"""The lean queue and event every WebSocket holds behave as asyncio's for what uvicorn uses."""

from __future__ import annotations

import asyncio
import inspect
import re

import pytest
from uvicorn.protocols.websockets import websockets_sansio_impl

from bridge.upstream.primitives import LeanEvent, LeanQueue


def test_uvicorn_calls_nothing_the_lean_stand_ins_lack() -> None:
    """Every method uvicorn's WebSocket protocol calls on its queue and writable flag exists on
    the stand-ins the bridge gives it (an upgrade that calls another one fails here)."""
    source = inspect.getsource(websockets_sansio_impl)
    for attribute, stand_in in (("queue", LeanQueue), ("writable", LeanEvent)):
        called = set(re.findall(rf"self\.{attribute}\.(\w+)\(", source))
        assert called, f"uvicorn no longer uses self.{attribute}"
        assert called <= set(dir(stand_in)), (attribute, called - set(dir(stand_in)))


async def test_the_queue_hands_out_items_first_in_first_out() -> None:
    """Items come out in the order they went in, whether queued before or after a get waits."""
    queue: LeanQueue[int] = LeanQueue()
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert (queue.qsize(), queue.empty()) == (2, False)
    assert [await queue.get(), await queue.get()] == [1, 2]
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(3)
    assert await asyncio.wait_for(waiting, 1) == 3
    assert queue.empty()


async def test_each_item_reaches_exactly_one_of_several_waiting_getters() -> None:
    """Two items for three waiting getters: the two longest waiting get one each, in order."""
    queue: LeanQueue[str] = LeanQueue()
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await asyncio.sleep(0)
    queue.put_nowait("a")
    queue.put_nowait("b")
    await asyncio.sleep(0.01)
    assert [getter.result() for getter in getters[:2]] == ["a", "b"]
    assert not getters[2].done()
    getters[2].cancel()
    await asyncio.gather(getters[2], return_exceptions=True)


async def test_a_getter_cancelled_after_being_woken_passes_its_item_on() -> None:
    """No item is lost when the getter it was meant for is cancelled before it runs."""
    queue: LeanQueue[str] = LeanQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("only")  # wakes `first`...
    first.cancel()  # ...which is cancelled before it takes the item
    assert await asyncio.wait_for(second, 1) == "only"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert queue.empty()


async def test_the_event_wakes_every_waiter_and_blocks_again_once_cleared() -> None:
    """set() releases all waiters; after clear() a wait blocks until the next set()."""
    event = LeanEvent()
    waiters = [asyncio.create_task(event.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(waiter.done() for waiter in waiters)
    event.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [True, True, True]
    event.clear()
    blocked = asyncio.create_task(event.wait())
    await asyncio.sleep(0.01)
    assert not blocked.done()
    event.set()
    assert await asyncio.wait_for(blocked, 1) is True
    assert await event.wait() is True  # set: returns at once


async def test_a_cancelled_event_waiter_leaves_the_others_waiting() -> None:
    """Cancelling one waiter neither wakes nor drops the others."""
    event = LeanEvent()
    kept, cancelled = asyncio.create_task(event.wait()), asyncio.create_task(event.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert not kept.done()
    event.set()
    assert await asyncio.wait_for(kept, 1) is True
