"""Fan-out benchmark: eventbridge against the bare servers it is built on, in the same run.

For each client count, every server gets the same raw clients (`rawclients`, several processes,
cheap: parsing by hand, about as costly per delivery as eventbridge itself) and the same events:

- burst: N events as fast as the server can deliver them to every client. eventbridge's events
  are published while it is stopped (SIGSTOP) and delivered from the log once it continues (timed
  from SIGCONT); the bare servers loop over their clients (`bareservers`). Deliveries per second,
  and the server's CPU per delivery.
- paced, for a few seconds, at 25 % and 50 % of the bare server's burst rate, for the bare
  server and for eventbridge (the same absolute rate, so the latencies compare), and for
  eventbridge also at 25 % and 50 % of its own burst rate (its CPU per delivery at that load
  against its burst's): server CPU per delivery, publish-to-arrival latency p50/p99/max. During
  eventbridge's paced phases a raw aio-pika consumer of a second stream bound like its log
  (`brokerfloor`) records the same events' publish → consume p99: the broker's share, which
  the bare servers, building events in-process, do not pay.

Servers: eventbridge over its native WebSocket (`ws`) and Socket.IO (`eio`), a bare FastAPI
broadcast loop (`bare`), python-socketio's room emit (`socketio`). eventbridge's garbage
collection pauses during each phase are read from its /metrics (the longest, as the histogram
bucket it fell in, and how many took over 20 ms).

    python -m tests.performance.bench_fanout                 # 100 and 1000 clients
    python -m tests.performance.bench_fanout --clients 100 --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.helpers import delete_prefix
from tests.performance.brokerfloor import BrokerFloor, floor_queue
from tests.performance.fanout_phases import (
    ARTIFACTS,
    Publisher,
    Result,
    bare_server,
    clients,
    eventbridge,
    measure,
)

Rates = Callable[[float], list[tuple[float, str]]]
"""From a server's burst rate (events per second per client), its paced rates and their labels."""


def client_processes(count: int) -> int:
    """How many processes the raw clients are spread over."""
    return max(1, min(4, count // 250 + 1))


async def run_server(
    name: str, count: int, events: int, rates: Rates, options: argparse.Namespace
) -> list[Result]:
    """A burst, then paced phases at `rates(burst rate)`, for one server and client count."""
    processes = client_processes(count)
    if name not in ("ws", "eio"):
        return await run_bare(name, count, events, rates, options)
    results: list[Result] = []
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        async with eventbridge(options.amqp_url, prefix, options.bridge_env) as (child, port):
            publisher = Publisher(options.amqp_url, prefix)
            async with clients(f"http://127.0.0.1:{port}", name, count, processes) as group:

                async def stored() -> None:
                    child.pause()
                    try:
                        await publisher.burst(events)
                    except BaseException:
                        child.resume()
                        raise

                async def burst() -> None:
                    child.resume()

                common = {"group": group, "server_pid": child.pid, "count": count}
                common |= {"idle": IDLE, "metrics_port": port}
                results.append(
                    await measure(
                        name, "burst", events=events, trigger=burst, prepare=stored, **common
                    )
                )
                # Opened after the burst, so it does not consume the burst's events meanwhile.
                async with BrokerFloor(options.amqp_url, prefix) as floor:
                    for rate, label in rates(results[0].deliveries_per_second / count):

                        async def pace(rate: float = rate) -> None:
                            await publisher.paced(rate, options.paced_seconds)

                        total = int(rate * options.paced_seconds)
                        floor.record()
                        result = await measure(
                            name, f"paced {label}", events=total, trigger=pace, **common
                        )
                        result.broker_p50_ms, result.broker_p99_ms = floor.stop()
                        if result.broker_p99_ms is not None:
                            result.notes.append(f"broker p99 {result.broker_p99_ms:.1f} ms")
                        results.append(result)
    finally:
        await delete_prefix(options.amqp_url, prefix, extra_queues=[floor_queue(prefix)])
    return results


async def run_bare(
    name: str, count: int, events: int, rates: Rates, options: argparse.Namespace
) -> list[Result]:
    """`run_server` for a bare server: its loops are triggered over HTTP."""
    results: list[Result] = []
    processes = client_processes(count)
    kind = "bare" if name == "bare" else "sio"
    async with bare_server(name) as (child, port):
        url = f"http://127.0.0.1:{port}"
        async with (
            httpx.AsyncClient(timeout=600) as http,
            clients(url, kind, count, processes) as group,
        ):

            async def burst() -> None:
                await http.post(f"{url}/burst", params={"n": events})

            common = {"group": group, "server_pid": child.pid, "count": count, "idle": IDLE}
            results.append(await measure(name, "burst", events=events, trigger=burst, **common))
            for rate, label in rates(results[0].deliveries_per_second / count):

                async def pace(rate: float = rate) -> None:
                    params = {"rate": rate, "seconds": options.paced_seconds}
                    await http.post(f"{url}/paced", params=params)

                total = int(rate * options.paced_seconds)
                results.append(
                    await measure(name, f"paced {label}", events=total, trigger=pace, **common)
                )
    return results


def table(results: list[Result]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| server | phase | clients | events | deliveries/s | server µs/delivery | p50 ms | p99 ms "
        "| max ms | CPU server/clients/broker/bench/other | notes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def number(value: float | None, digits: int = 1) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    for r in results:
        cpu = "/".join(
            number(r.cpu.get(k), 2) for k in ("server", "clients", "broker", "bench", "other")
        )
        notes = ", ".join(note for note in r.notes if note) or ("ok" if r.complete else "")
        lines.append(
            f"| {r.server} | {r.phase} | {r.clients} | {r.events} | "
            f"{number(r.deliveries_per_second, 0)} | {number(r.server_us_per_delivery)} | "
            f"{number(r.p50_ms)} | {number(r.p99_ms)} | {number(r.max_ms)} | {cpu} | {notes} |"
        )
    return "\n".join(lines)


IDLE = 10.0
"""A phase stops waiting once no client got anything for this long (seconds)."""


def ratios(results: list[Result]) -> list[str]:
    """eventbridge ÷ its baseline at the same phase (burst; paced at the same absolute rate),
    and eventbridge's CPU per delivery when paced ÷ its own burst's."""
    lines = []
    pairs = dict(PAIRS)
    for result in results:
        base_name = pairs.get(result.server)
        if base_name is None:
            continue
        same = (
            b
            for b in results
            if b.server == base_name and b.clients == result.clients and b.phase == result.phase
        )
        base = next(same, None)
        where = f"{result.server}, {result.clients} clients, {result.phase}"
        if base is not None:
            line = (
                f"{where} ÷ {base_name}: deliveries/s "
                f"{result.deliveries_per_second / base.deliveries_per_second:.2f}"
            )
            if result.server_us_per_delivery and base.server_us_per_delivery:
                cpu = result.server_us_per_delivery / base.server_us_per_delivery
                line += f", CPU/delivery {cpu:.2f}"
            if result.p99_ms and base.p99_ms:
                line += f", p99 {result.p99_ms / base.p99_ms:.2f}"
            if result.p99_ms and result.broker_p99_ms:
                line += f" (p99 ÷ the broker's own: {result.p99_ms / result.broker_p99_ms:.2f})"
            lines.append(line)
        burst = next(
            (
                b
                for b in results
                if b.server == result.server and b.clients == result.clients and b.phase == "burst"
            ),
            None,
        )
        if (
            result.phase.startswith("paced")
            and burst is not None
            and result.server_us_per_delivery
            and burst.server_us_per_delivery
        ):
            cpu = result.server_us_per_delivery / burst.server_us_per_delivery
            lines.append(f"{where}: CPU/delivery ÷ its burst's {cpu:.2f}")
    return lines


def main() -> int:
    """Run the benchmark and print the table and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="100,1000", help="client counts (comma-separated)")
    parser.add_argument("--servers", default="ws,bare,eio,socketio")
    parser.add_argument("--deliveries", type=int, default=300_000, help="per burst (all clients)")
    parser.add_argument("--paced-seconds", type=float, default=5.0)
    parser.add_argument(
        "--loads", default="0.25,0.5", help="paced rates, as shares of a burst rate"
    )
    parser.add_argument("--quick", action="store_true", help="smaller bursts, 2 s paced runs")
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("EVENTBRIDGE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    )
    parser.add_argument("--bridge-env", action="append", default=[], metavar="EVENTBRIDGE_X=V")
    parser.add_argument("--output", type=Path, default=ARTIFACTS / "bench_fanout.json")
    options = parser.parse_args()
    options.bridge_env = dict(item.split("=", 1) for item in options.bridge_env)
    if options.quick:
        options.deliveries, options.paced_seconds = 100_000, 2.0
    ARTIFACTS.mkdir(exist_ok=True)
    options.output.parent.mkdir(exist_ok=True)
    results = asyncio.run(measure_all(options))
    print(table(results))
    print()
    for line in ratios(results):
        print(f"  {line}")
    options.output.write_text(json.dumps([r.__dict__ for r in results], indent=2))
    print(f"\nwritten: {options.output}")
    return 0 if all(r.complete for r in results) else 1


PAIRS = (("ws", "bare"), ("eio", "socketio"))
"""Each eventbridge transport and the bare server it is measured against."""


async def measure_all(options: argparse.Namespace) -> list[Result]:
    """Per client count and pair: the bare server's burst and paced phases at shares of its
    burst rate; then eventbridge's burst, paced phases at those same rates (for latency at the
    same absolute rate), and at shares of its own burst rate (for its CPU per delivery)."""
    results: list[Result] = []
    loads = [float(share) for share in options.loads.split(",")]
    servers = options.servers.split(",")
    for count in (int(c) for c in options.clients.split(",")):
        events = max(10, options.deliveries // count)
        for own, base in PAIRS:
            base_rate: float | None = None
            if base in servers:
                print(f"… {base}, {count} clients", file=sys.stderr)
                measured = await run_server(base, count, events, at_shares(loads, base), options)
                base_rate = measured[0].deliveries_per_second / count
                results.extend(measured)
                print(table(measured), file=sys.stderr)
            if own in servers:
                print(f"… {own}, {count} clients", file=sys.stderr)

                def rates(
                    burst: float, base_rate: float | None = base_rate, base: str = base
                ) -> list[tuple[float, str]]:
                    same = at_shares(loads, base)(base_rate) if base_rate else []
                    return same + at_shares(loads, "its")(burst)

                measured = await run_server(own, count, events, rates, options)
                results.extend(measured)
                print(table(measured), file=sys.stderr)
    return results


def at_shares(loads: list[float], whose: str) -> Rates:
    """Paced rates at `loads` (shares) of a burst rate, labelled with whose burst it was."""

    def rates(burst: float) -> list[tuple[float, str]]:
        return [(share * burst, f"{share:.0%} of {whose} burst") for share in loads]

    return rates


if __name__ == "__main__":
    sys.exit(main())
