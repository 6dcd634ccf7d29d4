"""Gathering `eventbridge status`: the broker, the log, the dead letters and a bridge's /health.

Everything is read, nothing is written: the log's first offset comes from reading its first
record, the last from reading its last chunk (RabbitMQ 3.10 updates a stream's message count
over AMQP only every few seconds, and reports no consumers, arguments or size for it at all).
Where `rabbitmqctl` runs against the same local broker, the log's real arguments and consumer
count are taken from it, labelled as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

from bridge import broker
from bridge.eventlog import OFFSET_HEADER, OffsetSpec
from bridge.logmeta import read_value
from bridge.settings import Settings
from bridge.topology import Names

READ_TIMEOUT = 3.0
"""Longest wait for the log's first record (an empty log sends none)."""
IDLE_SECONDS = 0.3
"""The last chunk has been read once no record came for this long."""
RABBITMQCTL_TIMEOUT = 5.0
HEALTH_TIMEOUT = 3.0
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass
class BrokerStatus:
    """Whether RabbitMQ answered."""

    url: str
    reachable: bool = False
    error: str | None = None


@dataclass
class LogStatus:
    """The event log stream. Offsets count every record: events, invalid messages, markers."""

    name: str
    exists: bool = False
    first_offset: int | None = None
    last_offset: int | None = None
    records: int | None = None
    epoch: str | None = None
    consumers: int | None = None
    consumers_source: str | None = None


@dataclass
class RetentionStatus:
    """The retention the bridge creates the log with, and the log's own where it can be read."""

    configured_max_age: str
    configured_max_bytes: int
    broker_arguments: dict[str, Any] | None = None
    broker_source: str | None = None


@dataclass
class DeadLetterStatus:
    """The dead-letter queue."""

    name: str
    exists: bool = False
    messages: int | None = None


@dataclass
class BridgeStatus:
    """A running bridge, as its /health reports it."""

    url: str
    reachable: bool = False
    error: str | None = None
    health: dict[str, Any] | None = None


@dataclass
class StatusReport:
    """Everything `eventbridge status` reports."""

    broker: BrokerStatus
    log: LogStatus
    retention: RetentionStatus
    dead_letters: DeadLetterStatus
    bridge: BridgeStatus
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the broker answered and the log exists."""
        return self.broker.reachable and self.log.exists


def unreachable(url: str, error: object) -> str:
    """Say that the broker at `url` (redacted) could not be used, and what to do next."""
    if "ACCESS_REFUSED" in str(error):
        advice = "check the user name and password in EVENTBRIDGE_AMQP_URL."
    else:
        advice = "start the broker or point EVENTBRIDGE_AMQP_URL at a running one."
    return f"cannot reach RabbitMQ at {url} ({error}): {advice}"


async def gather(settings: Settings, bridge_url: str) -> StatusReport:
    """Collect the whole report; every part that cannot be read says why instead of failing."""
    names = Names(settings.prefix)
    report = StatusReport(
        broker=BrokerStatus(broker.redact(settings.amqp_url)),
        log=LogStatus(names.log),
        retention=RetentionStatus(settings.log_max_age, settings.log_max_bytes),
        dead_letters=DeadLetterStatus(names.dead_letters),
        bridge=BridgeStatus(bridge_url),
    )
    _, row, _ = await asyncio.gather(
        _from_amqp(settings, names, report),
        _from_rabbitmqctl(settings, names),
        _from_bridge(report.bridge),
    )
    # Only if the URL's broker holds the log too: rabbitmqctl talks to the local node, which
    # need not be the broker of the URL.
    if row is not None and report.log.exists:
        _apply_rabbitmqctl(row, report)
    health_log = (report.bridge.health or {}).get("log") or {}
    if report.bridge.health is not None and health_log.get("name") not in (None, names.log):
        report.notes.append(
            f"the bridge at {bridge_url} serves {health_log.get('name')}, not {names.log}"
        )
    elif report.log.epoch and health_log.get("epoch") not in (None, report.log.epoch):
        report.notes.append(
            f"the bridge's epoch {health_log.get('epoch')} differs from the log's "
            f"{report.log.epoch}: it may still be serving a deleted log"
        )
    return report


async def _from_amqp(settings: Settings, names: Names, report: StatusReport) -> None:
    try:
        connection = await broker.connect(settings.amqp_url, "status", connect_timeout=5)
    except (*broker.TRANSIENT, aio_pika.exceptions.AMQPError) as exc:
        report.broker.error = str(exc) or type(exc).__name__
        return
    report.broker.reachable = True
    try:
        async with connection:
            await _read_log(connection, names, report)
    except (*broker.TRANSIENT, aio_pika.exceptions.AMQPError) as exc:
        report.notes.append(f"reading the log stopped early: {exc or type(exc).__name__}")


async def _read_log(connection: AbstractConnection, names: Names, report: StatusReport) -> None:
    """Fill in the log, its epoch and offsets, and the dead-letter count."""
    log = await _declare_passive(connection, names.log)
    if log is None:
        return
    report.log.exists = True
    if log[1]:  # 3.10 reports 0 consumers for every stream; later versions may not
        report.log.consumers, report.log.consumers_source = log[1], "amqp"
    dead_letters = await _declare_passive(connection, names.dead_letters)
    if dead_letters is not None:
        report.dead_letters.exists = True
        report.dead_letters.messages = dead_letters[0]
    report.log.epoch = await _epoch(connection, names)
    first = await _offsets(connection, names.log, "first", idle=None)
    if first is not None:
        last = await _offsets(connection, names.log, "last", idle=IDLE_SECONDS)
        last = max(first, last if last is not None else first)
        report.log.first_offset, report.log.last_offset = first, last
        report.log.records = last - first + 1
    else:
        report.log.records = 0


async def _declare_passive(connection: AbstractConnection, name: str) -> tuple[int, int] | None:
    """The queue's message and consumer counts, or None if it does not exist (the refusal
    closes only the channel opened for it)."""
    async with connection.channel() as channel:
        try:
            queue = await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return None
        result = queue.declaration_result
        return result.message_count or 0, result.consumer_count or 0


async def _epoch(connection: AbstractConnection, names: Names) -> str | None:
    async with connection.channel() as channel:
        try:
            return await read_value(channel, names.epoch)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return None


async def _offsets(
    connection: AbstractConnection, log_name: str, start: OffsetSpec, *, idle: float | None
) -> int | None:
    """Read from `start`: the first record's offset (`idle` None), or the highest offset seen
    until no record came for `idle` seconds. None if the log sent nothing in time.

    Not a `LogReader`: this reader cancels its consumer before closing its channel, since
    RabbitMQ 3.10 goes on counting a stream consumer whose channel merely closed (for about a
    minute), and status would otherwise inflate the consumer count it reports.
    """
    offsets: asyncio.Queue[int] = asyncio.Queue()

    async def on_message(message: AbstractIncomingMessage) -> None:
        offset = (message.headers or {}).get(OFFSET_HEADER)
        # Acks are the stream's credit, so a big last chunk arrives whole; one arriving after
        # the reader stopped finds its channel closed, which is fine.
        with contextlib.suppress(aio_pika.exceptions.AMQPError, RuntimeError):
            await message.ack()
        if isinstance(offset, int):
            offsets.put_nowait(offset)

    seen: int | None = None
    async with connection.channel() as channel:
        await channel.set_qos(prefetch_count=1000)
        queue = await channel.get_queue(log_name, ensure=False)
        tag = await queue.consume(on_message, arguments={"x-stream-offset": start})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READ_TIMEOUT
        while (left := deadline - loop.time()) > 0:
            try:
                offset = await asyncio.wait_for(offsets.get(), left if seen is None else idle)
            except TimeoutError:
                break
            seen = offset if seen is None else max(seen, offset)
            if idle is None:
                break
        await queue.cancel(tag)
    return seen


async def _from_rabbitmqctl(settings: Settings, names: Names) -> dict[str, Any] | None:
    """The log's row of `rabbitmqctl list_queues` (a local broker only), or None."""
    parts = urlsplit(settings.amqp_url)
    executable = shutil.which("rabbitmqctl")
    if executable is None or (parts.hostname or "localhost") not in LOCAL_HOSTS:
        return None
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    command = [executable, "-q", "list_queues", "-p", vhost, "name", "arguments", "consumers"]
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            "--formatter",
            "json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return None
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), RABBITMQCTL_TIMEOUT)
        rows = json.loads(stdout)
    except (TimeoutError, ValueError):
        return None
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if not isinstance(rows, list):
        return None
    return next((r for r in rows if isinstance(r, dict) and r.get("name") == names.log), None)


def _apply_rabbitmqctl(row: dict[str, Any], report: StatusReport) -> None:
    arguments = row.get("arguments")
    if isinstance(arguments, list):
        report.retention.broker_arguments = {
            str(arg[0]): arg[2] for arg in arguments if isinstance(arg, list) and len(arg) == 3
        }
        report.retention.broker_source = "rabbitmqctl"
    if isinstance(row.get("consumers"), int):
        report.log.consumers, report.log.consumers_source = row["consumers"], "rabbitmqctl"


async def _from_bridge(status: BridgeStatus) -> None:
    url = status.url.rstrip("/") + "/health"

    def fetch() -> Any:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT) as response:
            return json.loads(response.read())

    try:
        health = await asyncio.to_thread(fetch)
    except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        status.error = str(reason)
        return
    if not isinstance(health, dict):
        status.error = "its /health did not answer a JSON object"
        return
    status.reachable, status.health = True, health
