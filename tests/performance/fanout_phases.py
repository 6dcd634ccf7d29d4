"""The fan-out benchmark's parts: raw client processes, the publisher, one measured phase, and
the servers under test (eventbridge and the bare baselines) as child processes.

`bench_fanout` puts them together; see its docstring for what is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx

from tests.performance.processes import (
    ChildProcess,
    CpuMeter,
    find_broker_pid,
    free_port,
    wait_for_port,
)

ARTIFACTS = Path("test-artifacts")
PROJECT = "p1"
REPORT_LIMIT = 1 << 28
"""Longest report line a client process may print (its latencies, as JSON)."""


@dataclass
class Result:
    """One measurement."""

    server: str
    phase: str
    clients: int
    events: int
    seconds: float
    deliveries_per_second: float
    server_us_per_delivery: float | None
    cpu: dict[str, float | None]
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    complete: bool = True
    notes: list[str] = field(default_factory=list)
    broker_p50_ms: float | None = None
    broker_p99_ms: float | None = None
    """eventbridge's paced phases: the same events' publish → consume latency at a raw
    consumer of the broker (`brokerfloor`)."""


class Clients:
    """The client processes of one server, and their commands."""

    def __init__(self, processes: list[asyncio.subprocess.Process]) -> None:
        self.processes = processes

    @property
    def pids(self) -> list[int]:
        """Every client process's id."""
        return [process.pid for process in self.processes]

    async def command(self, line: str) -> list[dict[str, Any]]:
        """Send a command to every process; for `report`, their answers."""
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write(f"{line}\n".encode())
            await process.stdin.drain()
        if line != "report":
            return []
        answers = []
        for process in self.processes:
            assert process.stdout is not None
            answers.append(json.loads(await asyncio.wait_for(process.stdout.readline(), 60)))
        return answers


@asynccontextmanager
async def clients(url: str, kind: str, count: int, processes: int) -> AsyncIterator[Clients]:
    """`count` raw clients of `kind` on `url`, spread over `processes` processes, joined."""
    children = []
    share = [count // processes + (1 if n < count % processes else 0) for n in range(processes)]
    try:
        for each in share:
            children.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "tests.performance.rawclients",
                    "--url",
                    url,
                    "--kind",
                    kind,
                    "--count",
                    str(each),
                    "--room",
                    PROJECT,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    limit=REPORT_LIMIT,
                )
            )
        for child in children:
            assert child.stdout is not None
            line = await asyncio.wait_for(child.stdout.readline(), 300)
            if not line.startswith(b'{"ready"'):
                raise RuntimeError(f"a client process did not get ready: {line[:200]!r}")
        yield Clients(children)
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                # Bounded: a reader paused on unread output would never see the pipe close.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(child.wait(), 10)


async def wait_delivered(group: Clients, expected: int, idle: float) -> list[dict[str, Any]]:
    """Collect reports until `expected` deliveries arrived in all, or none came for `idle` s."""
    total, reports, quiet_since = 0, [], time.monotonic()
    while total < expected and time.monotonic() - quiet_since < idle:
        await asyncio.sleep(0.2)
        batch = await group.command("report")
        got = sum(report["count"] for report in batch)
        if got:
            quiet_since = time.monotonic()
        total += got
        reports.extend(batch)
    return reports


def summarize(reports: list[dict[str, Any]], expected: int) -> tuple[int, float, list[float], int]:
    """Deliveries, last arrival, latencies (s), order errors over a phase's reports."""
    count = sum(report["count"] for report in reports)
    last = max((report["last_arrival"] for report in reports), default=0.0)
    latencies = [latency for report in reports for latency in report["latencies"]]
    errors = sum(report["order_errors"] for report in reports)
    del expected
    return count, last, latencies, errors


def percentile(values: list[float], share: float) -> float | None:
    """The `share` quantile of `values` (None if empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Publisher:
    """Publishes the benchmark's events to eventbridge's exchange with pipelined confirms."""

    def __init__(self, amqp_url: str, prefix: str) -> None:
        self._url, self._prefix = amqp_url, prefix
        self._seq = 0

    def _message(self) -> aio_pika.Message:
        self._seq += 1
        body = {
            "id": uuid.uuid4().hex,
            "type": "progress_update",
            "schema_version": 1,
            "project_id": PROJECT,
            "source": "bench",
            "occurred_at": "2026-12-06T12:00:00.000Z",
            "data": {
                "agent_id": "agent-1", "progress": 0.5, "seq": self._seq, "sent_at": time.time()
            },
        }  # fmt: skip
        return aio_pika.Message(
            json.dumps(body, separators=(",", ":")).encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )

    async def burst(self, count: int) -> None:
        """Publish `count` events, 256 confirms in flight."""
        async with await aio_pika.connect(self._url) as connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(f"{self._prefix}.events")
            key = f"project.{PROJECT}.progress_update"
            pending: set[asyncio.Task[Any]] = set()
            for _ in range(count):
                if len(pending) >= 256:
                    _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                pending.add(asyncio.ensure_future(exchange.publish(self._message(), key)))
            await asyncio.gather(*pending)

    async def paced(self, rate: float, seconds: float) -> None:
        """Publish `rate` events per second for `seconds` (each stamped when sent)."""
        async with await aio_pika.connect(self._url) as connection:
            channel = await connection.channel(publisher_confirms=False)
            exchange = await channel.get_exchange(f"{self._prefix}.events")
            key = f"project.{PROJECT}.progress_update"
            started = time.monotonic()
            for n in range(int(rate * seconds)):
                delay = started + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await exchange.publish(self._message(), key)


async def gc_buckets(port: int | None) -> dict[float, int]:
    """eventbridge's garbage-collection pauses so far, from /metrics: how many took at most
    each bucket's bound (seconds), all generations together. Empty for a bare server."""
    if port is None:
        return {}
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    buckets: dict[float, int] = {}
    for line in text.splitlines():
        if line.startswith("eventbridge_gc_pause_seconds_bucket"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            le = float("inf") if bound == "+Inf" else float(bound)
            buckets[le] = buckets.get(le, 0) + int(float(line.split()[-1]))
    return buckets


def gc_note(before: dict[float, int], after: dict[float, int]) -> str:
    """The longest collection during a phase, as the bucket it fell in."""
    if not after:
        return ""
    bounds = sorted(after)
    added = {le: after[le] - before.get(le, 0) for le in bounds}
    longest = next((le for le in bounds if added[le] == added[bounds[-1]]), bounds[-1])
    over = added[bounds[-1]] - added.get(0.02, 0)
    text = f"gc ≤ {longest * 1e3:g} ms" if longest != float("inf") else "gc > 250 ms"
    return text + (f", {over} over 20 ms" if over else "")


async def measure(
    name: str,
    phase: str,
    group: Clients,
    *,
    server_pid: int | None,
    count: int,
    events: int,
    trigger: Any,
    idle: float,
    prepare: Any = None,
    metrics_port: int | None = None,
) -> Result:
    """Run one phase: prepare (eventbridge's burst: publish while it is stopped), clear the
    clients, start the meter, trigger, wait for every delivery."""
    gc_before = await gc_buckets(metrics_port)
    if prepare is not None:
        await prepare()
    await group.command("report")  # clear
    if phase != "burst":
        await group.command("record")
    watched: dict[str, int | None] = {
        "server": server_pid,
        "broker": find_broker_pid(),
        "bench": os.getpid(),  # eventbridge's publisher; the bare servers' trigger
    }
    watched.update({f"client{n}": pid for n, pid in enumerate(group.pids)})
    meter = CpuMeter(watched)
    meter.start()
    started = time.time()
    print(f"  … {name} {phase}: {events} events to {count} clients", file=sys.stderr)
    await trigger()
    reports = await wait_delivered(group, count * events, idle)
    cpu = meter.stop()
    gc_after = await gc_buckets(metrics_port)
    delivered, last, latencies, errors = summarize(reports, count * events)
    seconds = max(last - started, 1e-9)
    server = cpu.get("server")
    per = None if server is None or not delivered else server * seconds / delivered * 1e6
    clients_cpu = sum(v or 0.0 for k, v in cpu.items() if k.startswith("client"))
    result = Result(
        name, phase, count, events, seconds, delivered / seconds, per,
        {"server": server, "clients": clients_cpu, "broker": cpu.get("broker"),
         "bench": cpu.get("bench"), "other": cpu.get("other")},
        complete=delivered == count * events and errors == 0,
    )  # fmt: skip
    if latencies:
        result.p50_ms = (statistics.median(latencies)) * 1e3
        result.p99_ms = (percentile(latencies, 0.99) or 0.0) * 1e3
        result.max_ms = max(latencies) * 1e3
    if gc_after:
        result.notes.append(gc_note(gc_before, gc_after))
    if errors:
        result.notes.append(f"{errors} out of order")
    if delivered != count * events:
        result.notes.append(f"{count * events - delivered} missing")
    return result


@asynccontextmanager
async def eventbridge(amqp_url: str, prefix: str, env: dict[str, str]) -> AsyncIterator[Any]:
    """`eventbridge serve` with the benchmark's prefix, anonymous, on a free port."""
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTBRIDGE_")}
    child_env.update(
        {
            "EVENTBRIDGE_AMQP_URL": amqp_url,
            "EVENTBRIDGE_PREFIX": prefix,
            "EVENTBRIDGE_AUTH": "anonymous",
            "EVENTBRIDGE_PORT": str(port),
            "EVENTBRIDGE_LOG_LEVEL": "warning",
            **env,
        }
    )
    argv = [str(Path(sys.executable).parent / "eventbridge"), "serve"]
    async with ChildProcess(
        "eventbridge", argv, env=child_env, log_path=ARTIFACTS / "bench_fanout-eventbridge.log"
    ) as child:
        await wait_for_port(port, child, 60)
        async with httpx.AsyncClient() as http:
            for _ in range(600):
                if (await http.get(f"http://127.0.0.1:{port}/ready")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
        yield child, port


@asynccontextmanager
async def bare_server(kind: str) -> AsyncIterator[Any]:
    """One of `bareservers`, on a free port."""
    port = free_port()
    argv = [sys.executable, "-m", "tests.performance.bareservers", kind, "--port", str(port)]
    async with ChildProcess(
        kind, argv, env=dict(os.environ), log_path=ARTIFACTS / f"bench_fanout-{kind}.log"
    ) as child:
        await wait_for_port(port, child, 60)
        yield child, port
