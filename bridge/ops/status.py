"""Gathering `eventbridge status`: the broker, the log, the dead letters and a bridge's /health.

Everything is read, nothing is written: the log's first offset comes from reading its first
record, the last from reading its last chunk (RabbitMQ 3.10 updates a stream's message count
over AMQP only every few seconds, and reports no consumers, arguments or size for it at all).
Where `rabbitmqctl` runs against the same local broker, the log's real arguments and consumer
count are taken from it, labelled as such.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection

from bridge.broker import connect
from bridge.broker.eventlog import first_offset, last_offset
from bridge.broker.meta import read_value
from bridge.broker.topology import Names
from bridge.errors import LogUnavailableError
from bridge.ops import rabbitmqctl
from bridge.settings import Settings

READ_TIMEOUT = 3.0
"""Longest wait for the log's first record (an empty log sends none)."""
IDLE_SECONDS = 0.3
"""The last chunk has been read once no record came for this long."""
HEALTH_TIMEOUT = 3.0


@dataclass
class BrokerStatus:
    """Whether RabbitMQ answered."""

    url: str
    reachable: bool = False
    error: str | None = None
    login_refused: bool = False
    """The broker answered but refused the login (`error` then says what to check)."""
    node: str | None = None
    """The node (`host:port`) that answered, of those the URL lists."""


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
    node: str | None = None
    """The node (`host:port`) that answered, of those the URL lists."""
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


async def gather(settings: Settings, bridge_url: str) -> StatusReport:
    """Collect the whole report; every part that cannot be read says why instead of failing."""
    names = Names(settings.prefix)
    report = StatusReport(
        broker=BrokerStatus(connect.redact_list(settings.amqp_url)),
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
        nodes = connect.Nodes(settings.amqp_url, shuffle=False)
        connection = await connect.connect(nodes, "status", connect_timeout=5)
    except connect.BrokerUnavailableError as exc:
        report.broker.error = str(exc) or type(exc).__name__
        report.broker.login_refused = isinstance(exc, connect.BrokerAuthenticationError)
        return
    report.broker.reachable = True
    report.broker.node = connect.node_of(nodes.current or "")
    try:
        async with connection:
            await _read_log(connection, names, report)
    except (*connect.TRANSIENT, aio_pika.exceptions.AMQPError, LogUnavailableError) as exc:
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
    first = await first_offset(connection, names.log, within=READ_TIMEOUT)
    if first is not None:
        last = await last_offset(connection, names.log, within=READ_TIMEOUT, quiet=IDLE_SECONDS)
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


async def _from_rabbitmqctl(settings: Settings, names: Names) -> dict[str, Any] | None:
    """The log's row of `rabbitmqctl list_queues` (a local broker only), or None."""
    rows = await rabbitmqctl.list_queues(settings.amqp_url, "arguments", "consumers")
    return next((row for row in rows or [] if row.get("name") == names.log), None)


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
