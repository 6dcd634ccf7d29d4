"""Staying connected: one session per broker connection, reconnecting with backoff for ever.

The log consumer and the presence link each keep a long-lived connection of their own; both
run this loop, and supply what differs: how to reconnect, what a session does, which failures
stop them, and what to forget when a connection ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractConnection

RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)
"""Seconds waited before each reconnection after a connection ended (the last repeats; a
session that got connected starts the sequence over)."""


async def supervise(
    first: AbstractConnection,
    *,
    reconnect: Callable[[], Awaitable[AbstractConnection]],
    session: Callable[[AbstractConnection], Awaitable[None]],
    failed: Callable[[Exception], bool],
    ended: Callable[[], None],
) -> None:
    """Run `session` on `first`, then on a connection from `reconnect` each time it ends,
    until cancelled.

    Args:
        first: the connection to start with.
        reconnect: opens the next connection (it may raise; that counts as a failure).
        session: what to do with one connection; returns or raises when it is lost.
        failed: hears every exception of a session or a reconnection; True stops the loop.
        ended: called after each connection ended, whatever the reason.
    """
    connection: AbstractConnection | None = first
    failures = 0
    while True:
        try:
            if connection is None:
                connection = await reconnect()
            async with connection:
                failures = 0
                await session(connection)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - `failed` logs it and decides: stop, or reconnect
            if failed(exc):
                return
        finally:
            connection = None
            ended()
        await asyncio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
        failures += 1
