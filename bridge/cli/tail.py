"""`eventbridge tail`: follow the event log live in the terminal, one readable line per event.

It only reads: no marker, no queue, nothing is appended to the log. It starts at `--since` (only
new events by default), skips the bridge's markers, shows invalid records as dead letters, and
follows until Ctrl-C or SIGTERM, reconnecting (and resuming after the last offset shown) if the
broker connection drops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import re
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection

from bridge.broker import connect
from bridge.broker.eventlog import LogReader, OffsetSpec
from bridge.broker.topology import Names
from bridge.cli.logs import configure_logging
from bridge.cli.options import BROKER_OPTIONS, add_broker_options, settings_from
from bridge.errors import EventBridgeError
from bridge.ops.tailview import Painter, View
from bridge.settings import Settings
from schemas.events import EVENT_MODELS
from schemas.routing import is_valid_project_id

PREFETCH = 500
CLOSE_ERRORS = (*connect.TRANSIENT, aio_pika.exceptions.AMQPError, RuntimeError)
"""Errors closing a connection that is already gone."""
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


@dataclass(frozen=True, slots=True)
class Start:
    """Where reading starts, as given by `--since`."""

    spec: OffsetSpec
    label: str
    min_offset: int = 0
    """Records below this offset are skipped (the broker starts at the chunk holding it)."""


def parse_since(text: str) -> Start:
    """Read `--since`: `next`, `first`, a duration (`10m`, `1h30m`), an ISO time or `offset:N`."""
    value = text.strip()
    if value in ("next", "first"):
        label = "the next event" if value == "next" else "the first record the log holds"
        return Start(value, label)
    if value.startswith("offset:"):
        number = value.removeprefix("offset:")
        if not number.isdigit():
            raise argparse.ArgumentTypeError(f"offset:{number} is not offset:<integer ≥ 0>")
        return Start(int(number), f"offset {int(number)}", int(number))
    duration = _DURATION.match(value)
    if value and duration:
        days, hours, minutes, seconds = (int(part or 0) for part in duration.groups())
        delta = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        moment = datetime.now(UTC) - delta
        return Start(moment, f"{value} ago ({moment.astimezone():%Y-%m-%d %H:%M:%S})")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a start: use next, first, a duration such as 10m or 1h30m "
            "(units d, h, m, s), "
            "an ISO time such as 2026-11-26T12:00, or offset:<N>"
        ) from None
    moment = moment.astimezone(UTC)  # a time without a zone is local time
    return Start(moment, f"{moment.astimezone():%Y-%m-%d %H:%M:%S}")


def _event_type(text: str) -> str:
    if text not in EVENT_MODELS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an event type; the types are: {', '.join(sorted(EVENT_MODELS))}"
        )
    return text


def _project(text: str) -> str:
    if not is_valid_project_id(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a project id (1-64 letters, digits, '_' or '-')"
        )
    return text


def add_parser(commands: Any, name: str) -> None:
    """Register the sub-command."""
    parser = commands.add_parser(
        name,
        help="follow the event log live, one readable line per event",
        description="Read the event log (<prefix>.log) without writing to it and print one line "
        "per event: local time, offset, project, type and a summary of its data. Invalid "
        "records show as dimmed dead-letter lines; the bridge's markers are skipped. Runs until "
        "Ctrl-C.",
        epilog="examples: eventbridge tail --project proj-123 --type error;  "
        "eventbridge tail --since 10m;  eventbridge tail --since offset:0 --json | jq .",
    )
    parser.add_argument(
        "--project",
        action="append",
        type=_project,
        default=[],
        help="show only this project's events (repeatable); global events are then hidden",
    )
    parser.add_argument(
        "--type",
        dest="types",
        metavar="TYPE",
        action="append",
        type=_event_type,
        default=[],
        help="show only events of this type (repeatable)",
    )
    parser.add_argument(
        "--since",
        metavar="WHEN",
        type=parse_since,
        default=parse_since("next"),
        help="where to start: next (default: only new events), first, a duration such as "
        "10m, 2h or 1d, an ISO time (local unless it has a zone), or offset:<N>",
    )
    parser.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="color the output: auto (only on a terminal), always or never [auto]",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print each event as its JSON payload (the envelope plus offset), one per line",
    )
    add_broker_options(parser)
    parser.set_defaults(handler=run)


async def _connect(settings: Settings, names: Names, *, retry: bool) -> AbstractConnection:
    """Connect (after a drop: retrying for ever, like the bridge) and check the log exists."""
    if retry:
        nodes = connect.Nodes(settings.amqp_url)
        connection = await connect.connect_with_retry(nodes, "tail", within=math.inf)
    else:
        connection = await connect.open_connection(settings.amqp_url, "tail", connect_timeout=5)
    try:
        async with connection.channel() as channel:
            await channel.declare_queue(names.log, passive=True)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        await connection.close()
        raise EventBridgeError(
            f"the log {names.log} does not exist: start the bridge (eventbridge serve) once to "
            "create it, or check EVENTBRIDGE_PREFIX."
        ) from None
    return connection


async def _close(connection: AbstractConnection) -> None:
    with contextlib.suppress(*CLOSE_ERRORS):
        await asyncio.wait_for(connection.close(), 5)


def _note(text: str) -> None:
    print(f"eventbridge tail: {text}", file=sys.stderr, flush=True)


async def follow(settings: Settings, start: Start, view: View) -> None:
    """Print the log's records from `start` on, for ever; reconnect if the connection drops.

    After a reconnection reading goes on right after the last record read, so nothing is
    missed or repeated (unless nothing had been read yet: then it starts over at `start`).
    """
    names = Names(settings.prefix)
    spec, min_offset = start.spec, start.min_offset
    connection = await _connect(settings, names, retry=False)
    announced = False
    try:
        while True:
            async with LogReader(connection, names.log, spec, prefetch=PREFETCH) as reader:
                if not announced:
                    # Only now, with the consumer attached: what is published from here on is
                    # read (announcing earlier could miss events published right after the line).
                    _note(f"following {names.log} from {start.label} (Ctrl-C to stop)")
                    announced = True
                while (record := await reader.next()) is not None:
                    await reader.done(record)
                    if record.offset < min_offset or record.marker is not None:
                        continue  # before the start (same chunk), or the bridge's own record
                    spec = min_offset = record.offset + 1
                    if (line := view.line(record)) is not None:
                        print(line, flush=True)
            await _close(connection)
            _note("lost the log; reconnecting")
            connection = await _connect(settings, names, retry=True)
            where = f"offset {spec}" if isinstance(spec, int) else start.label
            _note(f"reconnected; reading on from {where}")
    finally:
        await _close(connection)


async def _until_stopped(settings: Settings, start: Start, view: View) -> None:
    """Follow the log until SIGINT or SIGTERM; errors from following propagate."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    following = asyncio.create_task(follow(settings, start, view), name="tail")
    stopping = asyncio.create_task(stop.wait(), name="tail-stop")
    await asyncio.wait({following, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    following.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await following  # re-raises what ended it, unless a signal did


def run(args: argparse.Namespace) -> int:
    """Run `eventbridge tail`."""
    settings = settings_from(args, BROKER_OPTIONS)
    configure_logging("warning")
    for library in ("aio_pika", "aiormq"):  # this command says what went wrong in one sentence
        logging.getLogger(library).setLevel(logging.CRITICAL)
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    view = View(
        projects=frozenset(args.project),
        types=frozenset(args.types),
        json=args.json,
        paint=Painter(color),
        max_bytes=settings.max_message_bytes,
    )
    try:
        asyncio.run(_until_stopped(settings, args.since, view))
    except EventBridgeError as exc:
        print(f"eventbridge tail: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`eventbridge tail | head`): stop quietly. Python would complain
        # again when flushing stdout at exit, so point it at /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were installed
        return 0
    return 0
