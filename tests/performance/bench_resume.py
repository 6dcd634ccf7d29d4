"""Benchmark of eventbridge's offline delivery: resume by offset, and restarts with a warm start.

Run `.venv/bin/python -m tests.performance.bench_resume [--quick]` from the project root
(tests/performance/README.md, section "Offline delivery benchmark", says what each figure means).
In one run, with `eventbridge serve` as child processes, it measures:

1. catch-up from memory: a bridge whose history buffers hold every event written (default
   `history_max_events`, 100,000) serves a client that joins with `since` = N events of its
   project back, over native WebSocket and over Socket.IO;
2. catch-up from the stream: the same resumes served by a second bridge on the same log with
   `EVENTBRIDGE_HISTORY_MAX_EVENTS=100`, so each one is read from the log, with the project's
   events alone and interleaved 1:1 and 1:9 with other projects' events (a log read scans them
   all); the baseline is raw aio-pika reading the same records (prefetch 1000, ack multiple);
3. time to ready after a restart against the log's size (e.g. 0 to 200k records): the default
   warm start (`warm_start_events` 100,000) against `EVENTBRIDGE_WARM_START_EVENTS=0` started
   on the same log in the same run, plus the bridge's RSS once ready.

Every resuming client must get exactly the N missed events, in order, and no resync notice. It
prints two tables and the ratios, writes `test-artifacts/bench_resume.json`, and exits 1 if a
check failed, 2 if the run failed, 0 otherwise. Broker objects and child processes are removed
at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, get_args

import uvloop

from schemas import utc_now
from tests.helpers import delete_prefix
from tests.performance.context import (
    ARTIFACTS,
    DEFAULT_AMQP_URL,
    DISTURBED_CORES,
    ROOT,
    wait_quiet,
)
from tests.performance.processes import (
    broker_version,
    find_broker_pid,
    rss_mb,
)
from tests.performance.quiet_phase import QUIET_PROJECT, quiet_resume
from tests.performance.report import environment, markdown_table
from tests.performance.resume_phases import (
    LogFiller,
    ResumeCheck,
    Transport,
    catch_up,
    fill_segment,
    log_position,
    raw_read,
    raw_window_read,
    running_bridge,
    spread,
    time_to_ready,
)

BRIDGE_DEFAULT_HISTORY = 100_000
BRIDGE_DEFAULT_CATCHUP_LIMIT = 10_000
BRIDGE_DEFAULT_RECORD_LIMIT = 50_000
STREAM_HISTORY = 100
"""History budget of the bridge whose resumes must be read from the log."""


@dataclass(frozen=True)
class ResumeOptions:
    """What to run; see `parse_args` for each option's meaning."""

    events: int
    interleaves: tuple[int, ...]
    repeats: int
    sizes: tuple[int, ...]
    stall: float
    amqp_url: str
    output: Path
    quick: bool
    skip_catch_up: bool = False
    skip_restart: bool = False
    wait_quiet: float = 0.0


@dataclass
class ResumeBench:
    """The state of one run: its prefixes, and its results so far."""

    options: ResumeOptions
    prefix: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:10]}")
    broker_pid: int | None = field(default_factory=find_broker_pid)
    rows: list[dict[str, Any]] = field(default_factory=list)
    restarts: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def restart_prefix(self) -> str:
        """The prefix of the log the restarts are measured on (its own, so it holds only the
        records filled for them)."""
        return f"{self.prefix}-restart"

    def pids(self) -> dict[str, int | None]:
        """The processes accounted besides the bridge under test."""
        return {"bench": os.getpid(), "broker": self.broker_pid}


def log_dir() -> Path:
    """Where the bridges' logs of this run go."""
    path = ARTIFACTS / "bench_resume-logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- 1 and 2: catch-up from memory and from the stream -----------------------------------------


async def run_catch_ups(bench: ResumeBench) -> None:
    """Start the memory and the stream bridge on one log; per interleave append a segment
    (bridges paused meanwhile), read it raw, then time the resumes of each source and transport."""
    options = bench.options
    n = options.events
    written = n * sum(1 + others for others in options.interleaves)
    limit = max(BRIDGE_DEFAULT_CATCHUP_LIMIT, n)
    # A resume reads at most its segment's records (and the markers of the segment files it
    # crosses); the default bound (50,000) would refuse the largest ones as too_many.
    records = str(max(BRIDGE_DEFAULT_RECORD_LIMIT, n * (1 + max(options.interleaves)) + 1000))
    memory_settings = {
        "EVENTBRIDGE_CATCHUP_MAX_EVENTS": str(limit),
        "EVENTBRIDGE_CATCHUP_MAX_RECORDS": records,
    }
    if written > BRIDGE_DEFAULT_HISTORY:
        # Every event written must still be in memory when the first segment is resumed.
        memory_settings["EVENTBRIDGE_HISTORY_MAX_EVENTS"] = str(written + 1000)
    stream_settings = {
        "EVENTBRIDGE_CATCHUP_MAX_EVENTS": str(limit),
        "EVENTBRIDGE_CATCHUP_MAX_RECORDS": records,
        "EVENTBRIDGE_HISTORY_MAX_EVENTS": str(STREAM_HISTORY),
    }
    memory_history = int(
        memory_settings.get("EVENTBRIDGE_HISTORY_MAX_EVENTS", BRIDGE_DEFAULT_HISTORY)
    )
    bench.info["catch_up"] = {
        "events_per_resume": n,
        "events_written": written,
        "memory_bridge_settings": memory_settings,
        "stream_bridge_settings": stream_settings,
        "memory_history_max_events": memory_history,
        "fills": [],
    }
    logs = log_dir()
    url, prefix = options.amqp_url, bench.prefix
    print(
        f"… starting two bridges on {prefix}.log: history {memory_history:,} events "
        f"(for {written:,} written) and {STREAM_HISTORY}"
    )
    async with (
        running_bridge("memory", url, prefix, memory_settings, logs / "memory.log") as memory,
        running_bridge("stream", url, prefix, stream_settings, logs / "stream.log") as stream,
        LogFiller(url, prefix) as filler,
    ):
        for others in options.interleaves:
            project = f"resume-{others}-{uuid.uuid4().hex[:8]}"
            total = n * (1 + others)
            print(f"… filling 1:{others}: {n} events of {project} among {total} records", end="")
            segment, fill = await fill_segment(filler, [memory, stream], project, n, others)
            bench.info["catch_up"]["fills"].append({"interleave": segment.interleave, **fill})
            print(f" ({fill['events_per_s']:,.0f} events/s published)", flush=True)
            both = {**bench.pids(), "memory bridge": memory.child.pid}
            both["stream bridge"] = stream.child.pid
            for _ in range(options.repeats):
                await wait_quiet(options.wait_quiet, both)
                bench.rows.append(await raw_read(url, f"{prefix}.log", segment, both))
            for transport in get_args(Transport):
                for bridge, idle in ((memory, stream), (stream, memory)):
                    # The idle bridge is accounted by name, so "other" is the rest of the box.
                    pids = {**bench.pids(), "idle bridge": idle.child.pid}
                    for _ in range(options.repeats):
                        await wait_quiet(options.wait_quiet, {**pids, "server": bridge.child.pid})
                        row = await catch_up(bridge, segment, transport, pids, stall=options.stall)
                        bench.rows.append(row)
                        _print_catch_up(row)
        bench.info["memory_bridge_rss_mb"] = rss_mb(memory.child.pid)
        bench.info["stream_bridge_rss_mb"] = rss_mb(stream.child.pid)


def _print_catch_up(row: dict[str, Any]) -> None:
    """Print one catch-up as it finishes: source, transport, interleave, rate, check."""
    check: ResumeCheck = row["check"]
    rate = row["events_per_s"]
    shown = "-" if rate is None else f"{rate:,.0f} events/s"
    print(
        f"  {row['source']:<6} {row['transport']:<9} {row['interleave']:<4} {shown:>18}  "
        f"{check.summary()}",
        flush=True,
    )


# -- 3: time to ready after a restart ----------------------------------------------------------


async def run_restarts(bench: ResumeBench) -> None:
    """Grow the restart log through every size; at each, start a bridge with the default warm
    start, then one with `EVENTBRIDGE_WARM_START_EVENTS=0`, and time both to ready."""
    options = bench.options
    url, prefix = options.amqp_url, bench.restart_prefix
    logs = log_dir()
    fills: list[dict[str, Any]] = []
    bench.info["restart_fills"] = fills
    async with LogFiller(url, prefix) as filler:
        await filler.publish([(QUIET_PROJECT, 0)])  # the quiet project's one event, at the start
        published = 0
        for size in options.sizes:
            if size > published:
                print(f"… filling the restart log to {size:,} events", end="", flush=True)
                fill = await filler.publish(spread(published, size - published))
                fills.append({"to": size, **fill})
                print(f" ({fill['events_per_s']:,.0f} events/s)", flush=True)
                published = size
            timeout = 60 + size / 1000
            for label, settings in (
                ("warm", {}),
                ("baseline", {"EVENTBRIDGE_WARM_START_EVENTS": "0"}),
            ):
                await wait_quiet(options.wait_quiet, bench.pids())
                row = await time_to_ready(
                    url,
                    prefix,
                    settings,
                    logs / f"restart-{size}-{label}.log",
                    bench.pids(),
                    timeout=timeout,
                )
                row.update({"log_events": size, "label": label})
                bench.restarts.append(row)
                print(
                    f"  {size:>7,} events, {label:<8}: ready in {row['ready_seconds']:.2f} s, "
                    f"read {row['records_read']} offsets, RSS {row['rss_mb'] or 0:.0f} MiB",
                    flush=True,
                )
    await run_quiet_resumes(bench, logs)
    largest = max(
        (r for r in bench.restarts if r["label"] == "warm" and r["start_offset"] is not None),
        key=lambda r: r["records_read"] or 0,
        default=None,
    )
    if largest is not None and (largest["records_read"] or 0) > 1:
        first, last = largest["start_offset"], largest["tail"]
        print(f"… baseline: raw aio-pika read of offsets {first}..{last}", flush=True)
        reads = []
        for _ in range(options.repeats):
            await wait_quiet(options.wait_quiet, bench.pids())
            reads.append(await raw_window_read(url, f"{prefix}.log", first, last, bench.pids()))
        bench.info["restart_raw_reads"] = reads
        bench.info["restart_raw_read"] = {
            **reads[0],
            "seconds": statistics.median(float(read["seconds"]) for read in reads),
            "records_per_s": statistics.median(float(read["records_per_s"]) for read in reads),
        }


async def run_quiet_resumes(bench: ResumeBench, logs: Path) -> None:
    """On the restart log at its largest, with the default settings: the quiet project resumed
    from before its one event, from far back after it, and from just behind the head."""
    url, prefix = bench.options.amqp_url, bench.restart_prefix
    quiet: list[dict[str, Any]] = []
    bench.info["quiet_resumes"] = quiet
    async with running_bridge("quiet", url, prefix, {}, logs / "quiet.log") as bridge:
        head = (await log_position(bridge)).head
        # The quiet event is the restart log's first record (offset 0): -1 resumes from before it.
        for since, expected in ((-1, 1), (max(1, head - 900_000), 0), (max(1, head - 10), 0)):
            row = await quiet_resume(bridge.port, since, expected=expected)
            quiet.append(row)
            answered = row["answered_s"]
            print(
                f"  quiet project, since {since:,} ({row['records_behind']:,} records behind): "
                f"{row['outcome']} after {'-' if answered is None else f'{answered:.2f}'} s"
                f"{'' if row['ok'] else '  NOT OK'}",
                flush=True,
            )


# -- the report --------------------------------------------------------------------------------


def _n(value: float | None, digits: int = 0) -> str:
    """A number with thousands separators, or "-" for None."""
    return "-" if value is None else f"{value:,.{digits}f}"


def _median(values: Iterable[float | None]) -> float | None:
    """The median of the values that are not None, or None if there are none."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _range(values: Iterable[float | None]) -> list[float] | None:
    """[min, max] of the values that are not None, or None if there are none."""
    present = [v for v in values if v is not None]
    return [min(present), max(present)] if present else None


def _cpu(cores: dict[str, float | None] | None) -> str:
    """Cores used as "bench/server/broker/other"."""
    if not cores:
        return "-"
    return "/".join(_n(cores.get(name), 2) for name in ("bench", "server", "broker", "other"))


def _groups(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """The catch-up rows by (interleave, source, transport), repeats together."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if row["kind"] == "catch-up":
            key = (row["interleave"], row["source"], row["transport"])
            groups.setdefault(key, []).append(row)
    return groups


def catch_up_summary(bench: ResumeBench) -> list[dict[str, Any]]:
    """One line per interleave, source and transport: medians over the repeats, and the ratio
    of records/s to the raw aio-pika read of the same records."""
    raw: dict[str, list[dict[str, Any]]] = {}
    for row in bench.rows:
        if row["kind"] == "raw-read":
            raw.setdefault(row["interleave"], []).append(row)
    summary: list[dict[str, Any]] = []
    for interleave, reads in raw.items():
        raw_rate = _median(r["records_per_s"] for r in reads) or 0.0
        summary.append(
            {
                "measurement": "raw aio-pika read",
                "interleave": interleave,
                "source": "stream",
                "transport": "-",
                "repeats": len(reads),
                "events": None,
                "records": reads[0]["records"],
                "wall_seconds": _median(r["wall_seconds"] for r in reads),
                "events_per_s": None,
                "records_per_s": raw_rate,
                "records_per_s_range": _range(r["records_per_s"] for r in reads),
                "ratio_to_raw": 1.0,
                "cpu_cores": reads[len(reads) // 2]["cpu_cores"],
                "check": "-",
            }
        )
        for (group_interleave, source, transport), rows in _groups(bench.rows).items():
            if group_interleave != interleave:
                continue
            # Only a read from the log scans records; memory reads the room's own buffer.
            records_per_s = (
                _median(r["records_per_s"] for r in rows) if source == "stream" else None
            )
            rates = [r["events_per_s"] for r in rows if r["events_per_s"] is not None]
            checks = [r["check"] for r in rows]
            failed = [c.summary() for c in checks if not c.ok]
            summary.append(
                {
                    "measurement": f"catch-up from {source}",
                    "interleave": interleave,
                    "source": source,
                    "transport": transport,
                    "repeats": len(rows),
                    "events": rows[0]["events"],
                    "records": rows[0]["records"],
                    "wall_seconds": _median(r["wall_seconds"] for r in rows),
                    "events_per_s": _median(rates),
                    "events_per_s_range": _range(rates),
                    "records_per_s": records_per_s,
                    "ratio_to_raw": records_per_s / raw_rate if records_per_s else None,
                    "reply_ms": _median(r["reply_ms"] for r in rows),
                    "first_event_s": _median(r["first_event_s"] for r in rows),
                    "cpu_cores": rows[len(rows) // 2]["cpu_cores"],
                    "check": "ok" if not failed else "; ".join(sorted(set(failed))),
                }
            )
    return summary


def catch_up_table(summary: list[dict[str, Any]]) -> str:
    """The catch-up lines as a table."""
    header = (
        "measurement",
        "interleave",
        "transport",
        "events",
        "records",
        "wall s",
        "events/s",
        "records/s",
        "÷ raw read",
        "1st event s",
        "CPU bench/bridge/broker/other",
        "check",
    )
    lines = []
    for line in summary:
        rate, scanned = _n(line["events_per_s"]), _n(line["records_per_s"])
        if line["repeats"] > 1 and (low_high := line.get("events_per_s_range")):
            rate += f" ({_n(low_high[0])}-{_n(low_high[1])})"
        if line["repeats"] > 1 and (low_high := line.get("records_per_s_range")):
            scanned += f" ({_n(low_high[0])}-{_n(low_high[1])})"
        lines.append(
            (
                line["measurement"],
                line["interleave"],
                line["transport"],
                _n(line["events"]),
                _n(line["records"]),
                _n(line["wall_seconds"], 2),
                rate,
                scanned,
                _n(line["ratio_to_raw"], 2),
                _n(line.get("first_event_s"), 2),
                _cpu(line["cpu_cores"]),
                line["check"],
            )
        )
    return markdown_table(header, lines)


def restart_summary(bench: ResumeBench) -> list[dict[str, Any]]:
    """One line per log size: the warm start against the same run's no-history baseline."""
    raw = bench.info.get("restart_raw_read") or {}
    raw_rate = raw.get("records_per_s")
    by_size: dict[int, dict[str, dict[str, Any]]] = {}
    for row in bench.restarts:
        by_size.setdefault(row["log_events"], {})[row["label"]] = row
    summary = []
    for size, pair in sorted(by_size.items()):
        warm, base = pair.get("warm"), pair.get("baseline")
        if warm is None or base is None:
            continue
        cost = warm["ready_seconds"] - base["ready_seconds"]
        records = warm["records_read"] or 0
        read = warm["read_seconds"]
        rate = records / read if read and records > 1 else None
        summary.append(
            {
                "log_events": size,
                "warm_records_read": warm["records_read"],
                "warm_ready_seconds": warm["ready_seconds"],
                "baseline_ready_seconds": base["ready_seconds"],
                "ratio": warm["ready_seconds"] / base["ready_seconds"],
                "warm_cost_seconds": cost,
                "warm_before_read_seconds": warm["before_read_seconds"],
                "warm_read_seconds": read,
                "warm_read_records_per_s": rate,
                "warm_read_ratio_to_raw": rate / raw_rate if rate and raw_rate else None,
                "warm_rss_mb": warm["rss_mb"],
                "baseline_rss_mb": base["rss_mb"],
                "warm_bridge_cpu_seconds": warm["bridge_cpu_seconds"],
                "baseline_bridge_cpu_seconds": base["bridge_cpu_seconds"],
            }
        )
    return summary


def restart_table(summary: list[dict[str, Any]]) -> str:
    """The restart lines as a table."""
    header = (
        "log events",
        "warm window (offsets)",
        "ready s (warm)",
        "ready s (warm 0)",
        "warm ÷ baseline",
        "warm cost s",
        "of which read s",
        "read records/s",
        "÷ raw read",
        "RSS MiB warm / 0",
        "bridge CPU s warm / 0",
    )
    lines = [
        (
            _n(line["log_events"]),
            _n(line["warm_records_read"]),
            _n(line["warm_ready_seconds"], 2),
            _n(line["baseline_ready_seconds"], 2),
            _n(line["ratio"], 2),
            _n(line["warm_cost_seconds"], 2),
            _n(line["warm_read_seconds"], 2),
            _n(line["warm_read_records_per_s"]),
            _n(line["warm_read_ratio_to_raw"], 2),
            f"{_n(line['warm_rss_mb'])} / {_n(line['baseline_rss_mb'])}",
            f"{_n(line['warm_bridge_cpu_seconds'], 1)} / "
            f"{_n(line['baseline_bridge_cpu_seconds'], 1)}",
        )
        for line in summary
    ]
    return markdown_table(header, lines)


def failures(bench: ResumeBench) -> list[str]:
    """One line per resume whose client did not get exactly the missed events."""
    return [
        f"catch-up from {row['source']}, {row['transport']}, {row['interleave']}: "
        f"{row['check'].summary()}"
        for row in bench.rows
        if isinstance(row.get("check"), ResumeCheck) and not row["check"].ok
    ] + [
        f"quiet project from {row['since']:,}: {row['outcome']} after {row['answered_s']} s"
        for row in bench.info.get("quiet_resumes", [])
        if not row["ok"]
    ]


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """A result row for the JSON document (its check as a dict with `ok`)."""
    item = dict(row)
    if isinstance(item.get("check"), ResumeCheck):
        item["check"] = {**asdict(item["check"]), "ok": item["check"].ok}
    return item


def report(bench: ResumeBench, error: str | None, seconds: float) -> int:
    """Print the tables, write the JSON document, and return the exit code."""
    catch_ups = catch_up_summary(bench)
    restarts = restart_summary(bench)
    if catch_ups:
        print("\nCatch-up after `since` (median of the repeats; events/s range in brackets):\n")
        print(catch_up_table(catch_ups))
    if restarts:
        raw = bench.info.get("restart_raw_read") or {}
        print("\nTime from process start to /ready 200, default warm start against warm 0:\n")
        print(restart_table(restarts))
        if raw:
            print(
                f"\n  raw aio-pika read of the largest warm window ({raw['records']:,} records):"
                f" {raw['records_per_s']:,.0f} records/s (median of {bench.options.repeats})"
            )
    disturbed = [
        line
        for line in catch_ups
        if ((line.get("cpu_cores") or {}).get("other") or 0.0) > DISTURBED_CORES
    ]
    if disturbed:
        print(
            f"\n  WARNING: other processes used more than {DISTURBED_CORES} cores during "
            f"{len(disturbed)} catch-up line(s) (CPU column 'other'): those are disturbed"
        )
    failed = failures(bench)
    if failed:
        banner = "!" * 78
        print(f"\n{banner}\nRESUMES THAT DID NOT GET EXACTLY THE MISSED EVENTS:")
        for line in failed:
            print(f"  {line}")
        print(banner)
    if error is not None:
        print(f"\nTHE BENCHMARK FAILED: {error}", file=sys.stderr)
    document = {
        "started_at": bench.info.get("started_at"),
        "seconds": seconds,
        "prefixes": [bench.prefix, bench.restart_prefix],
        "options": {**asdict(bench.options), "output": str(bench.options.output)},
        "environment": environment(),
        "catch_up": catch_ups,
        "restart": restarts,
        "results": [_jsonable(row) for row in bench.rows],
        "restart_runs": bench.restarts,
        "failures": failed,
        "info": {k: v for k, v in bench.info.items() if k != "started_at"},
        "error": error,
    }
    output = bench.options.output
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2, default=str) + "\n")
    shown = output.relative_to(ROOT) if output.is_relative_to(ROOT) else output
    print(f"\nwritten: {shown} ({seconds:.0f} s)")
    if error is not None:
        return 2
    return 1 if failed else 0


# -- running -----------------------------------------------------------------------------------


async def cleanup(bench: ResumeBench) -> list[str]:
    """Delete every broker object of both prefixes; return the names that could not be."""
    try:
        return await delete_prefix(bench.options.amqp_url, bench.prefix, bench.restart_prefix)
    except (OSError, TimeoutError) as exc:
        return [f"everything ({exc})"]


async def run(options: ResumeOptions) -> int:
    """Run every measurement, clean up the broker, and report."""
    started = time.perf_counter()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    bench = ResumeBench(options)
    bench.info["started_at"] = utc_now().isoformat()
    bench.info["broker"] = await broker_version(options.amqp_url)
    bench.info["broker_pid"] = bench.broker_pid
    main_task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if main_task is not None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, main_task.cancel)
    print(
        f"bench_resume: prefix {bench.prefix}, {options.events} events per resume, "
        f"interleaves {', '.join(f'1:{k}' for k in options.interleaves)}, "
        f"restart log sizes {', '.join(f'{s:,}' for s in options.sizes)}"
    )
    error: str | None = None
    parts: list[Callable[[ResumeBench], Any]] = []
    if not options.skip_catch_up:
        parts.append(run_catch_ups)
    if not options.skip_restart:
        parts.append(run_restarts)
    try:
        for part in parts:
            await part(bench)
    except asyncio.CancelledError:
        error = "interrupted"
        if main_task is not None:
            main_task.uncancel()
    except Exception as exc:  # noqa: BLE001 - any failure is reported with partial results
        error = f"{type(exc).__name__}: {exc}"
    finally:
        failed = await cleanup(bench)
        if failed:
            print(f"could not delete broker objects: {', '.join(failed)}", file=sys.stderr)
        bench.info["cleanup_failed"] = failed
    return report(bench, error, time.perf_counter() - started)


def _counts(text: str) -> tuple[int, ...]:
    """Parse comma-separated non-negative counts, e.g. "0,10000,50_000"."""
    try:
        values = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError("use comma-separated integers, e.g. 0,10000") from exc
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError("give at least one count, none negative")
    return values


def parse_args(argv: Sequence[str] | None = None) -> ResumeOptions:
    """Parse the command line into `ResumeOptions`."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.performance.bench_resume",
        description="Benchmark eventbridge's offline delivery: catch-up by offset from memory "
        "and from the log, and time to ready after a restart.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: under a minute")
    parser.add_argument(
        "--events", type=int, help="missed events per resume (default 5000, quick 1000)"
    )
    parser.add_argument(
        "--interleave",
        type=_counts,
        help="other projects' events per event of the resumed project, one segment each "
        "(default 0,1,9)",
    )
    parser.add_argument(
        "--repeats", type=int, help="resumes per source and transport (default 2, quick 1)"
    )
    parser.add_argument(
        "--sizes",
        type=_counts,
        help="restart log sizes in events, ascending (default 0,10000,50000,100000,200000; "
        "quick 0,10000,30000)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each measurement wait up to SECONDS for other processes on the machine "
        f"to use under {DISTURBED_CORES} cores (default 0: don't wait)",
    )
    parser.add_argument("--skip-catch-up", action="store_true", help="measure restarts only")
    parser.add_argument("--skip-restart", action="store_true", help="measure catch-ups only")
    parser.add_argument(
        "--amqp-url", default=os.environ.get("EVENTBRIDGE_AMQP_URL", DEFAULT_AMQP_URL)
    )
    parser.add_argument("--output", type=Path, default=ARTIFACTS / "bench_resume.json")
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    events = args.events if args.events is not None else (1000 if quick else 5000)
    sizes = args.sizes or ((0, 10_000, 30_000) if quick else (0, 10_000, 50_000, 100_000, 200_000))
    repeats = args.repeats if args.repeats is not None else (1 if quick else 2)
    if events <= STREAM_HISTORY or repeats < 1:
        # Fewer missed events could still be in the stream bridge's memory.
        parser.error(f"--events must be over {STREAM_HISTORY} and --repeats at least 1")
    if list(sizes) != sorted(sizes):
        parser.error("--sizes must be ascending: the log only grows")
    return ResumeOptions(
        events=events,
        interleaves=args.interleave or (0, 1, 9),
        repeats=repeats,
        sizes=sizes,
        stall=5.0 if quick else 10.0,
        amqp_url=args.amqp_url,
        output=args.output.resolve(),
        quick=quick,
        skip_catch_up=args.skip_catch_up,
        skip_restart=args.skip_restart,
        wait_quiet=max(0.0, args.wait_quiet),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the load generator runs on uvloop, like bench_live's."""
    return uvloop.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
