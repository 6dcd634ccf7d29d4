"""The eventbridge measurements: bursts, drains and paced runs against `eventbridge serve`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aio_pika
import httpx

from producers import EventPublisher
from tests.performance.context import ARTIFACTS, ROOT, Bench, Options, no_gc, settle, wait_below
from tests.performance.processes import ChildProcess, CpuMeter, free_port, rss_mb, wait_until_ready
from tests.performance.publisher_child import PublisherProcess, bench_envelope
from tests.performance.rawreceiver import RawReceiver
from tests.performance.receivers import (
    Receiver,
    check,
    close_all,
    last_arrival,
    latencies_ms,
    open_all,
    percentile,
    wait_for_all,
)


async def open_bridge_receivers(port: int, project: str, sio: int, ws: int) -> list[Receiver]:
    """Connect `sio` Socket.IO and `ws` native WebSocket clients to one project's room."""

    async def open_sio() -> Receiver:
        receiver = RawReceiver("socketio", "progress_update")
        await receiver.connect(f"http://127.0.0.1:{port}")
        reply = await receiver.call("join-project", project)
        if not (isinstance(reply, dict) and reply.get("ok")):
            await receiver.close()
            raise RuntimeError(f"join-project was refused: {reply!r}")
        return receiver

    async def open_ws() -> Receiver:
        receiver = RawReceiver("websocket")
        await receiver.connect(f"ws://127.0.0.1:{port}/ws/ai/{project}")
        await receiver.wait_subscribed()
        return receiver

    return await open_all([open_sio] * sio + [open_ws] * ws)


def describe_latency(receivers: list[Receiver]) -> dict[str, Any]:
    """p50/p99/max publish→receive latency in ms, overall and per transport."""
    result: dict[str, Any] = {}
    for transport in ("socketio", "websocket"):
        group = [r for r in receivers if r.transport == transport]
        if group:
            ordered = latencies_ms(group)
            result[transport] = {
                "p50": percentile(ordered, 0.5),
                "p99": percentile(ordered, 0.99),
                "max": ordered[-1] if ordered else None,
                "last_arrival": last_arrival(group),
            }
    ordered = latencies_ms(receivers)
    result["all"] = {
        "p50": percentile(ordered, 0.5),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1] if ordered else None,
    }
    return result


@dataclass(frozen=True)
class Phase:
    """One eventbridge measurement.

    Attributes:
        name: the label in the table.
        sio: Socket.IO clients.
        ws: native WebSocket clients.
        count: events published.
        mode: "burst" (one `publish_batch` while the bridge runs), "drain" (the same batch
            published while the bridge process is stopped with SIGSTOP, then SIGCONT: the
            bridge's own consume-and-deliver rate, publishing excluded) or "paced".
        rate: events/s of a paced run.
    """

    name: str
    sio: int
    ws: int
    count: int
    mode: Literal["burst", "drain", "paced"]
    rate: float | None = None


@dataclass(frozen=True)
class Target:
    """The bridge under test, and the in-process publisher of the paced runs."""

    bench: Bench
    bridge: ChildProcess
    port: int
    publisher: EventPublisher


async def bridge_phase(target: Target, phase: Phase) -> dict[str, Any]:
    """Run one eventbridge measurement and return its row.

    A burst builds all envelopes and hands them to one `publish_batch`; a drain does the same
    with the bridge stopped and times from SIGCONT; a paced run publishes small batches every
    10 ms so that the published total follows the rate. Every phase uses a fresh project, so
    no earlier event or room state reaches its clients.
    """
    project = f"p-{uuid.uuid4().hex[:12]}"
    clients, count = phase.sio + phase.ws, phase.count
    bridge = target.bridge
    receivers = await open_bridge_receivers(target.port, project, phase.sio, phase.ws)
    try:
        drive = _drive_paced if phase.mode == "paced" else _drive_batch
        started, published, cpu = await drive(target, phase, project, receivers)
    finally:
        await close_all(receivers)
    if bridge.exited:
        raise RuntimeError(
            f"the bridge exited (code {bridge.returncode}) during {phase.name}; its log ends:\n"
            f"{bridge.log_tail()}"
        )
    last = last_arrival(receivers) or time.time()
    wall = max(last - started, 1e-9)
    return {
        "phase": phase.name,
        "kind": phase.mode,
        "clients": clients,
        "socketio_clients": phase.sio,
        "websocket_clients": phase.ws,
        "events": count,
        "target_rate": phase.rate,
        "publish_seconds": published - started if phase.mode != "drain" else None,
        "publish_rate": count / max(published - started, 1e-9) if phase.mode != "drain" else None,
        "wall_seconds": wall,
        "events_per_s": count / wall,
        "deliveries_per_s": count * clients / wall,
        # In a drain every event waited for SIGCONT: its latency says nothing.
        "latency_ms": describe_latency(receivers) if phase.mode != "drain" else None,
        "client_done_s": spread(receivers, started),
        "timeline": timeline(receivers, started),
        "cpu_cores": cpu,
        "server_rss_mb": rss_mb(bridge.pid),
        "check": check(receivers, count),
    }


Timing = tuple[float, float, dict[str, float | None]]
"""When a measurement started and finished publishing (`time.time()`), and the CPU it used."""


async def _drive_paced(
    target: Target, phase: Phase, project: str, receivers: list[Receiver]
) -> Timing:
    """Publish at the phase's rate from this process, then wait for every client."""
    meter = CpuMeter({**target.bench.pids(), "server": target.bridge.pid})
    meter.start()
    started = time.time()
    await publish_paced(target.publisher, project, phase.count, phase.rate or 1.0)
    published = time.time()
    await _wait(target.bench, receivers, phase)
    return started, published, meter.stop()


async def _drive_batch(
    target: Target, phase: Phase, project: str, receivers: list[Receiver]
) -> Timing:
    """Publish one `publish_batch` from a publisher child process (a burst or a drain)."""
    bench, bridge = target.bench, target.bridge
    meter = CpuMeter({**bench.pids(), "server": bridge.pid})
    timeout = 60 + phase.count / 100
    child_process = PublisherProcess(bench.options.amqp_url, bench.prefix, project, phase.count)
    async with child_process as child:
        if phase.mode == "drain":
            async with bridge.paused():
                child.go()
                await child.result(timeout)
                meter.start()
                started = time.time()  # the clock starts as the bridge is continued
            await _wait(bench, receivers, phase)
            # The child published before the clock started: its CPU is not counted.
            return started, started, meter.stop()
        meter.start()
        child.go()
        waiting = asyncio.create_task(_wait(bench, receivers, phase))
        try:
            sent = await child.result(timeout)
            await waiting
        finally:
            waiting.cancel()
        # The child's CPU is the load generator's too ("bench").
        cpu = meter.stop(extra={"bench": float(sent["cpu_seconds"])})
        return float(sent["started"]), float(sent["published"]), cpu


async def _wait(bench: Bench, receivers: list[Receiver], phase: Phase) -> None:
    """Wait (bounded) until every client got every event, stopped, or stalled."""
    deadline = 60 + phase.count * len(receivers) / 2000
    await wait_for_all(receivers, phase.count, stall=bench.options.stall, deadline=deadline)


def spread(receivers: list[Receiver], started: float) -> dict[str, float | None]:
    """When clients received their last event (seconds after the start): first, median, last."""
    done = sorted(r.arrivals[-1].received_at - started for r in receivers if r.arrivals)
    return {
        "first": done[0] if done else None,
        "median": percentile(done, 0.5),
        "last": done[-1] if done else None,
    }


def timeline(receivers: list[Receiver], started: float, step: float = 0.25) -> list[int]:
    """Deliveries to all clients together in each `step`-second slot after the start."""
    slots: list[int] = []
    for receiver in receivers:
        for arrival in receiver.arrivals:
            index = max(0, int((arrival.received_at - started) / step))
            if index >= len(slots):
                slots.extend([0] * (index + 1 - len(slots)))
            slots[index] += 1
    return slots


async def publish_paced(
    publisher: EventPublisher, project: str, count: int, rate: float, tick: float = 0.01
) -> None:
    """Publish `count` events at `rate` events/s in batches every `tick` seconds.

    Each event's `sent_at` is taken when its batch is built, so latency excludes the pacing.
    The loop is bounded: it ends once every event is published or after three times the
    planned duration plus 30 s.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + 3 * count / rate + 30
    sent = 0
    while sent < count and loop.time() < deadline:
        due = min(count, int((loop.time() - started) * rate) + 1)
        if due > sent:
            await publisher.publish_batch([bench_envelope(project, s) for s in range(sent, due)])
            sent = due
        next_due = started + sent / rate
        await asyncio.sleep(max(0.0, min(tick, next_due - loop.time())))
    if sent < count:
        raise RuntimeError(f"paced publishing fell behind: {sent} of {count} sent in time")


async def prefill(amqp_url: str, prefix: str, count: int, window: int = 500) -> None:
    """Publish `count` valid events for 1000 projects nobody watches (raw aio-pika, confirms
    pipelined), so the bridge measured next holds full history buffers and room state."""
    connection = await aio_pika.connect(
        amqp_url, timeout=10, client_properties={"connection_name": "bench-live-prefill"}
    )
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(f"{prefix}.events")
        slots = asyncio.Semaphore(window)

        async def publish(seq: int) -> None:
            try:
                project = f"fill-{seq % 1000}"
                body = bench_envelope(project, seq).model_dump_json().encode()
                message = aio_pika.Message(
                    body,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                )
                await exchange.publish(message, f"project.{project}.progress_update", timeout=30)
            finally:
                slots.release()

        tasks: list[asyncio.Task[None]] = []
        for seq in range(count):
            await slots.acquire()
            tasks.append(asyncio.create_task(publish(seq)))
        await asyncio.gather(*tasks)


def bridge_command(options: Options) -> list[str]:
    """The command line that starts the bridge under test."""
    if options.server_loop == "uvloop":
        return [sys.executable, "-m", "tests.performance.uvloop_serve"]
    return [str(Path(sys.executable).parent / "eventbridge"), "serve"]


def bridge_phases(options: Options) -> list[Phase]:
    """The eventbridge measurements, in the order they run."""
    n, c = options.events, options.clients
    half = c // 2
    one, many = options.paced_rate, options.paced_rate_many
    return [
        Phase("eventbridge burst, Socket.IO", 1, 0, n, "burst"),
        Phase("eventbridge burst, native WS", 0, 1, n, "burst"),
        Phase("eventbridge drain, Socket.IO", 1, 0, n, "drain"),
        Phase("eventbridge burst, Socket.IO", c, 0, n, "burst"),
        Phase("eventbridge burst, native WS", 0, c, n, "burst"),
        Phase("eventbridge drain, Socket.IO", c, 0, n, "drain"),
        Phase("eventbridge drain, native WS", 0, c, n, "drain"),
        Phase(f"eventbridge paced {one:g}/s, Socket.IO", 1, 0, _paced(options, one), "paced", one),
        Phase(f"eventbridge paced {one:g}/s, native WS", 0, 1, _paced(options, one), "paced", one),
        Phase(
            f"eventbridge paced {many:g}/s, mixed",
            half,
            c - half,
            _paced(options, many),
            "paced",
            many,
        ),
    ]


IDLE_CORES = 0.1
"""A bridge using less than this over a second has finished its start-up work."""


async def wait_idle(pid: int | None, *, longest: float = 120.0) -> None:
    """Wait (up to `longest` seconds) until a freshly started bridge is idle.

    A bridge is ready at once but rebuilds its history and state from the log in the background
    (up to the warm window, 100,000 records), and holds fresh joins until that is done: a room
    that gets more than a client's queue limit of events meanwhile would cut its clients as
    slow. Measuring starts once that work is over, so each run of the bridge measures the same
    steady state however long the log has grown.
    """
    await wait_below(
        {"server": pid}, "server", IDLE_CORES, longest, "waiting for the bridge's start-up work"
    )


async def scrape_metrics(port: int, every: float) -> int:
    """Scrape the bridge's `/metrics` every `every` seconds, as Prometheus would, until
    cancelled; return how many scrapes were made."""
    made = 0
    async with httpx.AsyncClient(timeout=30) as http:
        try:
            while True:
                with contextlib.suppress(httpx.HTTPError):  # a busy bridge answers late
                    (await http.get(f"http://127.0.0.1:{port}/metrics")).raise_for_status()
                    made += 1
                await asyncio.sleep(every)
        except asyncio.CancelledError:
            return made


async def _scrapes(scraper: asyncio.Task[int]) -> int:
    with contextlib.suppress(asyncio.CancelledError):
        return await scraper
    return 0


def _paced(options: Options, rate: float) -> int:
    return max(1, round(rate * options.paced_seconds))


async def run_bridge_phases(
    bench: Bench, variant: str = "", env_extra: dict[str, str] | None = None, scrape: float = 0.0
) -> None:
    """Start `eventbridge serve`, run every eventbridge phase, and stop it.

    A `variant` (the metrics comparison, `tests/performance/metrics_cost.py`) names the rows and
    the bridge's log, adds `env_extra` to the bridge's environment, and with `scrape` > 0 has
    `/metrics` scraped every `scrape` seconds while the phases run.
    """
    options = bench.options
    port = free_port()
    env = {
        **os.environ,
        "EVENTBRIDGE_AMQP_URL": options.amqp_url,
        "EVENTBRIDGE_PREFIX": bench.prefix,
        "EVENTBRIDGE_PORT": str(port),
        "EVENTBRIDGE_AUTH": "anonymous",  # loopback, measured without tokens
        "EVENTBRIDGE_LOG_LEVEL": "warning",
        **options.bridge_env,
        **(env_extra or {}),
    }
    log_path = ARTIFACTS / f"bench_live-bridge{'-' + variant if variant else ''}.log"
    bridge = ChildProcess("eventbridge serve", bridge_command(options), env=env, log_path=log_path)
    async with bridge:
        await wait_until_ready(port, bridge, timeout=60)
        await wait_idle(bridge.pid)
        async with EventPublisher(
            options.amqp_url,
            prefix=bench.prefix,
            source="bench-live",
            connection_name="bench-live-publisher",
            retry_attempts=1,
            publish_timeout=30,
        ) as publisher:
            target = Target(bench, bridge, port, publisher)
            scraper = asyncio.create_task(scrape_metrics(port, scrape)) if scrape else None
            bench.info["server_rss_mb_at_start"] = rss_mb(bridge.pid)
            if options.prefill:
                print(f"… prefill: {options.prefill} events to 1000 other projects", flush=True)
                await prefill(options.amqp_url, bench.prefix, options.prefill)
                await asyncio.sleep(2)  # let the bridge take them in before measuring
                bench.info["server_rss_mb_after_prefill"] = rss_mb(bridge.pid)
            for phase in bridge_phases(options):
                if not options.selected(f"{phase.name}, {phase.sio + phase.ws} client"):
                    continue
                clients = phase.sio + phase.ws
                print(f"… {phase.name}, {clients} client(s), {phase.count} events", flush=True)
                await settle(bench, bridge.pid)
                with no_gc():
                    row = await bridge_phase(target, phase)
                if variant:
                    row["variant"] = variant
                    row["phase"] = f"{row['phase']} [{variant}]"
                bench.rows.append(row)
            if scraper is not None:
                scraper.cancel()
                bench.info.setdefault("scrapes", {})[variant] = await _scrapes(scraper)
    bench.info["bridge_log"] = str(log_path.relative_to(ROOT))
    bench.info["bridge_log_tail"] = bridge.log_tail(40)
    bench.info["bridge_slow_consumer_disconnects"] = sum(
        "not reading" in line for line in bridge.log_tail(100_000).splitlines()
    )
