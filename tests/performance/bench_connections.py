"""Idle-connection benchmark: memory per connection, and how long one event takes to reach them
all, for eventbridge and the bare servers it is built on, in the same run.

For each server — eventbridge over native WebSocket (`ws`) and Socket.IO (`eio`), a bare FastAPI
broadcast loop (`bare`), python-socketio's room emit (`socketio`) — it opens N raw clients
(`rawclients`, in several processes) that join one room, lets the server settle, and reads its
resident memory before and after: the difference divided by N is the cost of one idle
connection. Then, a few times, one event: the time from its publication (eventbridge: stamped by
the publisher before it goes to RabbitMQ; bare servers: stamped when the server builds it) to
its arrival at the last of the N clients.

    python -m tests.performance.bench_connections                  # 10,000 connections
    python -m tests.performance.bench_connections --clients 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import delete_prefix
from tests.performance.fanout_phases import (
    ARTIFACTS,
    Clients,
    Publisher,
    bare_server,
    clients,
    eventbridge,
)
from tests.performance.processes import rss_mb

PAIRS = {"ws": "bare", "eio": "socketio"}


@dataclass
class Measured:
    """One server's figures."""

    server: str
    clients: int
    connect_seconds: float
    rss_before_mb: float
    rss_after_mb: float
    reach_ms: list[float] = field(default_factory=list)
    """Per round: from publication to the last client's arrival."""
    missing: int = 0

    @property
    def kib_per_connection(self) -> float:
        """Resident memory one idle connection costs."""
        return (self.rss_after_mb - self.rss_before_mb) * 1024 / self.clients


async def settled_rss(pid: int | None, seconds: float = 3.0) -> float:
    """The process's resident memory once it stopped changing for a moment."""
    await asyncio.sleep(seconds)
    return rss_mb(pid) or 0.0


async def reach(group: Clients, count: int, trigger: Callable[[], Awaitable[None]]) -> float:
    """Send one event; return the milliseconds until it reached the last of `count` clients."""
    await group.command("report")  # clear
    await group.command("record")
    await trigger()
    latencies: list[float] = []
    deadline = time.monotonic() + 60
    while len(latencies) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        for report in await group.command("report"):
            latencies.extend(report["latencies"])
    if len(latencies) < count:
        raise RuntimeError(f"one event reached {len(latencies)} of {count} clients in 60 s")
    return max(latencies) * 1e3


@asynccontextmanager
async def server(name: str, options: argparse.Namespace) -> AsyncIterator[tuple[Any, int, Any]]:
    """The server under test, and how to send it one event."""
    if name in PAIRS:
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        try:
            async with eventbridge(options.amqp_url, prefix, options.bridge_env) as (child, port):
                publisher = Publisher(options.amqp_url, prefix)

                async def one() -> None:
                    await publisher.paced(1000, 0.001)  # exactly one event

                yield child, port, one
        finally:
            await delete_prefix(options.amqp_url, prefix)
        return
    async with bare_server(name) as (child, port), httpx.AsyncClient(timeout=60) as http:

        async def trigger() -> None:
            await http.post(f"http://127.0.0.1:{port}/paced", params={"rate": 1, "seconds": 1})

        yield child, port, trigger


async def measure_server(name: str, options: argparse.Namespace) -> Measured:
    """Connect the clients, take the memory, then time one event a few times."""
    async with server(name, options) as (child, port, trigger):
        before = await settled_rss(child.pid)
        kind = {"bare": "bare", "socketio": "sio"}.get(name, name)
        started = time.monotonic()
        processes = max(1, min(8, options.clients // 1000 + 1))
        url = f"http://127.0.0.1:{port}"
        async with clients(url, kind, options.clients, processes) as group:
            measured = Measured(name, options.clients, time.monotonic() - started, before, before)
            measured.rss_after_mb = await settled_rss(child.pid)
            for _ in range(options.rounds):
                measured.reach_ms.append(await reach(group, options.clients, trigger))
                await asyncio.sleep(0.5)
    print(
        f"  {name}: {measured.kib_per_connection:.1f} KiB per connection, one event to all in "
        f"{statistics.median(measured.reach_ms):.0f} ms (median of {options.rounds})",
        file=sys.stderr,
    )
    return measured


def report(results: list[Measured]) -> list[str]:
    """The table and the ratios."""
    lines = [
        "| server | connections | connect s | RSS before → after MiB | KiB per connection "
        "| one event to all, ms (median, max) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.server} | {r.clients:,} | {r.connect_seconds:.1f} | {r.rss_before_mb:.0f} → "
            f"{r.rss_after_mb:.0f} | {r.kib_per_connection:.1f} | "
            f"{statistics.median(r.reach_ms):.0f}, {max(r.reach_ms):.0f} |"
        )
    by_name = {r.server: r for r in results}
    lines.append("")
    for own, base in PAIRS.items():
        if own in by_name and base in by_name:
            mine, theirs = by_name[own], by_name[base]
            ratio = statistics.median(mine.reach_ms) / statistics.median(theirs.reach_ms)
            lines.append(
                f"{own} ÷ {base}: memory per connection "
                f"{mine.kib_per_connection / theirs.kib_per_connection:.2f}, "
                f"one event to all {ratio:.2f}"
            )
    return lines


def main() -> int:
    """Measure every server and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5, help="single events timed per server")
    parser.add_argument("--servers", default="ws,bare,eio,socketio")
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("EVENTBRIDGE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    )
    parser.add_argument("--bridge-env", action="append", default=[], metavar="EVENTBRIDGE_X=V")
    parser.add_argument("--output", type=Path, default=ARTIFACTS / "bench_connections.json")
    options = parser.parse_args()
    options.bridge_env = dict(item.split("=", 1) for item in options.bridge_env)
    options.output.parent.mkdir(exist_ok=True)

    async def run() -> list[Measured]:
        results = []
        for name in options.servers.split(","):
            print(f"… {name}: {options.clients:,} connections", file=sys.stderr)
            results.append(await measure_server(name, options))
        return results

    results = asyncio.run(run())
    for line in report(results):
        print(line)
    payload = [r.__dict__ | {"kib_per_connection": r.kib_per_connection} for r in results]
    options.output.write_text(json.dumps(payload, indent=2))
    print(f"\nwritten: {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
