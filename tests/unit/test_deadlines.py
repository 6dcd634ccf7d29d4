"""The SDK's publish deadlines: one timer bounds every publish in flight."""

from __future__ import annotations

import asyncio
import time

import pytest

from producers.deadlines import Deadlines


async def test_a_block_past_its_deadline_raises_timeout_error_on_time() -> None:
    """A block that outlives its time raises TimeoutError between `seconds` and `seconds + tick`."""
    deadlines = Deadlines(0.4)
    started = time.monotonic()
    with pytest.raises(TimeoutError), deadlines:
        await asyncio.sleep(10)
    took = time.monotonic() - started
    assert deadlines.seconds <= took < deadlines.seconds + deadlines.tick + 0.2


async def test_blocks_in_time_finish_and_a_late_one_beside_them_times_out() -> None:
    """Of several blocks in flight, only the one past its time fails; the others return."""
    deadlines = Deadlines(0.3)

    async def block(seconds: float) -> str:
        with deadlines:
            await asyncio.sleep(seconds)
        return "done"

    results = await asyncio.gather(
        block(0.01), block(5), block(0.1), block(0.0), return_exceptions=True
    )
    assert results[0] == results[2] == results[3] == "done"
    assert isinstance(results[1], TimeoutError)
    assert await block(0.05) == "done"  # the timer starts again for later blocks


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    """Cancelling a publishing task raises CancelledError, never a TimeoutError."""
    deadlines = Deadlines(5)

    async def block() -> None:
        with deadlines:
            await asyncio.sleep(10)

    task = asyncio.create_task(block())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_error_inside_the_block_passes_through_unchanged() -> None:
    """An exception the publish raises in time reaches the caller as it was raised."""
    deadlines = Deadlines(1)

    async def block() -> None:
        with deadlines:
            await asyncio.sleep(0)
            raise ConnectionError("lost")

    with pytest.raises(ConnectionError, match="lost"):
        await block()


def test_a_deadline_must_be_positive() -> None:
    """A zero or negative time limit is refused with a sentence."""
    with pytest.raises(ValueError, match="positive"):
        Deadlines(0)
