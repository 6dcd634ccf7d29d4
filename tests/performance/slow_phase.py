"""One measurement of `bench_slow_consumer`: normal clients (plus, maybe, one stuck client) in a
fresh project's room while events of ~`size` bytes are published at a steady rate.

The publisher runs in the benchmark's own process, which holds nothing else busy: the normal
clients live in child processes, the stuck client never reads, and the broker-leg probe
(`slow_probe.LogProbe`) takes 200 messages a second. A sampler task reads the bridge's resident
memory, the stuck connection's TCP queues and new lines of the bridge's log every 0.25 s, and
the cores each process (and the rest of the machine) used in every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import uuid
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from producers import EventPublisher
from producers.encoding import encode
from schemas import Envelope, utc_now
from tests.performance.context import ARTIFACTS, DISTURBED_CORES, wait_quiet
from tests.performance.processes import CpuMeter, http_json, rss_mb
from tests.performance.receivers import percentile
from tests.performance.resume_phases import BridgeUnderTest
from tests.performance.slow_clients import EVENT_TYPE, ClientsProcess, event_id
from tests.performance.slow_probe import LogProbe
from tests.performance.slow_stuck import StuckClient, StuckTransport

SAMPLE_EVERY = 0.25
"""Seconds between two samples of memory and the bridge's log."""
TCP_EVERY = 1.0
"""Seconds between two readings of the stuck connection's TCP queues."""
SOURCE = "bench-slow-consumer"
DEPLOYMENT = "bench-deploy"
Pids = dict[str, int | None]
"""Named processes whose CPU is accounted: `bench` (this process) and `broker`."""


@dataclass(frozen=True)
class Load:
    """What every phase publishes and who receives it.

    Attributes:
        clients: normal (reading) clients.
        sio_clients: how many of them use Socket.IO; the rest are native WebSocket clients.
        processes: child processes the normal clients are spread over.
        rate: events per second.
        size: bytes of each event's JSON body, roughly (the line is padded to reach it).
        seconds: how long each phase publishes.
        stall: seconds without any arrival after which a child stops waiting.
        rcvbuf: the stuck client's `SO_RCVBUF`.
        linger: seconds to keep the stuck client stuck after the normal clients left, watching
            whether the bridge closes its end of the connection.
        wait_quiet: seconds to wait, before each phase, for other processes to go quiet.
        amqp_url: the broker.
    """

    clients: int
    sio_clients: int
    processes: int
    rate: float
    size: int
    seconds: float
    stall: float
    rcvbuf: int
    linger: float
    wait_quiet: float
    amqp_url: str

    @property
    def count(self) -> int:
        """Events published per phase."""
        return max(1, round(self.rate * self.seconds))


@dataclass(frozen=True)
class Phase:
    """One measurement: a name and the transport of its stuck client (None: the baseline)."""

    name: str
    stuck: StuckTransport | None


# -- the events --------------------------------------------------------------------------------


class Events:
    """Builds a phase's events: `deployment_log` envelopes whose `data` carries `seq` and
    `sent_at` (extra fields), and whose `line` pads the body to about `size` bytes.

    `deployment_log` is never coalesced by the bridge (it only replaces older queued
    `progress_update`s of the same agent) and carries no snapshot state, so every client must
    receive every event, and a sequence number proves it.
    """

    def __init__(self, project: str, tag: str, size: int) -> None:
        self.project = project
        self.tag = tag
        probe = self._envelope(0, time.time(), "")
        overhead = len(probe.model_dump_json()) + len(',"offset":1000000}')
        self.line_length = max(0, min(16_000, size - overhead))

    def _envelope(self, seq: int, now: float, line: str) -> Envelope:
        return Envelope(
            id=event_id(self.tag, seq),
            type=EVENT_TYPE,
            schema_version=1,
            project_id=self.project,
            source=SOURCE,
            occurred_at=utc_now(),
            data={
                "seq": seq,
                "sent_at": now,
                "deployment_id": DEPLOYMENT,
                "stream": "stdout",
                "line": line,
            },
        )

    def envelope(self, seq: int) -> Envelope:
        """Event `seq`, stamped now."""
        block = f"{seq:07d} "
        line = (block * (self.line_length // len(block) + 1))[: self.line_length]
        return self._envelope(seq, time.time(), line)

    def body_bytes(self) -> int:
        """The size of one published body, as the SDK encodes it (they differ by a few bytes)."""
        return len(encode(self.envelope(0), None, max_body_bytes=None).body)


async def publish_paced(
    publisher: EventPublisher,
    events: Events,
    count: int,
    rate: float,
    *,
    progress: Any = None,
    tick: float = 0.01,
) -> dict[str, float]:
    """Publish `count` events at `rate` events/s in small batches every `tick` seconds.

    Each event's `sent_at` is taken as its batch is built. Bounded: it gives up after three
    times the planned duration plus 30 s. `progress(sent)` is called about once a second.

    Returns:
        when publishing started and ended (`time.time()`) and the rate reached.
    """
    loop = asyncio.get_running_loop()
    started_at = time.time()
    started = loop.time()
    deadline = started + 3 * count / rate + 30
    sent = 0
    next_report = started + 1.0
    while sent < count and loop.time() < deadline:
        due = min(count, int((loop.time() - started) * rate) + 1)
        if due > sent:
            await publisher.publish_batch([events.envelope(seq) for seq in range(sent, due)])
            sent = due
        now = loop.time()
        if progress is not None and now >= next_report:
            progress(sent)
            next_report += 1.0
        await asyncio.sleep(max(0.0, min(tick, started + sent / rate - loop.time())))
    if sent < count:
        raise RuntimeError(f"paced publishing fell behind: {sent} of {count} sent in time")
    ended_at = time.time()
    return {
        "started_at": started_at,
        "ended_at": ended_at,
        "rate": count / max(ended_at - started_at, 1e-9),
    }


# -- sampling ----------------------------------------------------------------------------------


class Sample(NamedTuple):
    """One look at the bridge: when (s since the sampler's origin), its RSS (MiB), and the stuck
    connection as the kernel sees it (its bridge end's state and unsent bytes, and the bytes
    the stuck client did not read)."""

    t: float
    rss_mb: float | None
    server_state: str | None
    send_q: int | None
    recv_q: int | None


@dataclass
class Sampler:
    """Samples the bridge every `every` seconds: RSS, the stuck connection's TCP queues (read
    every `TCP_EVERY` s), and the lines the bridge logs meanwhile (slow-consumer disconnects
    among them).

    With `cpu` (named pids), it also measures the cores each of them and the rest of the
    machine used in every second, so that a latency spike can be matched with its cause.

    Attributes:
        samples: every sample taken.
        log_lines: (seconds since `origin`, line) of every line the bridge logged.
        cpu_seconds: cores per name and "other" in each whole second after `origin`.
    """

    pid: int | None
    log_path: Path
    stuck: StuckClient | None
    every: float = SAMPLE_EVERY
    cpu: Pids | None = None
    origin: float = field(default_factory=time.time)
    samples: list[Sample] = field(default_factory=list)
    log_lines: list[tuple[float, str]] = field(default_factory=list)
    cpu_seconds: list[dict[str, float | None]] = field(default_factory=list)
    loop_lags_ms: array[float] = field(default_factory=lambda: array("d"))
    _log_offset: int = 0
    _queues: dict[str, Any] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        """Start sampling (the log is read from its current end)."""
        with contextlib.suppress(OSError):
            self._log_offset = self.log_path.stat().st_size
        if self.stuck is not None:
            self._queues = self.stuck.queues()
        self.sample()
        self._tasks.append(asyncio.create_task(self._run()))
        self._tasks.append(asyncio.create_task(self._run_lag()))
        if self.cpu is not None:
            self._tasks.append(asyncio.create_task(self._run_cpu(self.cpu)))
        if self.stuck is not None:
            self._tasks.append(asyncio.create_task(self._run_queues(self.stuck)))

    async def stop(self) -> None:
        """Take a last sample and stop."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.sample()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.sample()

    async def _run_lag(self) -> None:
        # How late this event loop wakes up: the publisher stamps `sent_at` in this loop, so a
        # stall here would show as latency of the bridge.
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            self.loop_lags_ms.append((time.perf_counter() - before - 0.01) * 1000.0)

    async def _run_queues(self, stuck: StuckClient) -> None:
        # Reading /proc/net/tcp costs milliseconds of kernel time: once a second, in a thread,
        # so neither the publisher nor the probe in this event loop waits for it.
        while True:
            await asyncio.sleep(TCP_EVERY)
            self._queues = await asyncio.to_thread(stuck.queues)

    async def _run_cpu(self, pids: Pids) -> None:
        meter = CpuMeter(pids)
        meter.start()
        while True:
            second = len(self.cpu_seconds) + 1
            await asyncio.sleep(max(0.0, self.origin + second - time.time()))
            self.cpu_seconds.append(meter.stop())
            meter = CpuMeter(pids)
            meter.start()

    def sample(self) -> Sample:
        """Take one sample now (and read what the bridge logged since the last one)."""
        now = time.time() - self.origin
        queues = self._queues
        sample = Sample(
            now,
            rss_mb(self.pid),
            queues.get("server_state"),
            queues.get("server_send_q"),
            queues.get("client_recv_q"),
        )
        self.samples.append(sample)
        with contextlib.suppress(OSError), self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            text = log.read()
            complete = text[: text.rfind(b"\n") + 1]
            self._log_offset += len(complete)
            for line in complete.decode(errors="replace").splitlines():
                if line.strip():
                    self.log_lines.append((now, line))
        return sample

    @property
    def peak_rss(self) -> float | None:
        """The highest RSS sampled."""
        values = [sample.rss_mb for sample in self.samples if sample.rss_mb is not None]
        return max(values) if values else None

    def slow_disconnects(self) -> list[tuple[float, str]]:
        """Log lines of clients disconnected as slow consumers."""
        return [(t, line) for t, line in self.log_lines if "not reading" in line]

    def largest(self, column: str) -> int | None:
        """The largest value sampled of `send_q` or `recv_q`."""
        values = [getattr(sample, column) for sample in self.samples]
        present = [value for value in values if value is not None]
        return max(present) if present else None


# -- one phase ---------------------------------------------------------------------------------


def split(total: int, parts: int) -> list[int]:
    """`total` spread over `parts` as evenly as possible."""
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} MiB"


def _kib(value: int | None) -> str:
    return "-" if value is None else f"{value / 1024:,.0f} KiB"


async def connections(port: int) -> dict[str, Any] | None:
    """The bridge's client connections by transport, as `/health` counts them."""
    with contextlib.suppress(RuntimeError):
        health = await http_json(port, "/health")
        services = health.get("services", {}) if isinstance(health, dict) else {}
        return {
            "websocket": services.get("websocket", {}).get("connections"),
            "socketio": services.get("socketio", {}).get("connections"),
        }
    return None


def describe(latencies: array[float]) -> dict[str, float | int | None]:
    """Percentiles of a set of latencies (ms)."""
    ordered = sorted(latencies)
    return {
        "deliveries": len(ordered),
        "p50": percentile(ordered, 0.5),
        "p90": percentile(ordered, 0.9),
        "p99": percentile(ordered, 0.99),
        "p999": percentile(ordered, 0.999),
        "max": ordered[-1] if ordered else None,
    }


@dataclass
class PhaseRun:
    """The parts of one running phase."""

    load: Load
    phase: Phase
    bridge: BridgeUnderTest
    project: str = field(default_factory=lambda: f"slow-{uuid.uuid4().hex[:12]}")
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    stuck: StuckClient | None = None
    row: dict[str, Any] = field(default_factory=dict)

    def children(self, scratch: Path) -> list[ClientsProcess]:
        """The child processes of normal clients (not started)."""
        load = self.load
        processes = min(load.processes, load.clients)
        ws_split = split(load.clients - load.sio_clients, processes)
        sio_split = split(load.sio_clients, processes)
        return [
            ClientsProcess(
                index + 1,
                port=self.bridge.port,
                project=self.project,
                tag=self.tag,
                ws=ws_split[index],
                sio=sio_split[index],
                count=load.count,
                stall=load.stall,
                deadline=3 * load.seconds + 60 + load.stall,
                latencies=scratch / f"latencies-{index + 1}.bin",
                log_path=ARTIFACTS / f"bench_slow_consumer-clients-{index + 1}.log",
            )
            for index in range(processes)
        ]

    def progress(self, sampler: Sampler) -> Any:
        """A progress printer for `publish_paced`."""

        def show(sent: int) -> None:
            sample = sampler.samples[-1]
            line = f"    {sample.t:4.0f} s  published {sent:>6}  bridge RSS {_mib(sample.rss_mb)}"
            if self.stuck is not None:
                line += f"  stuck socket: bridge send-q {_kib(sample.send_q)}, client recv-q "
                line += _kib(sample.recv_q)
                slow = sampler.slow_disconnects()
                if slow:
                    line += f"  (disconnected as slow at {slow[0][0]:.1f} s)"
            print(line, flush=True)

        return show


async def run_phase(
    load: Load,
    phase: Phase,
    bridge: BridgeUnderTest,
    publisher: EventPublisher,
    *,
    prefix: str,
    pids: Pids,
) -> dict[str, Any]:
    """Run one phase and return its row (tests/performance/README.md describes every field)."""
    run = PhaseRun(load, phase, bridge)
    child, row = bridge.child, run.row
    events = Events(run.project, run.tag, load.size)
    row.update(
        {
            "phase": phase.name,
            "stuck_transport": phase.stuck,
            "project": run.project,
            "clients": load.clients,
            "websocket_clients": load.clients - load.sio_clients,
            "socketio_clients": load.sio_clients,
            "events": load.count,
            "body_bytes": events.body_bytes(),
            "target_rate": load.rate,
        }
    )
    with tempfile.TemporaryDirectory(prefix="bench-slow-") as scratch:
        async with contextlib.AsyncExitStack() as stack:
            children = [await stack.enter_async_context(c) for c in run.children(Path(scratch))]
            await asyncio.gather(*(c.ready(timeout=120) for c in children))
            if phase.stuck is not None:
                run.stuck = StuckClient(phase.stuck, bridge.port, run.project, load.rcvbuf)
                stack.callback(run.stuck.close)
                await run.stuck.open()
                row["stuck_join_reply"] = run.stuck.join_reply
            child_pids = {c.name: c.pid for c in children}
            metered = {**pids, **child_pids, "server": child.pid}
            await wait_quiet(load.wait_quiet, metered)
            row["connections_before"] = await connections(bridge.port)
            row["rss_before_mb"] = rss_mb(child.pid)
            sampler = Sampler(child.pid, child.log_path, run.stuck, cpu=metered)
            meter = CpuMeter(metered)
            routing_key = f"project.{run.project}.{EVENT_TYPE}"
            async with LogProbe(load.amqp_url, f"{prefix}.log", routing_key) as probe:
                meter.start()
                sampler.start()
                for clients in children:
                    clients.send("go")
                published = await publish_paced(
                    publisher, events, load.count, load.rate, progress=run.progress(sampler)
                )
                results = await asyncio.gather(
                    *(c.result(timeout=3 * load.seconds + 120 + load.stall) for c in children)
                )
                cpu = meter.stop()
                await sampler.stop()
            row["rss_end_mb"] = rss_mb(child.pid)
            await asyncio.gather(*(c.stop() for c in children))  # the normal clients leave
            if run.stuck is not None:
                await asyncio.sleep(0.5)
                row["stuck_fate"] = await stuck_fate(run.stuck, bridge, load.linger, sampler)
        await asyncio.sleep(1.0)
        row["connections_after"] = await connections(bridge.port)
        row["rss_after_mb"] = rss_mb(child.pid)
        by_transport = {"websocket": array("d"), "socketio": array("d")}
        arrivals = {"websocket": array("d"), "socketio": array("d")}
        for result in results:
            data = array("d")
            data.frombytes(await asyncio.to_thread(Path(result["latency_file"]).read_bytes))
            half, first = len(data) // 2, int(result["latencies"]["websocket"])
            by_transport["websocket"].extend(data[:first])
            by_transport["socketio"].extend(data[first:half])
            arrivals["websocket"].extend(data[half : half + first])
            arrivals["socketio"].extend(data[half + first :])
    if child.exited:
        raise RuntimeError(
            f"the bridge exited (code {child.returncode}) during {phase.name}:\n{child.log_tail()}"
        )
    everything = by_transport["websocket"] + by_transport["socketio"]
    arrived = arrivals["websocket"] + arrivals["socketio"]
    publish_start = published["started_at"] - sampler.origin
    quiet = quiet_seconds(sampler, published["started_at"], load.seconds)
    row.update(
        {
            "publish": {
                "seconds": published["ended_at"] - published["started_at"],
                "rate": published["rate"],
            },
            "latency_ms": describe(everything),
            "quiet_seconds": quiet,
            "latency_ms_quiet_seconds": describe(
                in_seconds(everything, arrived, published["started_at"], set(quiet))
            ),
            "latency_ms_by_transport": {
                name: describe(values) for name, values in by_transport.items() if values
            },
            "cpu_cores": cpu_row(cpu, list(child_pids), results),
            "rss_peak_mb": sampler.peak_rss,
            "clients_result": merge_clients(results),
            "broker_leg_latency_ms": describe(probe.latencies),
            "bench_loop_lag_ms": describe(sampler.loop_lags_ms),
            "timeline": timeline(results, probe, sampler, published["started_at"]),
            "samples": [
                {**sample._asdict(), "t": round(sample.t - publish_start, 2)}
                for sample in sampler.samples
            ],
            "bridge_log": [
                {"t": round(t - publish_start, 2), "line": line} for t, line in sampler.log_lines
            ],
        }
    )
    if run.stuck is not None:
        slow = sampler.slow_disconnects()
        row["stuck"] = {
            "transport": phase.stuck,
            "rcvbuf": load.rcvbuf,
            "slow_consumer_log": [
                {"t": round(t - publish_start, 2), "line": line} for t, line in slow
            ],
            "disconnected_as_slow_after_s": round(slow[0][0] - publish_start, 2) if slow else None,
            "events_published_by_then": (
                min(load.count, round((slow[0][0] - publish_start) * load.rate)) if slow else None
            ),
            "server_send_q_max": sampler.largest("send_q"),
            "client_recv_q_max": sampler.largest("recv_q"),
            **row.pop("stuck_fate"),
        }
    return row


async def stuck_fate(
    stuck: StuckClient, bridge: BridgeUnderTest, linger: float, sampler: Sampler
) -> dict[str, Any]:
    """After the normal clients left: does the bridge still hold the stuck connection? Keep it
    stuck `linger` seconds more (watching whether the bridge closes its end), then unstick it
    and describe what it had been sent."""
    fate: dict[str, Any] = {
        "queues_at_end": stuck.queues(),
        "connections_at_end": await connections(bridge.port),
    }
    if linger > 0:
        print(f"    keeping the stuck client stuck {linger:g} s more …", flush=True)
        watch = Sampler(bridge.child.pid, bridge.child.log_path, stuck, every=1.0)
        watch.start()
        gone_at: float | None = None
        while time.time() - watch.origin < linger:
            await asyncio.sleep(1.0)
            if watch.samples[-1].server_state in (None, "CLOSE", "TIME_WAIT") and gone_at is None:
                gone_at = watch.samples[-1].t
        await watch.stop()
        fate["linger"] = {
            "seconds": linger,
            "bridge_end_closed_after_s": gone_at,
            "states": sorted({str(sample.server_state) for sample in watch.samples}),
            "rss_mb": [watch.samples[0].rss_mb, watch.samples[-1].rss_mb],
            "bridge_log": [line for _, line in watch.log_lines],
            "connections": await connections(bridge.port),
        }
        shift = watch.origin - sampler.origin
        sampler.log_lines.extend((t + shift, line) for t, line in watch.log_lines)
        fate["queues_after_linger"] = stuck.queues()
    drained = await stuck.drain(timeout=20)
    fate["drained"] = drained.summary()
    stuck.close()
    await asyncio.sleep(1.0)
    fate["connections_after_close"] = await connections(bridge.port)
    return fate


def _sum(values: Any) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) if present else None


def cpu_row(
    cpu: dict[str, float | None], children: list[str], results: list[dict[str, Any]]
) -> dict[str, Any]:
    """Cores used per part: bench (this process), clients (the children together), server,
    broker, other (the rest of the machine), and their total."""
    row: dict[str, Any] = {
        "bench": cpu.get("bench"),
        "clients": _sum(cpu.get(name) for name in children),
        "server": cpu.get("server"),
        "broker": cpu.get("broker"),
        "other": cpu.get("other"),
    }
    row["total"] = _sum(row.values())
    row["clients_each"] = {name: cpu.get(name) for name in children}
    row["clients_self_reported_cpu_s"] = [result["cpu_seconds"] for result in results]
    return row


def merge_clients(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The normal clients' checks, summed over the children."""
    clients = [client for result in results for client in result["clients"]]
    closed = [client["closed"] for client in clients if client["closed"]]
    last = [
        client["last_at"] - result["go_at"]
        for result in results
        for client in result["clients"]
        if client["last_at"] is not None
    ]
    return {
        "clients": len(clients),
        "complete": sum(
            1
            for c in clients
            if c["missing"] == c["duplicates"] == c["out_of_order"] == c["bad"] == 0
            and not c["closed"]
        ),
        "missing": sum(c["missing"] for c in clients),
        "duplicates": sum(c["duplicates"] for c in clients),
        "out_of_order": sum(c["out_of_order"] for c in clients),
        "bad": sum(c["bad"] for c in clients),
        "closed": closed,
        "outcomes": [result["outcome"] for result in results],
        "last_delivery_after_go_s": max(last, default=None),
    }


def quiet_seconds(sampler: Sampler, started_at: float, seconds: float) -> list[int]:
    """The seconds after publishing started (0, 1, …) in which, and in the second before which,
    the rest of the machine used under `DISTURBED_CORES` cores: latencies there are not
    disturbed by other processes."""
    offset = round(sampler.origin - started_at)  # the sampler starts just before publishing
    quiet = []
    for index in range(int(seconds) + 1):
        around = [index + offset - 1, index + offset]
        used = [
            sampler.cpu_seconds[i].get("other") for i in around if 0 <= i < len(sampler.cpu_seconds)
        ]
        if used and all(value is not None and value < DISTURBED_CORES for value in used):
            quiet.append(index)
    return quiet


def in_seconds(
    latencies: array[float], arrivals: array[float], started_at: float, seconds: set[int]
) -> array[float]:
    """The latencies of the deliveries that arrived in the given seconds after `started_at`."""
    return array(
        "d",
        (
            latency
            for latency, arrival in zip(latencies, arrivals, strict=True)
            if int(arrival - started_at) in seconds
        ),
    )


def timeline(
    results: list[dict[str, Any]], probe: LogProbe, sampler: Sampler, started_at: float
) -> list[dict[str, Any]]:
    """Per second after publishing started: deliveries to the normal clients and their highest
    latency, the highest broker-leg latency (the probe's), and the cores used."""
    length = max((len(result["slot_deliveries"]) for result in results), default=0)
    probe_max: dict[int, float] = {}
    for arrival, latency in zip(probe.arrivals, probe.latencies, strict=True):
        second = max(0, int(arrival - started_at))
        probe_max[second] = max(probe_max.get(second, 0.0), latency)
    offset = round(sampler.origin - started_at)
    merged = []
    for index in range(max(length, len(probe_max))):
        deliveries = sum(
            r["slot_deliveries"][index] for r in results if index < len(r["slot_deliveries"])
        )
        worst = max(
            (r["slot_max_ms"][index] for r in results if index < len(r["slot_max_ms"])),
            default=0.0,
        )
        cpu_index = index + offset
        used = sampler.cpu_seconds[cpu_index] if 0 <= cpu_index < len(sampler.cpu_seconds) else {}
        merged.append(
            {
                "second": index,
                "deliveries": deliveries,
                "max_latency_ms": worst,
                "broker_leg_max_ms": probe_max.get(index),
                "cores_server": used.get("server"),
                "cores_other": used.get("other"),
                "cores_total": _sum(used.values()),
            }
        )
    return merged
