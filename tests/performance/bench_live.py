"""Benchmark of eventbridge's live path against raw aio-pika and raw python-socketio, in one run.

Run `.venv/bin/python -m tests.performance.bench_live [--events N] [--quick]` from the project
root (tests/performance/README.md says what each figure means). In this order it measures:

1. baseline A: aio-pika publish (pipelined confirms) into a fresh stream queue, then consume
   from offset "first" (prefetch 1000, `ack(multiple=True)` every 100);
2. baseline B: a stock python-socketio server (child process) emitting N events to a room of
   1 and of C raw Engine.IO clients (`rawreceiver.py`, the same clients as the bridge's);
3. eventbridge (`eventbridge serve` as a child process), for 1 and C clients of each transport:
   bursts (N events, one SDK `publish_batch` from a publisher child process), drains (the same
   batch published while the bridge is stopped, then timed from SIGCONT: the bridge's own
   rate), and paced runs for latency at a sustainable rate. Every client must get every event
   once, in rising offset order.

With `--rounds N`, baseline A and the eventbridge measurements are repeated N times and every
ratio is reported per round and as the median over the rounds.

It prints a table and the ratios to the baselines, writes `test-artifacts/bench_live.json`,
and exits 1 if any client lost, duplicated or reordered an event or was disconnected, 2 if the
run failed, 0 otherwise. Broker objects and child processes are removed at the end, also on
failure.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import uvloop

from schemas import utc_now
from tests.helpers import delete_prefix
from tests.performance.baselines import SocketIOBaseline, aio_pika_consume
from tests.performance.context import (
    ARTIFACTS,
    DISTURBED_CORES,
    Bench,
    Options,
    add_common_options,
    no_gc,
    settle,
)
from tests.performance.metrics_cost import comparison, print_comparison, run_metrics_comparison
from tests.performance.phases import run_bridge_phases
from tests.performance.processes import CpuMeter, broker_version
from tests.performance.receivers import percentile
from tests.performance.report import report


async def run_baseline_a(bench: Bench) -> None:
    """Baseline A: aio-pika publish and consume of a fresh stream queue."""
    options = bench.options
    print(f"… baseline A: aio-pika, {options.events} messages", flush=True)
    await settle(bench)
    meter = CpuMeter(bench.pids())
    with no_gc():
        meter.start()
        result = await aio_pika_consume(options.amqp_url, bench.baseline_queue, options.events)
        cpu = meter.stop()
    bench.info["baseline_a"] = result
    common = {"clients": None, "events": options.events, "cpu_cores": cpu, "check": None}
    bench.rows.append(
        {
            **common,
            "phase": "A aio-pika publish (confirms pipelined)",
            "kind": "baseline-a-publish",
            "wall_seconds": result["publish_seconds"],
            "events_per_s": result["publish_rate"],
        }
    )
    bench.rows.append(
        {
            **common,
            "phase": "A aio-pika consume (from first)",
            "kind": "baseline-a-consume",
            "wall_seconds": result["consume_seconds"],
            "events_per_s": result["consume_rate"],
        }
    )


async def run_baseline_b(bench: Bench) -> None:
    """Baseline B: stock python-socketio room emit to 1 and to C clients."""
    options = bench.options
    baseline = SocketIOBaseline(
        sys.executable,
        loop=options.server_loop,
        log_path=ARTIFACTS / "bench_live-socketio-baseline.log",
        pids=bench.pids(),
    )
    async with baseline:
        for clients in (1, options.clients):
            if not options.selected(f"B python-socketio emit, {clients} client"):
                continue
            print(f"… baseline B: python-socketio, {clients} client(s)", flush=True)
            await settle(bench, baseline.pid)
            with no_gc():
                result = await baseline.run(clients, options.events, stall=options.stall)
            ordered: list[float] = result.pop("latencies_ms")
            result["latency_ms"] = {
                "all": {
                    "p50": percentile(ordered, 0.5),
                    "p99": percentile(ordered, 0.99),
                    "max": ordered[-1] if ordered else None,
                }
            }
            bench.rows.append(
                {
                    **result,
                    "phase": "B python-socketio emit",
                    "kind": "baseline-b",
                    "socketio_clients": clients,
                    "websocket_clients": 0,
                }
            )


# -- running -----------------------------------------------------------------------------------


async def run_rounds(bench: Bench) -> None:
    """The measurements, once per round (`--rounds`); every row says its round."""
    options = bench.options
    for number in range(options.rounds):
        bench.round, first_row = number, len(bench.rows)
        if options.rounds > 1:
            print(f"round {number + 1} of {options.rounds}", flush=True)
        if options.selected("A aio-pika"):
            await run_baseline_a(bench)
        if number == 0 and options.selected("B python-socketio emit"):
            await run_baseline_b(bench)
        if options.metrics_off_ref:
            every = options.scrape_interval or 1.0
            await run_metrics_comparison(
                bench, options.metrics_off_ref, options.metrics_rounds, every
            )
        else:
            await run_bridge_phases(bench, scrape=options.scrape_interval)
        for row in bench.rows[first_row:]:
            row["round"] = number


async def run(options: Options) -> int:
    """Run every measurement, clean up the broker, and report."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    bench = Bench(options)
    bench.info["started_at"] = utc_now().isoformat()
    bench.info["broker_pid"] = bench.broker_pid
    bench.info["broker"] = await broker_version(options.amqp_url)
    main_task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if main_task is not None:
        # Ctrl-C and SIGTERM both end the run through the same clean-up and report.
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, main_task.cancel)
    print(f"bench_live: prefix {bench.prefix}, {options.events} events, {options.clients} clients")
    error: str | None = None
    try:
        await run_rounds(bench)
    except asyncio.CancelledError:
        error = "interrupted"
        if main_task is not None:
            main_task.uncancel()  # let the clean-up below await (and time out) normally
    except Exception as exc:  # noqa: BLE001 - any failure is reported with partial results
        error = f"{type(exc).__name__}: {exc}"
    finally:
        try:
            failed = await delete_prefix(
                options.amqp_url, bench.prefix, extra_queues=bench.baseline_queues
            )
        except (OSError, TimeoutError) as exc:
            failed = [f"everything ({exc})"]
        if failed:
            print(f"could not delete broker objects: {', '.join(failed)}", file=sys.stderr)
        bench.info["cleanup_failed"] = failed
    bench.info["metrics_comparison"] = comparison(bench.rows)
    print_comparison(bench.rows)
    return report(bench, error)


def parse_args(argv: list[str] | None = None) -> Options:
    """Parse the command line into `Options`."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.performance.bench_live",
        description="Benchmark eventbridge's live path against raw aio-pika and python-socketio.",
    )
    parser.add_argument("--events", type=int, help="events per burst (default 5000, quick 1000)")
    parser.add_argument("--quick", action="store_true", help="small sizes: about 40 s in all")
    parser.add_argument("--clients", type=int, default=100, help="the many-clients count")
    parser.add_argument("--paced-seconds", type=float, help="length of paced runs (5, quick 2)")
    parser.add_argument(
        "--paced-rate", type=float, default=500, help="events/s of the 1-client paced runs"
    )
    parser.add_argument(
        "--paced-rate-many", type=float, default=100, help="events/s of the many-clients paced run"
    )
    parser.add_argument(
        "--server-loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="event loop of both servers: asyncio is what `eventbridge serve` uses",
    )
    add_common_options(parser, "bench_live")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each measurement wait up to SECONDS for other processes on the machine "
        f"to use under {DISTURBED_CORES} cores (default 0: don't wait)",
    )
    parser.add_argument(
        "--prefill",
        type=int,
        default=0,
        metavar="N",
        help="before the eventbridge measurements publish N events to 1000 other projects, "
        "so the bridge runs with full history buffers (by default up to 100000 events or 32 MiB)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only the measurements whose label contains TEXT (repeatable), e.g. "
        "'drain, Socket.IO, 100 client'",
    )
    parser.add_argument(
        "--metrics-off-ref",
        metavar="GIT_REF",
        help="compare the metrics' cost: run the eventbridge phases with the bridge of GIT_REF "
        "(without metrics) and with this tree's (metrics scraped), alternating; '.' for this "
        "tree's own bridge with /metrics off (EVENTBRIDGE_METRICS=false: neither served nor "
        "scraped; its counting is measured by bench_counting) (tests/performance/metrics_cost.py)",
    )
    parser.add_argument(
        "--metrics-rounds", type=int, default=2, help="rounds of that comparison (default 2)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        metavar="N",
        help="measure baseline A and the eventbridge phases N times, one after the other, and "
        "report each ratio per round and its median (baseline B runs once); one run's ratio "
        "swings with the broker's own pace",
    )
    parser.add_argument(
        "--scrape-interval",
        type=float,
        default=0.0,
        help="scrape /metrics every SECONDS while the eventbridge phases run (default: not at "
        "all; 1 in the --metrics-off-ref comparison)",
    )
    args = parser.parse_args(argv)
    events = args.events if args.events is not None else (1000 if args.quick else 5000)
    if events < 1 or args.clients < 2:
        parser.error("--events must be at least 1 and --clients at least 2")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.rounds > 1 and args.metrics_off_ref:
        parser.error("--rounds and --metrics-off-ref do not combine: the comparison has its own")
    return Options(
        events=events,
        clients=args.clients,
        paced_seconds=args.paced_seconds or (2.0 if args.quick else 5.0),
        paced_rate=args.paced_rate,
        paced_rate_many=args.paced_rate_many,
        stall=5.0 if args.quick else 10.0,
        server_loop=args.server_loop,
        amqp_url=args.amqp_url,
        bridge_env=dict(args.bridge_env),
        output=args.output.resolve(),
        quick=args.quick,
        only=tuple(args.only),
        wait_quiet=args.wait_quiet,
        prefill=max(0, args.prefill),
        metrics_off_ref=args.metrics_off_ref,
        metrics_rounds=max(1, args.metrics_rounds),
        scrape_interval=args.scrape_interval,
        rounds=args.rounds,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: the load generator runs on uvloop to keep the clients' own cost low."""
    return uvloop.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
