"""Benchmark of the slow-consumer requirement, with real parts.

Requirement (docs/security.md, the security issue): with 99 normal clients and 1 that stops
reading while 200 events/s of 10 kB flow, the normal clients receive everything with p99 latency
within 2x of the same run without the stuck client, and the server's memory grows by less than
50 MiB.

Run `.venv/bin/python -m tests.performance.bench_slow_consumer [--quick]` from the project root
(tests/performance/README.md explains every figure). It starts `eventbridge serve` as a child
process (fresh prefix `bench-<random>`, free port, `EVENTBRIDGE_AUTH=anonymous`) and runs, each
in a fresh project:

1. baseline: C normal clients (child processes) while events are published at R/s for S s;
2. the same plus one stuck native WebSocket client (a raw socket with a small receive buffer
   that joins the room and never reads again);
3. the same with a stuck Socket.IO client instead (unless `--stuck websocket`);
4. the baseline again, so that each stuck phase is compared with the baselines around it.

Each normal client checks that it got every event exactly once, in order; latency is receive
time minus the event's `sent_at`. The bridge's RSS is sampled every 0.25 s. Exit code 0 when
nothing was lost and both targets hold (p99 with a stuck client ≤ 2x the mean p99 of the
baselines around it; RSS growth during a stuck phase < 50 MiB), 1 when not (the reasons are
printed), 2 when the run failed.
Broker objects and child processes are removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import uvloop

from producers import EventPublisher
from schemas import utc_now
from tests.helpers import delete_prefix
from tests.performance.context import (
    ARTIFACTS,
    DISTURBED_CORES,
    ROOT,
    add_common_options,
)
from tests.performance.processes import (
    broker_version,
    find_broker_pid,
    rss_mb,
)
from tests.performance.report import environment, markdown_table
from tests.performance.resume_phases import running_bridge
from tests.performance.slow_phase import Load, Phase, run_phase
from tests.performance.slow_stuck import StuckTransport

LATENCY_TARGET = 2.0
"""p99 with the stuck client ÷ p99 of the baseline must not exceed this."""
MEMORY_TARGET_MIB = 50.0
"""The bridge's RSS may grow by less than this during a stuck phase."""
SATURATED_CORES = 1.8
"""Busy cores (of the machine's) at or above which a phase is flagged as CPU-saturated."""
BRIDGE_SETTINGS = {
    "EVENTBRIDGE_LOG_LEVEL": "warning",
    # The bridge requires tokens by default (auth=jwt); this benchmark's clients are anonymous,
    # which the bridge allows on loopback when told so explicitly.
    "EVENTBRIDGE_AUTH": "anonymous",
}


@dataclass(frozen=True)
class SlowOptions:
    """What to run; see `parse_args`."""

    load: Load
    stuck: tuple[StuckTransport, ...]
    repeats: int
    memory_basis: str
    bridge_env: dict[str, str]
    output: Path
    quick: bool


@dataclass
class SlowRun:
    """One run's state: prefix, results so far, and facts about the run."""

    options: SlowOptions
    prefix: str
    rows: list[dict[str, Any]]
    info: dict[str, Any]


def phases(options: SlowOptions) -> list[Phase]:
    """The phases in the order they run: a baseline, the stuck phases, and a baseline again
    (repeated `--repeats` times), so every stuck phase has a baseline before and after it."""
    names = {"websocket": "stuck native WebSocket client", "socketio": "stuck Socket.IO client"}
    result: list[Phase] = []
    for round_ in range(1, options.repeats + 1):
        suffix = f" (round {round_})" if options.repeats > 1 else ""
        result.append(Phase(f"baseline {round_}", None))
        result += [Phase(f"{names[t]}{suffix}", t) for t in options.stuck]
    result.append(Phase(f"baseline {options.repeats + 1}", None))
    return result


# -- running -----------------------------------------------------------------------------------


async def measure(run: SlowRun) -> None:
    """Start the bridge and run every phase against it."""
    options, load = run.options, run.options.load
    log_path = ARTIFACTS / "bench_slow_consumer-bridge.log"
    settings = {**BRIDGE_SETTINGS, **options.bridge_env}
    run.info["bridge_settings"] = settings
    run.info["bridge_log"] = str(log_path.relative_to(ROOT))
    async with running_bridge("slow", load.amqp_url, run.prefix, settings, log_path) as bridge:
        run.info["bridge_rss_mb_at_start"] = rss_mb(bridge.child.pid)
        pids = {"bench": os.getpid(), "broker": find_broker_pid()}
        async with EventPublisher(
            load.amqp_url,
            prefix=run.prefix,
            source="bench-slow-consumer",
            connection_name="bench-slow-consumer-publisher",
            retry_attempts=1,
            publish_timeout=30,
        ) as publisher:
            plan = phases(options)
            for number, phase in enumerate(plan, start=1):
                stuck = f" + 1 stuck {phase.stuck} client" if phase.stuck else ""
                print(
                    f"… phase {number}/{len(plan)}: {phase.name}: {load.clients} clients{stuck}, "
                    f"{load.count} events at {load.rate:g}/s of ~{load.size:,} bytes",
                    flush=True,
                )
                row = await run_phase(load, phase, bridge, publisher, prefix=run.prefix, pids=pids)
                run.rows.append(row)
                print_phase(row)
        run.info["bridge_rss_mb_at_end"] = rss_mb(bridge.child.pid)
        run.info["bridge_log_tail"] = bridge.child.log_tail(40)


async def cleanup(run: SlowRun) -> list[str]:
    """Delete the prefix's broker objects; return the names that could not be."""
    try:
        return await delete_prefix(run.options.load.amqp_url, run.prefix)
    except (OSError, TimeoutError) as exc:
        return [f"everything ({exc})"]


async def run_all(options: SlowOptions) -> int:
    """Run the phases, clean up the broker, and report."""
    started = time.perf_counter()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    run = SlowRun(options, prefix=f"bench-{os.urandom(5).hex()}", rows=[], info={})
    run.info["started_at"] = utc_now().isoformat()
    run.info["broker"] = await broker_version(options.load.amqp_url)
    main_task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if main_task is not None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, main_task.cancel)
    load = options.load
    print(
        f"bench_slow_consumer: prefix {run.prefix}, {load.clients} normal clients "
        f"({load.sio_clients} Socket.IO) in {load.processes} processes, {load.rate:g} events/s "
        f"of ~{load.size:,} bytes for {load.seconds:g} s per phase",
        flush=True,
    )
    error: str | None = None
    try:
        await measure(run)
    except asyncio.CancelledError:
        error = "interrupted"
        if main_task is not None:
            main_task.uncancel()  # let the clean-up below await (and time out) normally
    except Exception as exc:  # noqa: BLE001 - any failure is reported with partial results
        error = f"{type(exc).__name__}: {exc}"
    finally:
        failed = await cleanup(run)
        if failed:
            print(f"could not delete broker objects: {', '.join(failed)}", file=sys.stderr)
        run.info["cleanup_failed"] = failed
    run.info["seconds"] = time.perf_counter() - started
    return report(run, error)


# -- judging -----------------------------------------------------------------------------------


def growth(row: dict[str, Any]) -> float | None:
    """How much the bridge's RSS grew during a phase: the peak sampled minus the RSS before."""
    before, peak = row.get("rss_before_mb"), row.get("rss_peak_mb")
    return None if before is None or peak is None else peak - before


def losses(rows: list[dict[str, Any]]) -> list[str]:
    """One line per phase whose normal clients did not all get every event once, in order."""
    lines = []
    for row in rows:
        result = row["clients_result"]
        if result["complete"] == result["clients"] and not result["closed"]:
            continue
        parts = [f"{result['clients'] - result['complete']}/{result['clients']} incomplete"]
        for key in ("missing", "duplicates", "out_of_order", "bad"):
            if result[key]:
                parts.append(f"{result[key]} {key.replace('_', ' ')}")
        if result["closed"]:
            reasons = "; ".join(sorted(set(result["closed"])))[:160]
            parts.append(f"{len(result['closed'])} disconnected ({reasons})")
        parts.append(f"children: {', '.join(result['outcomes'])}")
        lines.append(f"{row['phase']}: {', '.join(parts)}")
    return lines


def _mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) / len(present) if present else None


def bracket(rows: list[dict[str, Any]], index: int) -> list[dict[str, Any]]:
    """The baselines nearest before and after the phase at `index`."""
    before = [row for row in rows[:index] if row["stuck_transport"] is None][-1:]
    after = [row for row in rows[index + 1 :] if row["stuck_transport"] is None][:1]
    return before + after


def verdict(rows: list[dict[str, Any]], memory_basis: str) -> dict[str, Any]:
    """The targets, judged for every stuck phase against the baselines around it.

    Latency: p99 ÷ the mean p99 of the baselines just before and after it ≤ `LATENCY_TARGET`.
    Memory: with `memory_basis` "total", the RSS growth during the phase (peak - before) <
    `MEMORY_TARGET_MIB`; with "beyond-baseline", that growth minus the baselines' mean growth.
    """
    judged: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        if row["stuck_transport"] is None:
            continue
        baselines = bracket(rows, index)
        base_p99 = _mean([b["latency_ms"]["p99"] for b in baselines])
        base_growth = _mean([growth(b) for b in baselines])
        p99 = row["latency_ms"]["p99"]
        ratio = p99 / base_p99 if p99 is not None and base_p99 else None
        quiet_p99 = row["latency_ms_quiet_seconds"]["p99"]
        quiet_base = _mean([b["latency_ms_quiet_seconds"]["p99"] for b in baselines])
        grown = growth(row)
        beyond = grown - base_growth if grown is not None and base_growth is not None else None
        judged_growth = grown if memory_basis == "total" else beyond
        judged.append(
            {
                "phase": row["phase"],
                "baselines": [b["phase"] for b in baselines],
                "p99_ms": p99,
                "baseline_p99_ms": base_p99,
                "baseline_p99s_ms": [b["latency_ms"]["p99"] for b in baselines],
                "p99_ratio": ratio,
                "latency_ok": ratio is not None and ratio <= LATENCY_TARGET,
                "quiet_seconds": len(row["quiet_seconds"]),
                "quiet_p99_ms": quiet_p99,
                "quiet_baseline_p99_ms": quiet_base,
                "quiet_p99_ratio": (
                    quiet_p99 / quiet_base if quiet_p99 is not None and quiet_base else None
                ),
                "rss_growth_mib": grown,
                "baseline_rss_growth_mib": base_growth,
                "rss_growth_beyond_baseline_mib": beyond,
                "memory_basis": memory_basis,
                "memory_ok": judged_growth is not None and judged_growth < MEMORY_TARGET_MIB,
            }
        )
    return {
        "latency_target": LATENCY_TARGET,
        "memory_target_mib": MEMORY_TARGET_MIB,
        "memory_basis": memory_basis,
        "phases": judged,
        "lost": losses(rows),
        "ok": bool(judged) and all(j["latency_ok"] and j["memory_ok"] for j in judged),
    }


# -- reporting ---------------------------------------------------------------------------------


def _n(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _cpu(cores: dict[str, Any]) -> str:
    names = ("bench", "clients", "server", "broker", "other")
    return "/".join(_n(cores.get(name), 2) for name in names)


def fate(row: dict[str, Any]) -> str:
    """What happened to the stuck client, in a few words."""
    stuck = row.get("stuck")
    if stuck is None:
        return "-"
    drained = stuck.get("drained") or {}
    if stuck["disconnected_as_slow_after_s"] is not None:
        text = f"slow_consumer at {stuck['disconnected_as_slow_after_s']:.1f} s"
    else:
        text = "not disconnected"
    text += f"; had {drained.get('events', '?')} events"
    if drained.get("close_code") is not None:
        text += f", then close {drained['close_code']}"
    elif drained.get("eof"):
        text += ", then EOF"
    else:
        text += ", connection still open"
    return text


def print_phase(row: dict[str, Any]) -> None:
    """A few lines about a finished phase."""
    latency = row["latency_ms"]
    result = row["clients_result"]
    state = "ok" if result["complete"] == result["clients"] and not result["closed"] else "LOSS"
    print(
        f"  {state}: {result['complete']}/{result['clients']} clients got all {row['events']} "
        f"events; latency p50 {_n(latency['p50'], 1)} ms, p99 {_n(latency['p99'], 1)} ms, "
        f"max {_n(latency['max'], 1)} ms (broker leg p99 "
        f"{_n(row['broker_leg_latency_ms']['p99'], 1)} ms, this process's loop lag p99/max "
        f"{_n(row['bench_loop_lag_ms']['p99'], 1)}/{_n(row['bench_loop_lag_ms']['max'], 1)} ms);"
        " bridge RSS "
        f"{_n(row['rss_before_mb'])} → peak "
        f"{_n(row['rss_peak_mb'])} → {_n(row['rss_after_mb'])} MiB; CPU cores "
        f"bench/clients/server/broker/other {_cpu(row['cpu_cores'])}",
        flush=True,
    )
    if row.get("stuck") is not None:
        stuck = row["stuck"]
        linger = stuck.get("linger")
        print(
            f"  stuck client: {fate(row)}; bridge send-q up to "
            f"{_n((stuck['server_send_q_max'] or 0) / 1024)} KiB; bridge connections after the "
            f"others left: {stuck['connections_at_end']}, after it closed: "
            f"{stuck['connections_after_close']}",
            flush=True,
        )
        if linger is not None:
            closed = linger["bridge_end_closed_after_s"]
            print(
                f"  lingering {linger['seconds']:g} s: the bridge's end of the socket "
                f"{'closed after ' + _n(closed, 0) + ' s' if closed is not None else 'stayed open'}"
                f" (states {', '.join(linger['states'])})",
                flush=True,
            )


def table(rows: list[dict[str, Any]]) -> str:
    """Every phase in one table."""
    header = (
        "phase",
        "events",
        "deliveries",
        "p50 ms",
        "p99 ms",
        "max ms",
        "p99 ms quiet s (n)",
        "broker leg p50/p99 ms",
        "RSS MiB before/peak/after",
        "growth MiB",
        "CPU bench/clients/server/broker/other",
        "busy cores",
        "check",
        "stuck client",
    )
    lines: list[tuple[str, ...]] = []
    for row in rows:
        latency, result = row["latency_ms"], row["clients_result"]
        leg = row["broker_leg_latency_ms"]
        check = "ok" if result["complete"] == result["clients"] and not result["closed"] else "LOSS"
        rss = "/".join(_n(row.get(k)) for k in ("rss_before_mb", "rss_peak_mb", "rss_after_mb"))
        lines.append(
            (
                row["phase"],
                str(row["events"]),
                _n(latency["deliveries"]),
                _n(latency["p50"], 1),
                _n(latency["p99"], 1),
                _n(latency["max"], 1),
                f"{_n(row['latency_ms_quiet_seconds']['p99'], 1)} ({len(row['quiet_seconds'])})",
                f"{_n(leg['p50'], 1)}/{_n(leg['p99'], 1)}",
                rss,
                _n(growth(row), 1),
                _cpu(row["cpu_cores"]),
                _n(row["cpu_cores"].get("total"), 2),
                check,
                fate(row),
            )
        )
        by_transport = row.get("latency_ms_by_transport") or {}
        if len(by_transport) > 1:
            for name, part in by_transport.items():
                count = row[f"{name}_clients"]
                lines.append(
                    (
                        f"  of which {name} ({count})",
                        "",
                        _n(part["deliveries"]),
                        _n(part["p50"], 1),
                        _n(part["p99"], 1),
                        _n(part["max"], 1),
                        *([""] * 8),
                    )
                )
    return markdown_table(header, lines)


def notes(run: SlowRun) -> None:
    """Print what limits the figures: a saturated machine, other processes, a stuck client
    that was never disconnected."""
    rows = run.rows
    saturated = [r["phase"] for r in rows if (r["cpu_cores"]["total"] or 0) >= SATURATED_CORES]
    if saturated:
        print(
            f"  NOTE: the machine's {os.cpu_count()} cores were (nearly) saturated "
            f"(≥ {SATURATED_CORES} busy) during: {'; '.join(saturated)}. Latencies there "
            "include waiting for a core."
        )
    disturbed = [
        f"{r['phase']} ({r['cpu_cores']['other']:.2f})"
        for r in rows
        if (r["cpu_cores"]["other"] or 0) > DISTURBED_CORES
    ]
    if disturbed:
        print(
            f"  WARNING: other processes used more than {DISTURBED_CORES} cores during "
            f"{'; '.join(disturbed)}: those figures are disturbed"
        )
    for row in rows:
        stuck = row.get("stuck")
        if stuck is not None and stuck["disconnected_as_slow_after_s"] is None:
            outbox = run.options.bridge_env.get("EVENTBRIDGE_OUTBOX_SIZE", "2000")
            print(
                f"  NOTE: the stuck client of '{row['phase']}' was not disconnected as slow: "
                f"{row['events']} events were published, and it takes the outbox "
                f"(EVENTBRIDGE_OUTBOX_SIZE {outbox}) plus what the socket buffers hold "
                "(~290 events of 10 kB here) to overflow; use longer phases to see it."
            )


def report(run: SlowRun, error: str | None) -> int:
    """Print the table and the verdict, write the JSON; return the exit code."""
    rows = run.rows
    judged = verdict(rows, run.options.memory_basis) if rows else None
    if rows:
        print()
        print(table(rows))
        print()
        notes(run)
    failures: list[str] = []
    if judged is not None:
        for item in judged["phases"]:
            failures += _judge_line(item)
        if not judged["phases"] and error is None:
            error = "no stuck phase ran"
    lost = judged["lost"] if judged is not None else []
    if failures or lost:
        banner = "!" * 78
        print(f"\n{banner}\nTARGETS NOT MET:")
        for line in lost:
            print(f"  events lost, duplicated, reordered or clients disconnected: {line}")
        for line in failures:
            print(f"  {line}")
        print(banner)
    if error is not None:
        print(f"\nTHE BENCHMARK FAILED: {error}", file=sys.stderr)
    path = write_json(run, judged, error)
    print(f"\nwritten: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    if error is not None:
        return 2
    return 1 if failures or lost else 0


def _judge_line(item: dict[str, Any]) -> list[str]:
    """Print one stuck phase's verdict; return its failures."""
    ratio = item["p99_ratio"]
    beyond = item["rss_growth_beyond_baseline_mib"]
    judged = item["rss_growth_mib"] if item["memory_basis"] == "total" else beyond
    print(
        f"  {item['phase']}: p99 {_n(item['p99_ms'], 1)} ms ÷ baseline "
        f"{_n(item['baseline_p99_ms'], 1)} ms (mean of "
        f"{', '.join(_n(v, 1) for v in item['baseline_p99s_ms'])}) = {_n(ratio, 2)} "
        f"(target ≤ {LATENCY_TARGET:g}: {'ok' if item['latency_ok'] else 'FAILED'}); "
        f"RSS growth {_n(item['rss_growth_mib'], 1)} MiB, {_n(beyond, 1)} MiB beyond the "
        f"baselines' {_n(item['baseline_rss_growth_mib'], 1)} MiB (target < "
        f"{MEMORY_TARGET_MIB:g} MiB on the {item['memory_basis']} figure: "
        f"{'ok' if item['memory_ok'] else 'FAILED'})"
    )
    print(
        f"    diagnostic, not the target: over the seconds in which other processes used under "
        f"{DISTURBED_CORES} cores ({item['quiet_seconds']} of this phase's), p99 "
        f"{_n(item['quiet_p99_ms'], 1)} ms ÷ the baselines' {_n(item['quiet_baseline_p99_ms'], 1)}"
        f" ms = {_n(item['quiet_p99_ratio'], 2)}"
    )
    failures = []
    if not item["latency_ok"]:
        failures.append(f"{item['phase']}: p99 ratio {_n(ratio, 2)} exceeds {LATENCY_TARGET:g}")
    if not item["memory_ok"]:
        failures.append(
            f"{item['phase']}: the bridge's RSS grew {_n(judged, 1)} MiB "
            f"({item['memory_basis']}), not under {MEMORY_TARGET_MIB:g} MiB; the baselines "
            f"without a stuck client grew {_n(item['baseline_rss_growth_mib'], 1)} MiB"
        )
    return failures


def write_json(run: SlowRun, judged: dict[str, Any] | None, error: str | None) -> Path:
    """Write the whole run to the output JSON file and return its path."""
    options = run.options
    document = {
        "started_at": run.info.get("started_at"),
        "prefix": run.prefix,
        "options": {
            **asdict(options),
            "output": str(options.output),
            "events_per_phase": options.load.count,
        },
        "environment": environment(),
        "results": run.rows,
        "verdict": judged,
        "info": {k: v for k, v in run.info.items() if k != "started_at"},
        "error": error,
    }
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return options.output


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> SlowOptions:
    """Parse the command line into `SlowOptions`."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.performance.bench_slow_consumer",
        description="Does one client that stops reading hurt the others? 99 normal clients, "
        "200 events/s of 10 kB, with and without a stuck client.",
    )
    parser.add_argument("--quick", action="store_true", help="8 s per phase instead of 20 s")
    parser.add_argument("--clients", type=int, default=99, help="normal clients (default 99)")
    parser.add_argument(
        "--sio-clients",
        type=int,
        default=9,
        help="how many of the normal clients use Socket.IO; the rest are native WebSocket (9)",
    )
    parser.add_argument("--rate", type=float, default=200, help="events/s (default 200)")
    parser.add_argument("--size", type=int, default=10_000, help="bytes per event (10000)")
    parser.add_argument("--seconds", type=float, help="seconds per phase (20, quick 8)")
    parser.add_argument(
        "--processes", type=int, default=2, help="child processes for the normal clients (2)"
    )
    parser.add_argument(
        "--stuck",
        choices=["websocket", "socketio", "both"],
        default="both",
        help="which stuck-client phases to run after the baseline (default both)",
    )
    parser.add_argument(
        "--rcvbuf", type=int, default=4096, help="the stuck client's SO_RCVBUF (4096)"
    )
    parser.add_argument(
        "--linger",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="after each stuck phase keep the stuck client stuck SECONDS more and watch whether "
        "the bridge closes its end (default 0)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="rounds of baseline + stuck phases; a closing baseline follows the last (1)",
    )
    parser.add_argument(
        "--memory-basis",
        choices=["total", "beyond-baseline"],
        default="total",
        help="judge the memory target on the RSS growth during a stuck phase (total, default) "
        "or on its growth beyond the baselines' (beyond-baseline; note that frames the stuck "
        "client holds are shared with the bridge's history, so this basis does not see them)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each phase wait up to SECONDS for other processes to go quiet",
    )
    add_common_options(parser, "bench_slow_consumer")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (8.0 if args.quick else 20.0)
    if args.clients < 1 or not 0 <= args.sio_clients <= args.clients:
        parser.error("--clients must be at least 1 and --sio-clients between 0 and --clients")
    if args.rate <= 0 or seconds <= 0 or args.processes < 1 or args.repeats < 1:
        parser.error("--rate, --seconds, --processes and --repeats must be positive")
    if not 400 <= args.size <= 16_000:
        parser.error("--size must be between 400 and 16000 bytes (deployment_log line limit)")
    load = Load(
        clients=args.clients,
        sio_clients=args.sio_clients,
        processes=args.processes,
        rate=args.rate,
        size=args.size,
        seconds=seconds,
        stall=5.0 if args.quick else 10.0,
        rcvbuf=args.rcvbuf,
        linger=max(0.0, args.linger),
        wait_quiet=args.wait_quiet,
        amqp_url=args.amqp_url,
    )
    stuck: tuple[StuckTransport, ...] = (
        ("websocket", "socketio") if args.stuck == "both" else (args.stuck,)
    )
    return SlowOptions(
        load=load,
        stuck=stuck,
        repeats=args.repeats,
        memory_basis=args.memory_basis,
        bridge_env=dict(args.bridge_env),
        output=args.output.resolve(),
        quick=args.quick,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: the publisher and the stuck client run on uvloop in this process."""
    return uvloop.run(run_all(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
