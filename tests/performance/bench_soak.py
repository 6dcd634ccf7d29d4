"""Soak benchmark: eventbridge on a 3-node cluster for a long run while nodes restart.

Run `.venv/bin/python -m tests.performance.bench_soak [--minutes 20]` from the project root
(tests/performance/README.md, section "Soak benchmark", says what each figure means). It uses
the private cluster of `scripts/cluster.sh` (started for the run if none runs, stopped after
only if it started it) and, in one run:

1. starts `eventbridge serve` with every node's URL and opens `--clients` raw clients (half
   native WebSocket, half Socket.IO, in four processes), spread over `--projects` project rooms;
2. publishes `--rate` events/s with the SDK (`publish_batch` every 0.1 s, confirms, the node
   list), each carrying its project's sequence number and the time it was sent;
3. restarts one node every `--restart-every` seconds (stop, 10 s down, start), the bridge's own
   node first, then the others in turn;
4. prints one line per minute: deliveries, latency p50/p99/max (publish → receive, every fifth
   client) beside the baseline's (a raw aio-pika consumer of the log, same node list, in this
   process), the bridge's RSS, confirmed events lost, events received twice or out of order,
   and the node restarted in that minute.

At the end publishing stops, the clients drain, and every confirmed event must have reached
every client of its project exactly once, in order (events whose publish was in doubt are
excluded and counted). Writes `test-artifacts/bench_soak.json`; exits 1 if something was lost,
duplicated or reordered, 2 if the run failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.cluster import PrivateCluster
from tests.helpers import delete_prefix
from tests.performance.context import ARTIFACTS
from tests.performance.fanout_phases import Clients, percentile
from tests.performance.processes import (
    ChildProcess,
    free_port,
    rss_mb,
    wait_for_port,
)
from tests.performance.soak_ledger import Ledger, RawConsumer, lost_among

REPORT_EVERY = 5.0
"""Seconds between reports from the client processes."""
CLIENT_PROCESSES = (("ws", 2), ("eio", 2))


@dataclass
class Minute:
    """One minute's figures."""

    minute: int
    deliveries: int = 0
    latencies: list[float] = field(default_factory=list)
    raw_latencies: list[float] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    """`room:seq` skipped by some connection, and by how many (judged once the run ended)."""
    lost: int = 0
    out_of_order: int = 0
    rss_mb: float | None = None
    confirmed: int = 0
    in_doubt: int = 0
    restarted: str = ""

    def row(self) -> dict[str, Any]:
        """The minute as a report row."""
        return {
            "minute": self.minute,
            "deliveries": self.deliveries,
            "p50_ms": _ms(percentile(self.latencies, 0.5)),
            "p99_ms": _ms(percentile(self.latencies, 0.99)),
            "max_ms": _ms(max(self.latencies, default=None)),
            "raw_p50_ms": _ms(percentile(self.raw_latencies, 0.5)),
            "raw_p99_ms": _ms(percentile(self.raw_latencies, 0.99)),
            "rss_mb": self.rss_mb,
            "confirmed": self.confirmed,
            "in_doubt": self.in_doubt,
            "lost": self.lost,
            "out_of_order": self.out_of_order,
            "restarted": self.restarted,
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


async def run_publisher(
    urls: str, prefix: str, ledger: Ledger, rate: float, seconds: float
) -> None:
    """Run `soak_publisher` in its own process, feeding its progress lines to the ledger."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.performance.soak_publisher", "--amqp-url", urls,
        "--prefix", prefix, "--projects", ",".join(ledger.projects), "--rate", str(rate),
        "--seconds", str(seconds), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    try:
        while line := await child.stdout.readline():
            progress = json.loads(line)
            if progress.get("done"):
                break
            ledger.update(progress)
    finally:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
        await child.wait()


async def start_clients(url: str, count: int, projects: list[str]) -> Clients:
    """The raw client processes, every one ready."""
    children = []
    per_process = count // sum(n for _, n in CLIENT_PROCESSES)
    for kind, processes in CLIENT_PROCESSES:
        for _ in range(processes):
            children.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "tests.performance.rawclients", "--url", url,
                    "--kind", kind, "--count", str(per_process), "--room", ",".join(projects),
                    "--sample-every", "5",
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    limit=64 * 1024 * 1024,
                )
            )  # fmt: skip
    for child in children:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 300)
        if not line.startswith(b'{"ready"'):
            raise RuntimeError(f"a client process did not get ready: {line[:200]!r}")
    return Clients(children)


async def node_in_use(port: int, cluster: PrivateCluster) -> int:
    """The number of the node the bridge is connected to (from /health)."""
    async with httpx.AsyncClient() as http:
        node = (await http.get(f"http://127.0.0.1:{port}/health")).json()["services"]["broker"]
    ports = [url.rsplit(":", 1)[1].rstrip("/") for url in cluster.urls]
    return ports.index(str(node["node"]).rsplit(":", 1)[1]) + 1


async def restart_nodes(
    cluster: PrivateCluster, port: int, every: float, until: float, log: list[tuple[float, str]]
) -> None:
    """Restart one node every `every` seconds: the bridge's node first, then the others."""
    started, order = time.monotonic(), list[int]()
    while time.monotonic() + every < until:
        await asyncio.sleep(started + every * (len(log) + 1) - time.monotonic())
        if not order:
            first = await node_in_use(port, cluster)
            order = [first] + [n for n in (1, 2, 3) if n != first]
        node = order[len(log) % 3]
        log.append((time.monotonic(), f"node {node}"))
        print(f"  … stopping node {node} for 10 s", flush=True)
        await cluster.stop_node(node)
        await asyncio.sleep(10)
        await cluster.start_node(node)
        print(f"  … restarted node {node}", flush=True)


async def run(options: argparse.Namespace) -> int:
    """The whole soak; the exit code."""
    for noisy in ("aiormq", "aio_pika"):  # the baseline consumer's reconnects are expected
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    cluster = PrivateCluster.from_environment()
    started_cluster = not await cluster.is_running()
    if started_cluster:
        print("… starting the private 3-node cluster", flush=True)
        await cluster.start()
    prefix = f"soak-{uuid.uuid4().hex[:8]}"
    projects = [f"soak-{n}" for n in range(options.projects)]
    urls = ",".join(cluster.urls)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTBRIDGE_")}
    env.update({
        "EVENTBRIDGE_AMQP_URL": urls, "EVENTBRIDGE_PREFIX": prefix, "EVENTBRIDGE_PORT": str(port),
        "EVENTBRIDGE_AUTH": "anonymous", "EVENTBRIDGE_LOG_LEVEL": "info",
        "EVENTBRIDGE_STARTUP_TIMEOUT": "60",
    })  # fmt: skip
    argv = [str(Path(sys.executable).parent / "eventbridge"), "serve"]
    ledger = Ledger(projects)
    minutes: list[Minute] = []
    try:
        async with ChildProcess(
            "eventbridge", argv, env=env, log_path=ARTIFACTS / "bench_soak-eventbridge.log"
        ) as bridge:
            await wait_for_port(port, bridge, 60)
            group = await start_clients(f"http://127.0.0.1:{port}", options.clients, projects)
            try:
                await group.command("record")
                print(
                    f"bench_soak: {options.clients} clients over {len(projects)} projects, "
                    f"{options.rate:g} events/s for {options.minutes:g} min, a node restarted "
                    f"every {options.restart_every:g} s; prefix {prefix}",
                    flush=True,
                )
                await soak(
                    options,
                    cluster,
                    prefix=prefix,
                    bridge=(bridge.pid, port),
                    group=group,
                    ledger=ledger,
                    minutes=minutes,
                )
                final = await drain(group, ledger)
            finally:
                await group.command("quit")
                for child in group.processes:
                    await asyncio.wait_for(child.wait(), 30)
    finally:
        await delete_prefix(cluster.urls[0], prefix)
        if started_cluster:
            await cluster.stop()
    return report(options, ledger, minutes, final)


async def soak(
    options: argparse.Namespace,
    cluster: PrivateCluster,
    *,
    prefix: str,
    bridge: tuple[int | None, int],
    group: Clients,
    ledger: Ledger,
    minutes: list[Minute],
) -> None:
    """Publish, restart nodes and collect per-minute figures for the run's length."""
    pid, port = bridge
    begin = time.monotonic()
    until = begin + options.minutes * 60
    restarts: list[tuple[float, str]] = []
    raw = RawConsumer(cluster.urls, f"{prefix}.log")
    consuming = asyncio.create_task(raw.run())
    publishing = asyncio.create_task(
        run_publisher(",".join(cluster.urls), prefix, ledger, options.rate, until - begin)
    )
    restarting = asyncio.create_task(
        restart_nodes(cluster, port, options.restart_every, until, restarts)
    )
    minute = Minute(1)
    while True:
        await asyncio.sleep(REPORT_EVERY)
        collect(minute, await group.command("report"))
        minute.raw_latencies.extend(raw.take())
        ended = publishing.done()
        if time.monotonic() - begin >= minute.minute * 60 or ended:
            minute.rss_mb = rss_mb(pid)
            minute.confirmed, minute.in_doubt = ledger.confirmed_count, ledger.in_doubt_count
            start = begin + (minute.minute - 1) * 60
            minute.restarted = ", ".join(what for at, what in restarts if start <= at < start + 60)
            minutes.append(minute)
            print(format_minute(minute.row()), flush=True)
            minute = Minute(minute.minute + 1)
        if ended:
            break
    await asyncio.gather(publishing, restarting)
    consuming.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await consuming


def collect(minute: Minute, reports: list[dict[str, Any]]) -> None:
    """Add the client processes' reports to the minute."""
    for report in reports:
        minute.deliveries += report["count"]
        minute.latencies.extend(report["latencies"])
        minute.out_of_order += report["order_errors"]
        for key, connections in report["skipped"].items():
            minute.skipped[key] = minute.skipped.get(key, 0) + connections


def format_minute(row: dict[str, Any]) -> str:
    """One minute as a progress line."""
    return (
        f"  min {row['minute']:>2}: {row['deliveries']:>8,} deliveries, p50 {row['p50_ms']} ms, "
        f"p99 {row['p99_ms']} ms, max {row['max_ms']} ms (raw consumer p50 {row['raw_p50_ms']}, "
        f"p99 {row['raw_p99_ms']} ms), RSS {row['rss_mb'] or 0:.0f} MiB, "
        f"lost {row['lost']}, out of order {row['out_of_order']}"
        + (f", restarted {row['restarted']}" if row["restarted"] else "")
    )


async def drain(group: Clients, ledger: Ledger) -> dict[str, Any]:
    """Wait until the clients stop receiving; the final per-project check."""
    quiet_since, lost, out_of_order = time.monotonic(), 0, 0
    totals: dict[str, list[int]] = {}
    while time.monotonic() - quiet_since < 10:
        await asyncio.sleep(1)
        reports = await group.command("report")
        if any(report["count"] for report in reports):
            quiet_since = time.monotonic()
        for report in reports:
            lost += lost_among(report["skipped"], ledger)
            out_of_order += report["order_errors"]
        totals = {}
        for report in reports:
            for room, (low, high) in report["total_by_room"].items():
                both = totals.setdefault(room, [low, high])
                both[0], both[1] = min(both[0], low), max(both[1], high)
    # A client must hold every confirmed event of its project; in-doubt ones may or may not
    # have arrived. Fewer than the confirmed count is a loss even without a skipped seq (a tail).
    short = 0
    for room, (low, high) in totals.items():
        confirmed, in_doubt = ledger.confirmed_in(room), len(ledger.in_doubt[room])
        short += max(0, confirmed - low)
        if high > confirmed + in_doubt:
            out_of_order += high - confirmed - in_doubt
    return {"lost_at_end": lost, "short_at_end": short, "out_of_order_at_end": out_of_order}


def report(
    options: argparse.Namespace, ledger: Ledger, minutes: list[Minute], final: dict[str, Any]
) -> int:
    """Print the summary, write the JSON file, return the exit code."""
    for minute in minutes:
        minute.lost = lost_among(minute.skipped, ledger)
    rows = [minute.row() for minute in minutes]
    if any(row["lost"] for row in rows):
        print("lost per minute: " + ", ".join(f"{row['minute']}: {row['lost']}" for row in rows))
    lost = sum(row["lost"] for row in rows) + final["lost_at_end"] + final["short_at_end"]
    twice = sum(row["out_of_order"] for row in rows) + final["out_of_order_at_end"]
    print(
        f"bench_soak: {ledger.confirmed_count:,} events confirmed, {ledger.in_doubt_count} in "
        f"doubt (publish raised: {len(ledger.errors)} batches); lost {lost}, received twice or "
        f"out of order {twice}",
        flush=True,
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "bench_soak.json").write_text(
        json.dumps(
            {"options": vars(options), "minutes": rows, "final": final, "errors": ledger.errors},
            indent=1,
        ),
        encoding="utf-8",
    )
    return 1 if lost or twice else 0


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=300.0, help="events per second")
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--projects", type=int, default=10, help="rooms the clients spread over")
    parser.add_argument("--restart-every", type=float, default=240.0, help="seconds")
    options = parser.parse_args(argv)
    try:
        return asyncio.run(run(options))
    except KeyboardInterrupt:
        return 2
    except Exception as exc:  # noqa: BLE001 - the benchmark's last word on a failed run
        print(f"bench_soak: the run failed: {exc!r}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
