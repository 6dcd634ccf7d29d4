"""`eventbridge status`: one look at the broker, the event log, the dead letters and a bridge."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
from typing import Any

from bridge.broker.connect import unreachable
from bridge.cli.logs import configure_logging
from bridge.cli.options import (
    BROKER_OPTIONS,
    SERVER_OPTIONS,
    add_broker_options,
    settings_from,
)
from bridge.ops.counting import counted
from bridge.ops.status import StatusReport, gather
from bridge.settings import Settings

CONSUMERS_UNKNOWN = "unknown (RabbitMQ 3.10 does not report a stream's consumers over AMQP)"


def add_parser(commands: Any, name: str) -> None:
    """Register the sub-command."""
    parser = commands.add_parser(
        name,
        help="report the broker, the event log, dead letters and a bridge's health",
        description="Report whether RabbitMQ answers, the event log's offsets, record count, "
        "epoch and retention, the dead-letter count, the log's consumers, and what the bridge "
        "at --bridge-url says on /health. Reads only. Exits 0 when the broker answers and the "
        "log exists, else 1.",
    )
    parser.add_argument(
        "--bridge-url",
        metavar="URL",
        help="base URL of a running bridge [default http://<EVENTBRIDGE_HOST>:<EVENTBRIDGE_PORT>,"
        " i.e. http://127.0.0.1:8000]",
    )
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    add_broker_options(parser)
    parser.set_defaults(handler=run)


def default_bridge_url(settings: Settings) -> str:
    """Where the bridge of these settings answers (a wildcard bind is reached on loopback)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}"


def _size(count: object) -> str:
    if not isinstance(count, int) or isinstance(count, bool):
        return str(count)
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= scale:
            return f"{count / scale:g} {unit} ({count} bytes)"
    return f"{count} bytes"


def _log_rows(report: StatusReport) -> list[tuple[str, str]]:
    log = report.log
    if not log.exists:
        return [("log", f"{log.name} does not exist")]
    rows = [("log", log.name)]
    if log.first_offset is None:
        rows.append(("  offsets", "none: the log is empty"))
    else:
        rows.append(("  offsets", f"{log.first_offset} … {log.last_offset}"))
        rows.append(("  records", f"{log.records} (events, invalid messages and bridge markers)"))
    rows.append(("  epoch", log.epoch or "none recorded (no bridge has created this log)"))
    if log.consumers is None:
        rows.append(("  consumers", CONSUMERS_UNKNOWN))
    else:
        rows.append(
            (
                "  consumers",
                f"{log.consumers} (from {log.consumers_source}; temporary catch-up readers "
                "count too, and RabbitMQ 3.10 still counts for about a minute a reader that "
                "stopped without cancelling)",
            )
        )
    return rows


def _retention_rows(report: StatusReport) -> list[tuple[str, str]]:
    retention = report.retention
    rows = [
        (
            "retention",
            f"max age {retention.configured_max_age}, max "
            f"{_size(retention.configured_max_bytes)}: configured (EVENTBRIDGE_LOG_MAX_AGE, "
            "EVENTBRIDGE_LOG_MAX_BYTES), applied when the bridge creates the log",
        )
    ]
    arguments = retention.broker_arguments
    if arguments is not None:
        rows.append(
            (
                "  on the log",
                f"max age {arguments.get('x-max-age', 'none')}, max "
                f"{_size(arguments.get('x-max-length-bytes', 'none'))}, segments of "
                f"{_size(arguments.get('x-stream-max-segment-size-bytes', 'default size'))} "
                f"(from {retention.broker_source})",
            )
        )
    return rows


def _bridge_rows(report: StatusReport) -> list[tuple[str, str]]:
    bridge = report.bridge
    if not bridge.reachable or bridge.health is None:
        return [("bridge", f"not reachable at {bridge.url} ({bridge.error})")]
    services = bridge.health.get("services") or {}
    health_log = bridge.health.get("log") or {}
    rows = [
        ("bridge", f"{bridge.url}: {bridge.health.get('status')}"),
        ("  broker", str((services.get("broker") or {}).get("status"))),
    ]
    if node := (services.get("broker") or {}).get("node"):
        rows.append(("  node", f"{node} (the broker node the bridge uses)"))
    for transport in ("websocket", "socketio"):
        count = (services.get(transport) or {}).get("connections")
        connections = counted(count, "connection") if isinstance(count, int) else f"{count}"
        rows.append((f"  {transport}", connections))
    rows.append(("  log offset", f"{health_log.get('offset')} (epoch {health_log.get('epoch')})"))
    return rows


def render(report: StatusReport) -> str:
    """The human report: one aligned line per fact."""
    broker = report.broker
    if broker.reachable:
        rows = [("RabbitMQ", f"reachable at {broker.url}"), ("  node", f"{broker.node} answered")]
        rows += _log_rows(report)
        dead = report.dead_letters
        found = f"{dead.messages} in {dead.name}" if dead.exists else f"{dead.name} does not exist"
        rows.append(("dead letters", found))
    else:
        rows = [("RabbitMQ", f"NOT reachable at {broker.url} ({broker.error})")]
    rows += _retention_rows(report) + _bridge_rows(report)
    rows += [("note", note) for note in report.notes]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)


def problem(report: StatusReport) -> str | None:
    """The sentence explaining a non-zero exit, or None when all is well."""
    if report.broker.login_refused:  # the error is the whole sentence already
        return report.broker.error
    if not report.broker.reachable:
        return unreachable(report.broker.url, report.broker.error)
    if not report.log.exists:
        return (
            f"the log {report.log.name} does not exist: start the bridge (eventbridge serve) "
            "once to create it, or check EVENTBRIDGE_PREFIX."
        )
    return None


def run(args: argparse.Namespace) -> int:
    """Run `eventbridge status`."""
    settings = settings_from(args, BROKER_OPTIONS + SERVER_OPTIONS)
    configure_logging("warning")
    for library in ("aio_pika", "aiormq"):  # this command says what went wrong in one sentence
        logging.getLogger(library).setLevel(logging.CRITICAL)
    bridge_url = args.bridge_url or default_bridge_url(settings)
    if not bridge_url.startswith(("http://", "https://")):
        print(
            f"eventbridge status: --bridge-url {bridge_url!r} must start with http:// or https://",
            file=sys.stderr,
        )
        return 2
    report = asyncio.run(gather(settings, bridge_url))
    if args.json:
        print(json.dumps({**dataclasses.asdict(report), "ok": report.ok}, indent=2))
    else:
        print(render(report))
    sentence = problem(report)
    if sentence is not None:
        print(f"eventbridge status: {sentence}", file=sys.stderr)
        return 1
    return 0
