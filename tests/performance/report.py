"""Reporting a run: the table, the ratios to the baselines, loss, and the JSON document."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.performance.context import DISTURBED_CORES, ROOT, Bench
from tests.performance.receivers import Check


def _find(rows: list[dict[str, Any]], kind: str, **match: Any) -> dict[str, Any] | None:
    for row in rows:
        if row.get("kind") == kind and all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def ratios_by_round(bench: Bench) -> dict[str, list[float]]:
    """eventbridge figures divided by the baselines of the same round (`--rounds`), one value
    per round; baseline B, measured once, serves every round."""
    result: dict[str, list[float]] = {}
    emit_many = _find(bench.rows, "baseline-b", clients=bench.options.clients)
    emit_one = _find(bench.rows, "baseline-b", clients=1)
    for number in sorted({row.get("round", 0) for row in bench.rows}):
        rows = [row for row in bench.rows if row.get("round", 0) == number]
        consume = _find(rows, "baseline-a-consume")
        publish = _find(rows, "baseline-a-publish")
        for row in rows:
            if row.get("kind") not in ("burst", "drain"):
                continue
            label = f"{row['phase']}, {row['clients']} client(s)"
            if consume is not None:
                result.setdefault(f"{label}: events/s ÷ aio-pika consume", []).append(
                    row["events_per_s"] / consume["events_per_s"]
                )
            baseline = emit_many if row["clients"] == bench.options.clients else emit_one
            if baseline is not None and row["socketio_clients"] == row["clients"]:
                result.setdefault(f"{label}: deliveries/s ÷ python-socketio emit", []).append(
                    row["deliveries_per_s"] / baseline["deliveries_per_s"]
                )
            if publish is not None and row.get("publish_rate") is not None:
                result.setdefault(f"{label}: SDK publish_batch rate ÷ aio-pika publish", []).append(
                    row["publish_rate"] / publish["events_per_s"]
                )
    return result


def ratios(bench: Bench) -> dict[str, float]:
    """eventbridge figures divided by the baselines of the same run: the median over the
    rounds when there were several."""
    return {label: statistics.median(values) for label, values in ratios_by_round(bench).items()}


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _cpu(cores: dict[str, float | None] | None) -> str:
    if not cores:
        return "-"
    return "/".join(_number(cores.get(name), 2) for name in ("bench", "server", "broker", "other"))


def table(bench: Bench) -> str:
    """The results as a fixed-width text table (Markdown-compatible)."""
    header = (
        "phase",
        "clients",
        "events",
        "wall s",
        "events/s",
        "deliveries/s",
        "p50 ms",
        "p99 ms",
        "CPU cores bench/server/broker/other",
        "check",
    )
    lines: list[tuple[str, ...]] = [header]
    for row in bench.rows:
        latency = (row.get("latency_ms") or {}).get("all") or {}
        result: Check | None = row.get("check")
        several = bench.options.rounds > 1
        lines.append(
            (
                f"{row['phase']} (round {row.get('round', 0) + 1})" if several else row["phase"],
                "-" if row.get("clients") is None else str(row["clients"]),
                str(row["events"]),
                _number(row["wall_seconds"], 2),
                _number(row["events_per_s"]),
                _number(row.get("deliveries_per_s")),
                _number(latency.get("p50"), 1),
                _number(latency.get("p99"), 1),
                _cpu(row.get("cpu_cores")),
                "-" if result is None else result.summary(),
            )
        )
        for transport in ("socketio", "websocket"):
            part = (row.get("latency_ms") or {}).get(transport)
            if part and row.get("socketio_clients") and row.get("websocket_clients"):
                p50, p99 = _number(part["p50"], 1), _number(part["p99"], 1)
                count = str(row[f"{transport}_clients"])
                blank = ("", "", "", "")
                lines.append((f"  of which {transport}", count, *blank, p50, p99, "", ""))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append("| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
        out[-1] += " |"
        if index == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def markdown_table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """Cells as a fixed-width text table that is also valid Markdown."""
    rows = [tuple(header), *(tuple(line) for line in lines)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    out = []
    for index, row in enumerate(rows):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if index == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def losses(bench: Bench) -> list[str]:
    """One line per phase whose clients did not all get every event, once, in order."""
    return [
        f"{row['phase']} ({row['clients']} clients): {row['check'].summary()}"
        for row in bench.rows
        if isinstance(row.get("check"), Check) and not row["check"].ok
    ]


def git_state() -> dict[str, Any]:
    """The commit measured and whether the service's code differed from it (read-only git)."""
    state: dict[str, Any] = {}
    commands = {
        "commit": ["git", "rev-parse", "HEAD"],
        "modified": ["git", "status", "--porcelain", "--", "bridge", "producers", "schemas"],
    }
    for key, command in commands.items():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(
                command, cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
            )
            state[key] = done.stdout.strip() if key == "commit" else done.stdout.splitlines()
    return state


def environment() -> dict[str, Any]:
    """The machine and the versions this run measured."""
    versions = {}
    for name in ("aio-pika", "python-socketio", "python-engineio", "uvicorn", "websockets"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "git": git_state(),
        "cores": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
    }


def write_json(bench: Bench, error: str | None) -> Path:
    """Write the whole run to the output JSON file and return its path."""
    rows = []
    for row in bench.rows:
        item = dict(row)
        if isinstance(item.get("check"), Check):
            item["check"] = {**asdict(item["check"]), "ok": item["check"].ok}
        rows.append(item)
    document = {
        "started_at": bench.info.get("started_at"),
        "prefix": bench.prefix,
        "options": {**asdict(bench.options), "output": str(bench.options.output)},
        "environment": environment(),
        "results": rows,
        "ratios": ratios(bench),
        "ratios_by_round": ratios_by_round(bench),
        "losses": losses(bench),
        "info": {k: v for k, v in bench.info.items() if k != "started_at"},
        "error": error,
    }
    bench.options.output.parent.mkdir(parents=True, exist_ok=True)
    bench.options.output.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return bench.options.output


def _last_rss(bench: Bench) -> float | None:
    values = [row["server_rss_mb"] for row in bench.rows if row.get("server_rss_mb") is not None]
    return values[-1] if values else None


def report(bench: Bench, error: str | None) -> int:
    """Print the table, the ratios and any loss; write the JSON; return the exit code."""
    print()
    print(table(bench))
    print()
    for label, values in ratios_by_round(bench).items():
        if len(values) == 1:
            print(f"  {label}: {values[0]:.2f}")
        else:
            each = " / ".join(f"{value:.2f}" for value in values)
            print(f"  {label}: median {statistics.median(values):.2f} of {len(values)} ({each})")
    disturbed = [
        row["phase"]
        for row in bench.rows
        if ((row.get("cpu_cores") or {}).get("other") or 0.0) > DISTURBED_CORES
    ]
    if disturbed:
        print(
            f"\n  WARNING: other processes used more than {DISTURBED_CORES} cores during "
            f"{len(disturbed)} measurement(s) (column 'other'): those figures are disturbed"
        )
    memory = [
        (label, bench.info.get(key))
        for label, key in (
            ("at start", "server_rss_mb_at_start"),
            ("after prefill", "server_rss_mb_after_prefill"),
        )
    ] + [("at the end", _last_rss(bench))]
    shown = [f"{label} {value:.0f} MiB" for label, value in memory if value is not None]
    if shown:
        print(f"\n  eventbridge resident memory: {', '.join(shown)}")
    slow = bench.info.get("bridge_slow_consumer_disconnects")
    if slow:
        print(f"\n  the bridge disconnected {slow} client(s) as slow consumers (see its log)")
    lost = losses(bench)
    if lost:
        banner = "!" * 78
        print(f"\n{banner}\nEVENTS LOST, DUPLICATED, REORDERED OR CLIENTS DISCONNECTED:")
        for line in lost:
            print(f"  {line}")
        print(banner)
    if error is not None:
        print(f"\nTHE BENCHMARK FAILED: {error}", file=sys.stderr)
    path = write_json(bench, error)
    print(f"\nwritten: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    if error is not None:
        return 2
    return 1 if lost else 0
