"""Presence benchmark: N members joining and leaving one project across two replicas — how long
until both replicas' presence agrees, and the CPU each join and leave costs the bridges and the
broker, with presence on and, as the baseline, off.

Two `eventbridge serve` replicas on one prefix; N raw clients (`rawclients`, native WebSocket,
in four processes, half on each replica) join one project. On each replica an observer (a
`websockets` client in this process, in the project too) keeps the member list from the
presence notices. *Converged* is the moment both observers see all N members plus the two
observers; *left* the moment both see only the observers again after the clients closed.

    python -m tests.performance.bench_presence                  # 1,000 members
    python -m tests.performance.bench_presence --members 250

It is not a test (pytest never collects tests/performance) and asserts nothing; it prints a
table and writes it to test-artifacts/bench_presence.json. Figures: tests/performance/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import websockets

from tests.helpers import delete_prefix
from tests.performance.processes import (
    ChildProcess,
    cpu_seconds,
    find_broker_pid,
    free_port,
    http_status,
    wait_for_port,
)

ARTIFACTS = Path("test-artifacts")
PROJECT = "bench-presence"
PROCESSES_PER_REPLICA = 2


@asynccontextmanager
async def replica(amqp_url: str, prefix: str, name: str, presence: bool) -> AsyncIterator[Any]:
    """One `eventbridge serve` replica, anonymous, ready; yields (child, port)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTBRIDGE_")}
    env.update(
        {
            "EVENTBRIDGE_AMQP_URL": amqp_url,
            "EVENTBRIDGE_PREFIX": prefix,
            "EVENTBRIDGE_AUTH": "anonymous",
            "EVENTBRIDGE_PORT": str(port),
            "EVENTBRIDGE_LOG_LEVEL": "warning",
            "EVENTBRIDGE_PRESENCE": "true" if presence else "false",
        }
    )
    argv = [str(Path(sys.executable).parent / "eventbridge"), "serve"]
    log = ARTIFACTS / f"bench_presence-{name}.log"
    async with ChildProcess(name, argv, env=env, log_path=log) as child:
        await wait_for_port(port, child, 60)
        for _ in range(600):
            if await http_status(port, "/ready") == 200:
                break
            await asyncio.sleep(0.1)
        yield child, port


class Observer:
    """A WebSocket client in the project that keeps the member list from presence notices."""

    def __init__(self, connection: websockets.ClientConnection) -> None:
        self.connection = connection
        self.members: set[str] = set()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in self.connection:
                frame = json.loads(text)
                kind = frame.get("type")
                if kind == "presence":
                    self.members = {member["user_id"] for member in frame["members"]}
                elif kind in ("presence_joined", "presence_updated"):
                    self.members.add(frame["member"]["user_id"])
                elif kind == "presence_left":
                    self.members.discard(frame["user_id"])


async def observer(port: int) -> Observer:
    """Connect an observer to a replica and join the project."""
    connection = await websockets.connect(f"ws://127.0.0.1:{port}/ws", compression=None)
    watcher = Observer(connection)
    await connection.send(json.dumps({"type": "subscribe", "project_id": PROJECT}))
    return watcher


async def start_clients(port: int, count: int) -> asyncio.subprocess.Process:
    """One process of `count` raw WebSocket clients joining the project on a replica."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.performance.rawclients",
        "--url",
        f"http://127.0.0.1:{port}",
        "--kind",
        "ws",
        "--count",
        str(count),
        "--room",
        PROJECT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )


async def until(predicate: Any, timeout: float) -> float | None:
    """Seconds until `predicate()` holds (polled every 5 ms), or None after `timeout`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            return None
        await asyncio.sleep(0.005)
    return time.monotonic() - started


def cpu_of(pids: list[int | None]) -> float:
    """CPU seconds the processes used so far, summed."""
    return sum(cpu_seconds(pid) or 0.0 for pid in pids if pid is not None)


async def run(amqp_url: str, members: int, presence: bool) -> dict[str, Any]:
    """One round: two replicas, `members` joining and leaving; the figures."""
    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    try:
        async with AsyncExitStack() as stack:
            a, port_a = await stack.enter_async_context(replica(amqp_url, prefix, "a", presence))
            b, port_b = await stack.enter_async_context(replica(amqp_url, prefix, "b", presence))
            observers = [await observer(port_a), await observer(port_b)]
            if presence:
                await until(lambda: all(len(o.members) == 2 for o in observers), 10)
            bridges = [a.pid, b.pid]
            broker = [find_broker_pid()]
            share = members // (2 * PROCESSES_PER_REPLICA)
            expected = share * 2 * PROCESSES_PER_REPLICA + 2  # with the two observers
            cpu_before, broker_before = cpu_of(bridges), cpu_of(broker)
            started = time.monotonic()
            full = [
                asyncio.create_task(until(lambda o=o: len(o.members) == expected, 120))
                for o in observers
            ]
            children = [
                await start_clients(port, share)
                for port in (port_a, port_b)
                for _ in range(PROCESSES_PER_REPLICA)
            ]
            joined_after = []
            for child in children:
                assert child.stdout is not None
                ready = json.loads(await asyncio.wait_for(child.stdout.readline(), 300))
                joined_after.append(time.monotonic() - started)
                assert ready["ready"] == share, ready
            each: list[float | None] = [None, None]
            if presence:
                each = list(await asyncio.gather(*full))
            else:
                for task in full:
                    task.cancel()
            converged = None if None in each else max(t for t in each if t is not None)
            await asyncio.sleep(1.0)  # let the heartbeats run too; counted in the join cost
            cpu_join = cpu_of(bridges) - cpu_before
            broker_join = cpu_of(broker) - broker_before
            cpu_before, broker_before = cpu_of(bridges), cpu_of(broker)
            for child in children:
                assert child.stdin is not None
                child.stdin.write(b"quit\n")
                await child.stdin.drain()
            for child in children:
                await asyncio.wait_for(child.wait(), 60)
            left = None
            if presence:
                left = await until(lambda: all(len(o.members) == 2 for o in observers), 60)
            await asyncio.sleep(1.0)
            cpu_leave = cpu_of(bridges) - cpu_before
            broker_leave = cpu_of(broker) - broker_before
            for watcher in observers:
                await watcher.connection.close()
                await watcher.reader
            return {
                "load_average_1min": os.getloadavg()[0],
                "presence": presence,
                "members": share * 2 * PROCESSES_PER_REPLICA,
                "clients_joined_s": max(joined_after),
                "converged_s": converged,
                "converged_per_replica_s": each,
                "left_s": left,
                "bridge_cpu_join_s": cpu_join,
                "bridge_cpu_leave_s": cpu_leave,
                "broker_cpu_join_s": broker_join,
                "broker_cpu_leave_s": broker_leave,
            }
    finally:
        await delete_prefix(amqp_url, prefix)


def show(rows: list[dict[str, Any]]) -> None:
    """Print the table."""

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    print(
        f"{'presence':>8} {'members':>7} {'joined s':>8} {'converged s':>11} {'left s':>6} "
        f"{'bridges ms/join':>15} {'bridges ms/leave':>16} {'broker ms/join':>14} {'load':>5}"
    )
    for row in rows:
        n = row["members"]
        print(
            f"{'on' if row['presence'] else 'off':>8} {n:>7} {row['clients_joined_s']:>8.2f} "
            f"{seconds(row['converged_s']):>11} {seconds(row['left_s']):>6} "
            f"{1000 * row['bridge_cpu_join_s'] / n:>15.3f} "
            f"{1000 * row['bridge_cpu_leave_s'] / n:>16.3f} "
            f"{1000 * row['broker_cpu_join_s'] / n:>14.3f} {row['load_average_1min']:>5.1f}"
        )


async def main() -> int:
    """Run presence off (the baseline) and on; print and save the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("EVENTBRIDGE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    )
    parser.add_argument("--output", type=Path, default=ARTIFACTS / "bench_presence.json")
    args = parser.parse_args()
    ARTIFACTS.mkdir(exist_ok=True)  # noqa: ASYNC240 - once, before anything runs
    rows = []
    for presence in (False, True):
        print(f"presence {'on' if presence else 'off'}: {args.members} members ...", flush=True)
        rows.append(await run(args.amqp_url, args.members, presence))
    show(rows)
    args.output.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
