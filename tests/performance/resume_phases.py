"""The measurements of `bench_resume`: filling the log, timed catch-ups, and timed restarts.

- `LogFiller` publishes `progress_update` events straight to `<prefix>.events` with raw aio-pika
  (publisher confirms pipelined, unroutable messages raise), several times faster than the
  SDK's `publish_batch`.
- `BridgeUnderTest` is one `eventbridge serve` child process with its own settings.
- `fill_segment` appends N events of one project, interleaved with other projects' events,
  with the running bridges paused, waits until both routed them, and returns where they lie
  in the log (`since`, `head`).
- `catch_up` times one resume: a fresh client subscribes with `since` and `epoch`, and the
  clock runs from the request until the N-th missed event arrived.
- `time_to_ready` starts a bridge against the log as it is and times it to `GET /ready` 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractExchange

from bridge.broker import topology
from bridge.settings import Settings
from schemas.routing import exchange_name
from tests.performance.baselines import aio_pika_read_range
from tests.performance.context import no_gc
from tests.performance.processes import (
    ChildProcess,
    CpuMeter,
    cpu_seconds,
    free_port,
    http_json,
    rss_mb,
    wait_until_ready,
)
from tests.performance.publisher_child import bench_envelope
from tests.performance.rawreceiver import RawReceiver
from tests.performance.receivers import Receiver

SOURCE = "bench-resume"
EVENT_TYPE = "progress_update"
OTHER_PROJECTS = 100
"""Projects the interleaved "other" events of a catch-up segment are spread over."""
FILL_PROJECTS = 1000
"""Projects the events of a restart's log are spread over."""
Transport = Literal["websocket", "socketio"]


def bridge_command() -> list[str]:
    """The command line of the bridge under test: the installed `eventbridge serve`."""
    return [str(Path(sys.executable).parent / "eventbridge"), "serve"]


def bridge_environment(
    amqp_url: str, prefix: str, port: int, settings: Mapping[str, str]
) -> dict[str, str]:
    """The bridge child's environment: ours without any inherited `EVENTBRIDGE_*` setting (so
    defaults are really the defaults), plus the prefix, port, info-level log and `settings`."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("EVENTBRIDGE_")}
    return {
        **inherited,
        "EVENTBRIDGE_AMQP_URL": amqp_url,
        "EVENTBRIDGE_PREFIX": prefix,
        "EVENTBRIDGE_PORT": str(port),
        "EVENTBRIDGE_AUTH": "anonymous",  # loopback, measured without tokens
        "EVENTBRIDGE_LOG_LEVEL": "info",
        **settings,
    }


# -- filling the log ---------------------------------------------------------------------------


class LogFiller:
    """Publishes benchmark events to `<prefix>.events` with raw aio-pika; an async context manager.

    Entering it connects and declares the bridge's topology (idempotently, with the bridge's
    own `topology.declare`), so the log exists and is bound before the first publish.

    Args:
        amqp_url: the broker.
        prefix: the topology prefix.
        window: publisher confirms kept in flight.
    """

    def __init__(self, amqp_url: str, prefix: str, *, window: int = 500) -> None:
        self.amqp_url = amqp_url
        self.prefix = prefix
        self._window = window
        self._connection: AbstractConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._published = 0
        template = bench_envelope("template", 0).model_dump(mode="json")
        template["source"] = SOURCE
        self._template: dict[str, Any] = template

    async def __aenter__(self) -> LogFiller:
        """Connect, declare the topology, and get the exchange."""
        self._connection = await aio_pika.connect(
            self.amqp_url,
            timeout=10,
            client_properties={"connection_name": "bench-resume-filler"},
        )
        try:
            settings = Settings(amqp_url=self.amqp_url, prefix=self.prefix)
            await topology.declare(self._connection, settings)
            channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
            self._exchange = await channel.get_exchange(exchange_name(self.prefix), ensure=False)
        except BaseException:
            await self._connection.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the connection (bounded)."""
        if self._connection is not None:
            with contextlib.suppress(aio_pika.exceptions.AMQPError, OSError, TimeoutError):
                await asyncio.wait_for(self._connection.close(), 10)

    def message(self, project: str, seq: int) -> aio_pika.Message:
        """One valid `progress_update` of `project` whose data carries `seq`, as the contract
        wants it published: JSON, persistent, `message_id` = the envelope's id."""
        self._published += 1
        now = time.time()
        data = {**self._template["data"], "seq": seq, "sent_at": now}
        event_id = f"{self.prefix}-{self._published}"
        envelope = {**self._template, "id": event_id, "project_id": project, "data": data}
        return aio_pika.Message(
            json.dumps(envelope, separators=(",", ":")).encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=event_id,
        )

    async def publish(self, items: Sequence[tuple[str, int]]) -> dict[str, float]:
        """Publish one event per `(project, seq)`, in order, persistent, every confirm awaited.

        Returns:
            events, wall seconds and events/s.
        """
        exchange = self._exchange
        if exchange is None:
            raise RuntimeError("the filler is not connected")
        slots = asyncio.Semaphore(self._window)
        pending: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []

        async def one(message: aio_pika.Message, routing_key: str) -> None:
            """Publish one message and await its confirm; record a failure, free the slot."""
            try:
                await exchange.publish(message, routing_key, timeout=30)
            except Exception as exc:  # noqa: BLE001 - the first failure is re-raised below
                failures.append(exc)
            finally:
                slots.release()

        started = time.perf_counter()
        for project, seq in items:
            if failures:
                break
            await slots.acquire()
            task = asyncio.create_task(
                one(self.message(project, seq), f"project.{project}.{EVENT_TYPE}")
            )
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
        if failures:
            raise RuntimeError(f"filling the log failed: {failures[0]!r}") from failures[0]
        seconds = time.perf_counter() - started
        return {"events": len(items), "seconds": seconds, "events_per_s": len(items) / seconds}


def interleaved(project: str, events: int, others: int) -> list[tuple[str, int]]:
    """`events` events of `project` (seq 0..events-1), each followed by `others` events of
    other projects (spread over `OTHER_PROJECTS` projects)."""
    items: list[tuple[str, int]] = []
    other = 0
    for seq in range(events):
        items.append((project, seq))
        for _ in range(others):
            items.append((f"other-{other % OTHER_PROJECTS}", other))
            other += 1
    return items


def spread(first: int, count: int) -> list[tuple[str, int]]:
    """`count` events spread over `FILL_PROJECTS` projects, seq numbers from `first`."""
    return [(f"fill-{seq % FILL_PROJECTS}", seq) for seq in range(first, first + count)]


# -- the bridges -------------------------------------------------------------------------------


@dataclass
class BridgeUnderTest:
    """One running `eventbridge serve` child and what it was started with.

    Attributes:
        name: "memory" or "stream": where its resumes are served from.
        child: the process.
        port: its HTTP port.
        settings: the `EVENTBRIDGE_*` settings given beyond prefix, port and log level.
    """

    name: str
    child: ChildProcess
    port: int
    settings: dict[str, str]


@contextlib.asynccontextmanager
async def running_bridge(
    name: str, amqp_url: str, prefix: str, settings: Mapping[str, str], log_path: Path
) -> AsyncIterator[BridgeUnderTest]:
    """Start `eventbridge serve` and wait until it is ready; stop it on leaving."""
    port = free_port()
    child = ChildProcess(
        f"eventbridge serve ({name})",
        bridge_command(),
        env=bridge_environment(amqp_url, prefix, port, settings),
        log_path=log_path,
    )
    async with child:
        await wait_until_ready(port, child, timeout=60)
        yield BridgeUnderTest(name, child, port, dict(settings))


@dataclass(frozen=True)
class LogPosition:
    """What a bridge's `/health` says about the log."""

    epoch: str
    head: int
    events_routed: int


async def log_position(bridge: BridgeUnderTest) -> LogPosition:
    """Read the bridge's epoch, newest offset and routed-event count from `/health`."""
    if bridge.child.exited:
        raise RuntimeError(
            f"{bridge.child.name} exited (code {bridge.child.returncode}); its log ends:\n"
            f"{bridge.child.log_tail()}"
        )
    log = (await http_json(bridge.port, "/health"))["log"]
    return LogPosition(str(log["epoch"]), int(log["offset"]), int(log["events_routed"]))


async def wait_routed(bridge: BridgeUnderTest, target: int, timeout: float) -> LogPosition:
    """Wait (bounded) until the bridge has routed `target` events since it started.

    Raises:
        RuntimeError: it did not within `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        position = await log_position(bridge)
        if position.events_routed >= target:
            return position
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{bridge.child.name} routed {position.events_routed} of {target} events "
                f"within {timeout:.0f} s"
            )
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class Segment:
    """N events of one project at the end of the log, with `others` other events after each.

    Attributes:
        since: the newest offset before the segment: a resume from here misses exactly it.
        head: the newest offset after it.
        records: the records after `since` up to `head` (what a read from the log scans). It
            is not `head - since`: the stream spends one invisible offset at the start of each
            segment file (`x-stream-max-segment-size-bytes`), so offsets have gaps.
    """

    project: str
    events: int
    others: int
    epoch: str
    since: int
    head: int
    records: int

    @property
    def interleave(self) -> str:
        """The ratio of the project's events to other events, e.g. "1:9"."""
        return f"1:{self.others}"


async def fill_segment(
    filler: LogFiller, bridges: Sequence[BridgeUnderTest], project: str, events: int, others: int
) -> tuple[Segment, dict[str, float]]:
    """Append a segment (the bridges stopped meanwhile) and wait until each bridge routed it.

    Returns:
        the segment and the filler's figures (events, seconds, events/s).
    """
    before = [await log_position(bridge) for bridge in bridges]
    if len({p.epoch for p in before}) != 1:
        raise RuntimeError(f"the bridges disagree about the log's epoch: {before}")
    # A bridge's head skips the other bridge's start-up marker: the newest of them is the tail.
    since = max(p.head for p in before)
    items = interleaved(project, events, others)
    async with contextlib.AsyncExitStack() as stack:
        # Publishing is 3-5x faster without two bridges competing for the two cores; they
        # take the segment in afterwards (as in bench_live's drains).
        for bridge in bridges:
            await stack.enter_async_context(bridge.child.paused())
        stats = await filler.publish(items)
    drained = time.perf_counter()
    timeout = 60 + len(items) / 500
    after = [
        await wait_routed(bridge, position.events_routed + len(items), timeout)
        for bridge, position in zip(bridges, before, strict=True)
    ]
    stats["bridges_took_in_seconds"] = time.perf_counter() - drained
    if len({(p.epoch, p.head) for p in after}) != 1:
        raise RuntimeError(f"the bridges disagree about the log after filling: {after}")
    head = after[0].head
    segment = Segment(project, events, others, after[0].epoch, since, head, len(items))
    # Every segment file the fill started spends one offset; more than that is unexplained.
    gaps = head - since - len(items)
    stats["offset_gaps"] = gaps
    if not 0 <= gaps <= len(items) // 5_000 + 2:
        found = await describe_range(filler.amqp_url, f"{filler.prefix}.log", since + 1, head)
        raise RuntimeError(
            f"{len(items)} events were published but the log's head moved by {head - since} "
            f"offsets: {found}"
        )
    return segment, stats


async def describe_range(amqp_url: str, log: str, first: int, last: int) -> dict[str, Any]:
    """What the log holds at offsets `first..last`: how many records, markers, message ids
    seen more than once, records without an id (a diagnostic for an unexpected log size)."""
    connection = await aio_pika.connect(
        amqp_url, timeout=10, client_properties={"connection_name": "bench-resume-diagnostic"}
    )
    seen: dict[str, int] = {}
    markers: list[tuple[int, dict[str, Any]]] = []
    odd: list[tuple[int, str]] = []
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1000)
        queue = await channel.get_queue(log, ensure=False)
        records = queue.iterator(arguments={"x-stream-offset": first}, timeout=10)
        with contextlib.suppress(TimeoutError):  # the range ended early: report what came
            async for message in records:
                await message.ack()
                headers = dict(message.headers or {})
                offset = headers.get("x-stream-offset")
                if not isinstance(offset, int) or offset < first:
                    continue
                if "x-eventbridge-marker" in headers:
                    markers.append((offset, {k: str(v) for k, v in headers.items()}))
                elif message.message_id:
                    seen[message.message_id] = seen.get(message.message_id, 0) + 1
                else:
                    try:
                        body = json.loads(message.body)
                        odd.append((offset, str(body.get("id"))))
                    except ValueError:
                        odd.append((offset, repr(message.body[:60])))
                if offset >= last:
                    break
    twice = {k: v for k, v in seen.items() if v > 1}
    return {
        "records": sum(seen.values()) + len(markers) + len(odd),
        "markers": markers[:5],
        "ids_seen_twice": list(twice.items())[:5],
        "without_id": odd[:5],
    }


# -- one catch-up ------------------------------------------------------------------------------


@dataclass
class ResumeCheck:
    """What one resuming client proves.

    Attributes:
        expected: events it should get (the segment's events of its project).
        received: events it got.
        in_order: whether their seq numbers were exactly 0..expected-1, in that order.
        offsets_rising: whether their offsets strictly increased.
        outside: events whose offset was not in (`since`, `head`].
        resyncs: the `resync-required` notices it got (there should be none).
        closed: why the connection ended early, if it did.
    """

    expected: int
    received: int
    in_order: bool
    offsets_rising: bool
    outside: int
    resyncs: list[dict[str, Any]] = field(default_factory=list)
    closed: str | None = None

    @property
    def ok(self) -> bool:
        """Whether exactly the missed events arrived, once, in order, without a resync notice."""
        return (
            self.received == self.expected
            and self.in_order
            and self.offsets_rising
            and self.outside == 0
            and not self.resyncs
            and self.closed is None
        )

    def summary(self) -> str:
        """Return "ok", or what went wrong."""
        if self.ok:
            return "ok"
        parts = [f"{self.received}/{self.expected} events"]
        if not self.in_order:
            parts.append("seq not 0..N-1 in order")
        if not self.offsets_rising:
            parts.append("offsets not rising")
        if self.outside:
            parts.append(f"{self.outside} outside the range")
        if self.resyncs:
            reasons = sorted({str(notice.get("reason")) for notice in self.resyncs})
            parts.append(f"resync-required ({', '.join(reasons)})")
        if self.closed:
            parts.append(self.closed)
        return ", ".join(parts)


def check_resume(receiver: Receiver, segment: Segment) -> ResumeCheck:
    """Check one client's arrivals against the segment it missed."""
    arrivals = receiver.arrivals
    return ResumeCheck(
        expected=segment.events,
        received=len(arrivals),
        in_order=[a.seq for a in arrivals] == list(range(segment.events)),
        offsets_rising=all(b.offset > a.offset for a, b in pairwise(arrivals)),
        outside=sum(1 for a in arrivals if not segment.since < a.offset <= segment.head),
        resyncs=list(receiver.notices),
        closed=receiver.closed_reason,
    )


async def open_receiver(port: int, transport: Transport) -> RawReceiver:
    """Connect one client that is in no room yet."""
    receiver = RawReceiver(transport, EVENT_TYPE)
    if transport == "socketio":
        await receiver.connect(f"http://127.0.0.1:{port}")
    else:
        await receiver.connect(f"ws://127.0.0.1:{port}/ws")
    return receiver


async def request_resume(receiver: RawReceiver, segment: Segment) -> float | None:
    """Send the resuming join; return when its reply arrived (`time.time()`), if known yet.

    Socket.IO: `join-project` with `since` and `epoch`, the ack awaited. Native WebSocket:
    `subscribe` with the same; its `subscribed` reply is recorded by the reader.
    """
    request = {"project_id": segment.project, "since": segment.since, "epoch": segment.epoch}
    if receiver.transport == "socketio":
        ack = await receiver.call("join-project", request)
        if not (isinstance(ack, dict) and ack.get("ok")):
            raise RuntimeError(f"join-project was refused: {ack!r}")
        return time.time()
    await receiver.send({"type": "subscribe", **request})
    return None


async def wait_caught_up(receiver: Receiver, expected: int, *, stall: float, limit: float) -> None:
    """Wait until the client got `expected` events, a resync notice, or was disconnected.

    Gives up after `stall` seconds without a new event or `limit` seconds in all. A resume read
    from the log sends nothing until the whole range is read, so `stall` must cover that read.
    """
    loop = asyncio.get_running_loop()
    started = last_progress = loop.time()
    seen = -1
    while len(receiver.arrivals) < expected and not receiver.notices:
        if receiver.closed_reason is not None:
            return
        now = loop.time()
        if len(receiver.arrivals) != seen:
            seen, last_progress = len(receiver.arrivals), now
        if now - last_progress > stall or now - started > limit:
            return
        await asyncio.sleep(0.005)


async def catch_up(
    bridge: BridgeUnderTest,
    segment: Segment,
    transport: Transport,
    pids: Mapping[str, int | None],
    *,
    stall: float,
) -> dict[str, Any]:
    """Time one resume of the segment's project by a fresh client; return its row.

    The clock starts as the join with `since` is sent and stops at the arrival of the last
    missed event. Afterwards the client listens 0.2 s more so extra events would be counted.
    """
    receiver = await open_receiver(bridge.port, transport)
    try:
        meter = CpuMeter({**pids, "server": bridge.child.pid})
        wait_stall = stall + segment.records / 1000
        with no_gc():
            meter.start()
            started = time.time()
            replied = await request_resume(receiver, segment)
            await wait_caught_up(
                receiver, segment.events, stall=wait_stall, limit=2 * wait_stall + 60
            )
            cpu = meter.stop()
        await asyncio.sleep(0.2)
    finally:
        await receiver.close()
    if receiver.subscribed_reply is not None:
        replied = float(receiver.subscribed_reply["received_at"])
    arrivals = receiver.arrivals
    last = arrivals[min(len(arrivals), segment.events) - 1].received_at if arrivals else None
    wall = None if last is None else max(last - started, 1e-9)
    return {
        "kind": "catch-up",
        "source": bridge.name,
        "transport": transport,
        "interleave": segment.interleave,
        "events": segment.events,
        "records": segment.records,
        "since": segment.since,
        "head": segment.head,
        "reply_ms": None if replied is None else (replied - started) * 1000,
        "first_event_s": arrivals[0].received_at - started if arrivals else None,
        "wall_seconds": wall,
        "events_per_s": None if wall is None else len(arrivals[: segment.events]) / wall,
        "records_per_s": None if wall is None else segment.records / wall,
        "cpu_cores": cpu,
        "server_rss_mb": rss_mb(bridge.child.pid),
        "check": check_resume(receiver, segment),
    }


async def raw_read(
    amqp_url: str, log: str, segment: Segment, pids: Mapping[str, int | None]
) -> dict[str, Any]:
    """Baseline: raw aio-pika reads the segment's records (prefetch 1000, ack multiple)."""
    meter = CpuMeter(pids)
    with no_gc():
        meter.start()
        result = await aio_pika_read_range(amqp_url, log, segment.since + 1, segment.head)
        cpu = meter.stop()
    return {
        "kind": "raw-read",
        "source": "aio-pika",
        "transport": None,
        "interleave": segment.interleave,
        "events": None,
        "records": result["records"],
        "skipped": result["skipped"],
        "wall_seconds": result["seconds"],
        "events_per_s": None,
        "records_per_s": result["records_per_s"],
        "cpu_cores": cpu,
    }


# -- one restart -------------------------------------------------------------------------------

_STAMP = r"(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
READING = re.compile(_STAMP + r" .*reading \S+ from offset (?P<start>\d+) \(tail (?P<tail>\d+)\)")
READY = re.compile(_STAMP + r" .*bridge ready: consuming")


def _stamp(text: str) -> float:
    """A log timestamp (local time, as Python's logging writes `asctime`) as `time.time()`."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def read_startup_log(path: Path) -> dict[str, Any]:
    """From a bridge's info-level log: where its first session started reading, the tail it
    read up to, and when it logged starting to read and being ready."""
    found: dict[str, Any] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            if "start" not in found and (match := READING.match(line)):
                found["start"] = int(match["start"])
                found["tail"] = int(match["tail"])
                found["reading_at"] = _stamp(match["at"])
            elif "ready_at" not in found and (match := READY.match(line)):
                found["ready_at"] = _stamp(match["at"])
    return found


async def time_to_ready(
    amqp_url: str,
    prefix: str,
    settings: Mapping[str, str],
    log_path: Path,
    pids: Mapping[str, int | None],
    *,
    timeout: float,
) -> dict[str, Any]:
    """Start `eventbridge serve` on the log as it is, time it to `/ready` 200, then stop it.

    `/ready` is polled every 20 ms. The bridge's own log splits the time: until it starts
    reading the log (interpreter, imports, connect, topology, epoch, tail probe), the warm read
    itself (up to its sync marker), and the rest (HTTP server start, polling).

    Returns:
        the timings, the records its first session read, its RSS and CPU time at ready.
    """
    port = free_port()
    child = ChildProcess(
        "eventbridge serve (restart)",
        bridge_command(),
        env=bridge_environment(amqp_url, prefix, port, settings),
        log_path=log_path,
    )
    meter = CpuMeter(pids)
    meter.start()
    spawned = time.time()
    clock = time.perf_counter()
    async with child:
        await wait_until_ready(port, child, timeout, poll=0.02)
        ready_seconds = time.perf_counter() - clock
        rss = rss_mb(child.pid)
        bridge_cpu = None if child.pid is None else cpu_seconds(child.pid)
        cores = meter.stop()
    if bridge_cpu is not None:
        # The bridge was not running when the meter started: its share is its whole CPU time.
        share = bridge_cpu / ready_seconds
        cores["bridge"] = share
        other = cores.get("other")
        if other is not None:
            cores["other"] = max(0.0, other - share)
    logged = read_startup_log(log_path)
    row: dict[str, Any] = {
        "settings": dict(settings),
        "ready_seconds": ready_seconds,
        "rss_mb": rss,
        "bridge_cpu_seconds": bridge_cpu,
        "cpu_cores": cores,
        "start_offset": logged.get("start"),
        "tail": logged.get("tail"),
        "records_read": None,
        "before_read_seconds": None,
        "read_seconds": None,
        "after_read_seconds": None,
        "log": str(log_path),
    }
    if "start" in logged:
        row["records_read"] = logged["tail"] - logged["start"] + 1
    if "reading_at" in logged and "ready_at" in logged:
        row["before_read_seconds"] = logged["reading_at"] - spawned
        row["read_seconds"] = logged["ready_at"] - logged["reading_at"]
        row["after_read_seconds"] = spawned + ready_seconds - logged["ready_at"]
    return row


async def raw_window_read(
    amqp_url: str, log: str, first: int, last: int, pids: Mapping[str, int | None]
) -> dict[str, Any]:
    """Baseline of a warm start: raw aio-pika reads the records `first..last` of a log."""
    meter = CpuMeter(pids)
    with no_gc():
        meter.start()
        result = await aio_pika_read_range(amqp_url, log, first, last)
        cpu = meter.stop()
    return {**result, "cpu_cores": cpu}
