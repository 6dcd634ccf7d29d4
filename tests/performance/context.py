"""What one benchmark run is: its options, its state, and keeping noise out of its figures."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.performance.processes import CpuMeter, find_broker_pid

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DISTURBED_CORES = 0.2
"""Cores used by other processes above which a measurement is flagged as disturbed."""


@dataclass(frozen=True)
class Options:
    """What to run; see `parse_args` for each option's meaning."""

    events: int
    clients: int
    paced_seconds: float
    paced_rate: float
    paced_rate_many: float
    stall: float
    server_loop: str
    amqp_url: str
    bridge_env: dict[str, str]
    output: Path
    quick: bool
    only: tuple[str, ...] = ()
    wait_quiet: float = 0.0
    prefill: int = 0
    metrics_off_ref: str | None = None
    metrics_rounds: int = 2
    scrape_interval: float = 0.0
    rounds: int = 1

    def selected(self, label: str) -> bool:
        """Whether a measurement (by its label) is to run: all unless `--only` narrows them."""
        return not self.only or any(part.lower() in label.lower() for part in self.only)


@dataclass
class Bench:
    """The state of one run: its prefix, processes, and results so far."""

    options: Options
    prefix: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:10]}")
    broker_pid: int | None = field(default_factory=find_broker_pid)
    rows: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    round: int = 0
    """The round being measured (`--rounds`), from 0."""

    def baseline_queue_of(self, number: int) -> str:
        """The stream queue of baseline A in round `number` (a fresh one each round)."""
        return f"{self.prefix}.baseline-a" + (f"-{number}" if number else "")

    @property
    def baseline_queue(self) -> str:
        """The stream queue of baseline A in this round."""
        return self.baseline_queue_of(self.round)

    @property
    def baseline_queues(self) -> list[str]:
        """The stream queues of baseline A of every round so far."""
        return [self.baseline_queue_of(number) for number in range(self.round + 1)]

    def pids(self) -> dict[str, int | None]:
        """The processes whose CPU is accounted besides the server under test."""
        return {"bench": os.getpid(), "broker": self.broker_pid}


# -- keeping the load generator out of the way -------------------------------------------------


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Collect, then keep the benchmark's own garbage collector off while measuring.

    The clients record hundreds of thousands of arrivals; a full collection over them pauses
    the load generator for 100-200 ms, which would show up as the server's stall.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def settle(bench: Bench, server: int | None = None) -> None:
    """Before a measurement, wait (up to `--wait-quiet` seconds) for other processes to go quiet.

    Other processes are everything but this benchmark, the broker and the server under test;
    quiet means they used under `DISTURBED_CORES` cores over the last second.
    """
    await wait_quiet(bench.options.wait_quiet, {**bench.pids(), "server": server})


async def wait_quiet(seconds: float, pids: Mapping[str, int | None]) -> None:
    """Wait up to `seconds` until processes other than `pids` used under `DISTURBED_CORES`
    cores over the last second (no wait at all when `seconds` is 0)."""
    await wait_below(
        pids, "other", DISTURBED_CORES, seconds, "waiting for other processes to go quiet"
    )


async def wait_below(
    pids: Mapping[str, int | None], name: str, cores: float, seconds: float, waiting: str
) -> None:
    """Wait up to `seconds` until `name` (one of `pids`, or `other`: the rest of the machine)
    used under `cores` over the last second; say `waiting` each second it did not."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        meter = CpuMeter(pids)
        meter.start()
        await asyncio.sleep(1.0)
        used = meter.stop().get(name)
        if used is None or used < cores:
            return
        print(f"  {waiting} ({used:.2f} cores)", flush=True)


def bridge_setting(text: str) -> tuple[str, str]:
    """Parse a `--bridge-env EVENTBRIDGE_NAME=value` option."""
    key, sep, value = text.partition("=")
    if not sep or not key.startswith("EVENTBRIDGE_"):
        raise argparse.ArgumentTypeError("use EVENTBRIDGE_NAME=value")
    return key, value


def add_common_options(parser: argparse.ArgumentParser, name: str) -> None:
    """--bridge-env, --amqp-url and --output (default test-artifacts/`name`.json)."""
    parser.add_argument(
        "--bridge-env",
        type=bridge_setting,
        action="append",
        default=[],
        metavar="EVENTBRIDGE_NAME=VALUE",
        help="extra setting for the bridge under test (repeatable)",
    )
    parser.add_argument(
        "--amqp-url", default=os.environ.get("EVENTBRIDGE_AMQP_URL", DEFAULT_AMQP_URL)
    )
    parser.add_argument("--output", type=Path, default=ARTIFACTS / f"{name}.json")
