"""`supervise`: one session per connection, a backoff between them, and a clean stop."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aio_pika.abc import AbstractConnection

from bridge.broker import supervise as supervise_module
from bridge.broker.supervise import supervise


class FakeConnection:
    """Enough of a connection for `supervise`: an async context manager that records closing."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    async def __aenter__(self) -> FakeConnection:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.closed = True


def connection(name: str) -> AbstractConnection:
    return cast(AbstractConnection, FakeConnection(name))


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff delays `supervise` waits, recorded instead of waited."""
    waited: list[float] = []
    real_sleep = asyncio.sleep

    async def record(delay: float, *args: Any) -> None:
        waited.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record)
    return waited


async def test_sessions_follow_each_other_with_a_backoff_that_restarts_once_connected(
    sleeps: list[float],
) -> None:
    """A lost session and a failed reconnection each wait longer; a session that got connected
    starts the backoff over; `failed` returning True stops the loop."""
    first, second, third = connection("first"), connection("second"), connection("third")
    reconnections: list[AbstractConnection | Exception] = [
        ConnectionError("refused"),
        second,
        third,
    ]
    sessions: list[str] = []
    failures: list[str] = []
    ended: list[int] = []

    async def reconnect() -> AbstractConnection:
        outcome = reconnections.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def session(on: AbstractConnection) -> None:
        name = cast(FakeConnection, on).name
        sessions.append(name)
        if name == "first":
            raise ConnectionError("lost")
        if name == "third":
            raise RuntimeError("give up")
        # "second" returns: its connection was lost without an error

    def failed(exc: Exception) -> bool:
        failures.append(str(exc))
        return isinstance(exc, RuntimeError)

    await asyncio.wait_for(
        supervise(
            first,
            reconnect=reconnect,
            session=session,
            failed=failed,
            ended=lambda: ended.append(len(sessions)),
        ),
        5,
    )

    assert sessions == ["first", "second", "third"]
    assert failures == ["lost", "refused", "give up"]
    delays = supervise_module.RECONNECT_DELAYS
    assert sleeps == [delays[0], delays[1], delays[0]]
    assert ended == [1, 1, 2, 3]  # after every connection (or attempt), the last one too
    assert all(cast(FakeConnection, c).closed for c in (first, second, third))


async def test_cancelling_stops_it_at_once_and_ends_the_connection(sleeps: list[float]) -> None:
    """Cancelled mid-session, it closes the connection, calls `ended` and re-raises."""
    first = connection("first")
    started = asyncio.Event()
    failures: list[Exception] = []
    ended: list[bool] = []

    async def session(on: AbstractConnection) -> None:
        started.set()
        await asyncio.Event().wait()

    async def reconnect() -> AbstractConnection:
        raise AssertionError("not reached")

    def failed(exc: Exception) -> bool:
        failures.append(exc)
        return False

    task = asyncio.create_task(
        supervise(
            first,
            reconnect=reconnect,
            session=session,
            failed=failed,
            ended=lambda: ended.append(True),
        )
    )
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cast(FakeConnection, first).closed
    assert ended == [True]
    assert failures == []
    assert sleeps == []
