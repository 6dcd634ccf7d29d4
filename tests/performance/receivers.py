"""What the benchmarks' receiving clients record, and what it proves: completeness, order,
latency.

Every client records one `Arrival` per event: when it arrived (`time.time()`), its order key
(the bridge's `offset`, or the baseline's sequence number), the sender's `data.sent_at` and the
sender's `data.seq`. Recording is all a client does per event, so the load generator stays cheap
(the client itself is `rawreceiver.RawReceiver`).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, NamedTuple, TypeVar

R = TypeVar("R", bound="Receiver")


class Arrival(NamedTuple):
    """One event as one client received it."""

    received_at: float
    offset: int
    sent_at: float
    seq: int


class Receiver(ABC):
    """A benchmark client that records the events it receives, in order.

    Attributes:
        transport: "socketio" or "websocket".
        arrivals: every event received, in arrival order.
        closed_reason: why the connection ended early (None while it is open).
        notices: every `resync-required` (Socket.IO) / `resync_required` (WS) payload received.
    """

    transport: str

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.closed_reason: str | None = None
        self.notices: list[dict[str, Any]] = []

    @abstractmethod
    async def close(self) -> None:
        """Close the connection (bounded)."""


async def open_all(opens: Sequence[Callable[[], Awaitable[R]]], concurrency: int = 20) -> list[R]:
    """Open many receivers, `concurrency` at a time; close every opened one if any fails."""
    slots = asyncio.Semaphore(concurrency)
    opened: list[R] = []

    async def one(open_receiver: Callable[[], Awaitable[R]]) -> R:
        async with slots:
            receiver = await open_receiver()
            opened.append(receiver)
            return receiver

    try:
        return list(await asyncio.gather(*(one(open_receiver) for open_receiver in opens)))
    except BaseException:
        await close_all(opened)
        raise


async def close_all(receivers: Sequence[Receiver]) -> None:
    """Close every receiver concurrently."""
    await asyncio.gather(*(receiver.close() for receiver in receivers), return_exceptions=True)


async def wait_for_all(
    receivers: Sequence[Receiver], expected: int, *, stall: float, deadline: float
) -> bool:
    """Wait until every open receiver got `expected` events; return whether all of them did.

    Gives up when no receiver made progress for `stall` seconds or `deadline` seconds passed,
    whichever is first, so a lost event ends the wait instead of hanging it.
    """
    loop = asyncio.get_running_loop()
    started = last_progress = loop.time()
    seen = -1
    while True:
        if all(len(r.arrivals) >= expected or r.closed_reason is not None for r in receivers):
            break
        total = sum(len(r.arrivals) for r in receivers)
        now = loop.time()
        if total != seen:
            seen, last_progress = total, now
        if now - last_progress > stall or now - started > deadline:
            break
        await asyncio.sleep(0.02)
    return all(len(r.arrivals) >= expected and r.closed_reason is None for r in receivers)


@dataclass
class Check:
    """What the receivers prove about delivery.

    Attributes:
        expected: events each client should have received.
        clients: how many clients.
        complete: clients that got every event, once, in order.
        missing: events (summed over clients) never received.
        duplicates: events (summed over clients) received more than once.
        out_of_order: arrivals whose offset was not greater than the one before.
        closed: why clients were disconnected early, one entry per such client.
    """

    expected: int
    clients: int
    complete: int = 0
    missing: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    closed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every client got every event exactly once, in order, and stayed connected."""
        return self.complete == self.clients and not self.closed

    def summary(self) -> str:
        """One line: ok, or what went wrong."""
        if self.ok:
            return "ok"
        parts = [f"{self.clients - self.complete}/{self.clients} clients incomplete"]
        if self.missing:
            parts.append(f"{self.missing} missing")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicated")
        if self.out_of_order:
            parts.append(f"{self.out_of_order} out of order")
        if self.closed:
            reasons = sorted(set(self.closed))
            parts.append(f"{len(self.closed)} disconnected ({'; '.join(reasons)[:120]})")
        return ", ".join(parts)


def check(receivers: Sequence[Receiver], expected: int) -> Check:
    """Check that each receiver got sequence numbers 0..expected-1 once each, offsets rising."""
    result = Check(expected=expected, clients=len(receivers))
    for receiver in receivers:
        seqs = [arrival.seq for arrival in receiver.arrivals]
        distinct = {seq for seq in seqs if 0 <= seq < expected}
        missing = expected - len(distinct)
        duplicates = len(seqs) - len(set(seqs))
        out_of_order = sum(
            1 for before, after in pairwise(receiver.arrivals) if after.offset <= before.offset
        )
        result.missing += missing
        result.duplicates += duplicates
        result.out_of_order += out_of_order
        if receiver.closed_reason is not None:
            result.closed.append(receiver.closed_reason)
        if missing == duplicates == out_of_order == 0 and len(seqs) == expected:
            result.complete += 1
    return result


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of an ascending sequence, or None if it is empty."""
    if not ordered:
        return None
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def latencies_ms(receivers: Sequence[Receiver]) -> list[float]:
    """Every arrival's receive time minus its `sent_at`, in milliseconds, ascending."""
    return sorted(
        (arrival.received_at - arrival.sent_at) * 1000.0
        for receiver in receivers
        for arrival in receiver.arrivals
    )


def last_arrival(receivers: Sequence[Receiver]) -> float | None:
    """When the last event reached the last client (`time.time()`), or None if none arrived."""
    times = [receiver.arrivals[-1].received_at for receiver in receivers if receiver.arrivals]
    return max(times) if times else None
