"""What counting for `/metrics` costs the live path: the eventbridge phases of `bench_live`
run with the metrics off and on, in the same run, and the bridge's CPU per event compared.

The counting itself cannot be switched off (it is plain integer increments where things happen,
`bridge.core.tally`): "off" is therefore the bridge as of a git ref without it (`git archive
<ref>`, run from a temporary folder with `PYTHONPATH` pointing there, `EVENTBRIDGE_METRICS=false`),
and "on" is the working tree's bridge with `/metrics` scraped every second while it works
(Prometheus usually scrapes every 15 s). The two alternate for `rounds` rounds, so drift of the
machine's load falls on both alike, and both bridges of a round run with the same string-hash
seed (`PYTHONHASHSEED`, a new one each round), which alone moves CPython's speed by up to 1.5x.
The cost per event is the bridge process's CPU time divided by the events it handled (server
cores * wall seconds / events), the median over rounds.
"""

from __future__ import annotations

import statistics
import subprocess
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any

from tests.performance.context import ROOT, Bench
from tests.performance.phases import run_bridge_phases

OFF, ON = "metrics off", "metrics on"


def export(ref: str, into: Path) -> Path:
    """The project's files as of `ref`, extracted into `into`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


THIS_TREE = "."
"""The ref that names this tree's own bridge with `/metrics` off (`EVENTBRIDGE_METRICS=false`)."""


async def run_metrics_comparison(bench: Bench, ref: str, rounds: int, scrape: float) -> None:
    """Run the eventbridge phases `rounds` times with the metrics off (the bridge of `ref`, or
    this tree's with `/metrics` switched off for `THIS_TREE`) and on (this tree's, scraped every
    `scrape` seconds), alternating."""
    with tempfile.TemporaryDirectory(prefix="eventbridge-metrics-off-") as folder:
        code = ROOT if ref == THIS_TREE else export(ref, Path(folder))
        bench.info["metrics_off_ref"] = ref
        for number in range(rounds):
            # CPython's speed varies with a process's string-hash seed (by up to 1.5x on the
            # delivery path: attribute caches keyed by name hashes), so both bridges of a round
            # get the same seed, and each round a new one.
            seed = {"PYTHONHASHSEED": str(number)}
            source = "this tree, /metrics off" if ref == THIS_TREE else f"the bridge of {ref}"
            print(f"… round {number + 1}/{rounds}: {OFF} ({source})", flush=True)
            off_env = {"PYTHONPATH": str(code), "EVENTBRIDGE_METRICS": "false", **seed}
            await run_bridge_phases(bench, OFF, off_env)
            print(f"… round {number + 1}/{rounds}: {ON} (scraped every {scrape:g} s)", flush=True)
            await run_bridge_phases(bench, ON, seed, scrape=scrape)


def cost_per_event_us(row: dict[str, Any]) -> float | None:
    """The bridge's CPU time per event of a row, in microseconds."""
    server = (row.get("cpu_cores") or {}).get("server")
    if server is None or not row.get("events"):
        return None
    return float(server) * float(row["wall_seconds"]) / int(row["events"]) * 1e6


def comparison(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per measurement: the median CPU µs per event off and on, and on ÷ off."""
    costs: dict[tuple[str, int], dict[str, list[float]]] = {}
    for row in rows:
        variant = row.get("variant")
        cost = cost_per_event_us(row)
        if variant not in (OFF, ON) or cost is None:
            continue
        name = str(row["phase"]).removesuffix(f" [{variant}]")
        costs.setdefault((name, int(row["clients"])), {OFF: [], ON: []})[variant].append(cost)
    result = []
    for (name, clients), by_variant in costs.items():
        if not by_variant[OFF] or not by_variant[ON]:
            continue
        off, on = statistics.median(by_variant[OFF]), statistics.median(by_variant[ON])
        result.append(
            {
                "phase": name,
                "clients": clients,
                "off_us_per_event": off,
                "on_us_per_event": on,
                "on_over_off": on / off,
                "rounds": len(by_variant[OFF]),
            }
        )
    return result


def print_comparison(rows: list[dict[str, Any]]) -> None:
    """Print the comparison table."""
    compared = comparison(rows)
    if not compared:
        return
    print("\n  bridge CPU per event, metrics off → on (median over rounds):")
    for item in compared:
        print(
            f"  {item['phase']}, {item['clients']} client(s): "
            f"{item['off_us_per_event']:.1f} → {item['on_us_per_event']:.1f} µs "
            f"({(item['on_over_off'] - 1) * 100:+.1f} %, {item['rounds']} rounds)"
        )
