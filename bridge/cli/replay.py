"""`eventbridge replay`: publish events from the log again, selected by time or by offset.

Run twice, a replay publishes its events twice: each keeps its envelope id, so consumers can
de-duplicate by id, and carries `x-eventbridge-replay-of: <original offset>`. Earlier replays
found in the log are never selected again. Killed half-way (Ctrl-C, SIGTERM: it stops after the
confirms in flight), everything up to the last reported offset was confirmed by the broker; the
summary says how to resume (`--from-offset <next>`). After a harder kill, resume from the last
progress line's offset + 1: the window in flight (at most 64 events) may be sent again, so a
replay is at-least-once. The selection and the confirm window are `bridge/ops/replay.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika

from bridge.broker.connect import open_connection
from bridge.broker.topology import Names
from bridge.cli.options import BROKER_OPTIONS, add_broker_options, settings_from
from bridge.errors import BrokerUnavailableError, LogError, ReplayError
from bridge.ops import replay_views as views
from bridge.ops.replay import Republisher, Target, selected_records
from bridge.ops.replay_selection import Criteria, Selection, check_log, select
from bridge.settings import Settings
from schemas.envelope import format_timestamp
from schemas.events import EVENT_MODELS
from schemas.routing import is_valid_project_id

WINDOW = 64
"""Publisher confirms in flight at once."""
_DURATION = re.compile(r"^([0-9]+)([smhd])$")
EVENT_TYPES = [str(event_type) for event_type in sorted(EVENT_MODELS)]
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

EPILOG = """\
examples:
  eventbridge replay --since 2h --project proj-123 --dry-run
  eventbridge replay --since 2026-11-26T10:00Z --until 2026-11-26T11:00Z --to rooms
  eventbridge replay --from-offset 1200 --to-offset 1500 --type error --to exchange --rate 200

run twice: the events are published twice. Each keeps its envelope id (consumers can
de-duplicate by id) and carries the header x-eventbridge-replay-of: <original offset>.
Replays already in the log are never selected again.

killed half-way: Ctrl-C or SIGTERM stops after the confirms in flight and prints the
summary with "resume with --from-offset <next> ...". Everything up to the last reported
offset was confirmed; after a harder kill, resume from that offset + 1. The window in
flight (up to 64 events) may be sent again: a replay is at-least-once.

--to exchange: every consumer of <prefix>.events receives the events again.
--to rooms: appended to <prefix>.log only; live clients receive them with
"replayed": true and "replay_of": <offset>; snapshot state is not changed.

exit status: 0 done, 1 broker or log error, 2 bad arguments, 128+N stopped by signal N."""


def add_parser(commands: Any, name: str) -> None:
    """Register the sub-command."""
    parser = commands.add_parser(
        name,
        help="publish events from the log again, selected by time or offset",
        description="Select events from the durable log <prefix>.log by the time they\n"
        "occurred (--since/--until) or by offset (--from-offset/--to-offset), narrow them\n"
        "by --project and --type, and publish them again with publisher confirms. Bridge\n"
        "markers, earlier replays and invalid records are skipped.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--since",
        metavar="WHEN",
        help="select events that occurred at or after WHEN: a duration ago (30m, 2h, 1d) or an "
        "ISO-8601 time with a zone (2026-11-26T10:00Z)",
    )
    start.add_argument(
        "--from-offset", type=_offset, metavar="N", help="select from log offset N (inclusive)"
    )
    parser.add_argument(
        "--until", metavar="WHEN", help="with --since: only events before WHEN [default: now]"
    )
    parser.add_argument(
        "--to-offset",
        type=_offset,
        metavar="M",
        help="with --from-offset: up to offset M (inclusive) [default: the log's tail]",
    )
    parser.add_argument(
        "--project",
        action="append",
        type=_project,
        metavar="P",
        help="only events of project P (repeatable)",
    )
    parser.add_argument(
        "--type",
        action="append",
        choices=EVENT_TYPES,
        metavar="T",
        help="only events of type T (repeatable): " + ", ".join(EVENT_TYPES),
    )
    parser.add_argument(
        "--to",
        dest="target",
        choices=["exchange", "rooms"],
        help="exchange: republish to <prefix>.events (every consumer sees them); rooms: append "
        "to the log for the bridges' rooms only",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the count and a sample; send nothing"
    )
    parser.add_argument(
        "--rate", type=_rate, metavar="N", help="at most N events per second [default: no limit]"
    )
    add_broker_options(parser)
    parser.set_defaults(handler=run)


def _offset(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not an offset (a whole number, 0 or more)")
    return int(text)


def _project(text: str) -> str:
    if not is_valid_project_id(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a project id (1-64 letters, digits, '_' or '-')"
        )
    return text


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of events per second")
    return value


def parse_moment(text: str, now: datetime) -> datetime:
    """A duration ago (`30m`, `2h`, `1d`) or an ISO-8601 time with a zone, as an aware datetime.

    Raises:
        ValueError: neither; the message says what is accepted.
    """
    if match := _DURATION.match(text):
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration (30m, 2h, 1d) nor an ISO-8601 time with a zone "
            "(2026-11-26T10:00Z)"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{text!r} has no time zone: add Z (UTC) or an offset like +02:00")
    return moment.astimezone(UTC)


def criteria_from(args: argparse.Namespace, now: datetime) -> Criteria:
    """The selection the options describe.

    Raises:
        ValueError: the options contradict each other or a time is malformed.
    """
    projects, types = frozenset(args.project or ()), frozenset(args.type or ())
    if args.from_offset is not None:
        if args.until is not None:
            raise ValueError("--until selects by time: use it with --since, not --from-offset")
        if args.to_offset is not None and args.to_offset < args.from_offset:
            raise ValueError(
                f"--to-offset {args.to_offset} is before --from-offset {args.from_offset}"
            )
        return Criteria(
            from_offset=args.from_offset, to_offset=args.to_offset, projects=projects, types=types
        )
    if args.since is None:
        raise ValueError("say what to replay: --since WHEN or --from-offset N")
    if args.to_offset is not None:
        raise ValueError("--to-offset selects by offset: use it with --from-offset, not --since")
    since = parse_moment(args.since, now)
    until = now if args.until is None else parse_moment(args.until, now)
    if until <= since:
        raise ValueError(f"--until ({format_timestamp(until)}) must be after --since")
    return Criteria(since=since, until=until, projects=projects, types=types)


def run(args: argparse.Namespace) -> int:
    """Run `eventbridge replay`."""
    try:
        criteria = criteria_from(args, datetime.now(UTC))
    except ValueError as exc:
        print(f"eventbridge replay: {exc}", file=sys.stderr)
        return 2
    if args.target is None and not args.dry_run:
        print(
            "eventbridge replay: say where to: --to exchange or --to rooms (or --dry-run)",
            file=sys.stderr,
        )
        return 2
    settings = settings_from(args, BROKER_OPTIONS)
    return asyncio.run(_replay(args, criteria, settings))


class _Stopper:
    """Turns SIGINT and SIGTERM into a request to stop after the confirms in flight."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.signum: int | None = None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop, signum)

    def _stop(self, signum: int) -> None:
        self.signum = self.signum or signum
        self.event.set()


async def _pace(rate: float | None, sent: int, started: float, stop: asyncio.Event) -> None:
    """Wait until the next event may go out at `rate` per second (or a stop is requested)."""
    if rate is None:
        return
    delay = started + sent / rate - time.monotonic()
    if delay > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


async def _replay(args: argparse.Namespace, criteria: Criteria, settings: Settings) -> int:
    stopper = _Stopper()
    started = time.monotonic()
    names = Names(settings.prefix)
    try:
        # The sentence below says it all; aiormq would log the same failure first.
        logging.getLogger("aiormq").setLevel(logging.CRITICAL)
        connection = await open_connection(settings.amqp_url, "replay")
    except BrokerUnavailableError as exc:
        return _fail(str(exc))
    finally:
        logging.getLogger("aiormq").setLevel(logging.NOTSET)
    progress = views.Progress(sys.stderr)
    async with connection:
        try:
            await check_log(connection, names)
            selection = await select(
                connection,
                names.log,
                criteria,
                max_bytes=settings.max_message_bytes,
                prefetch=settings.consumer_prefetch,
                stop=stopper.event,
                on_record=progress.selecting,
            )
            progress.clear()
            if selection.interrupted:
                print(f"stopped by {_signame(stopper.signum)} while selecting: nothing was sent")
                return 128 + (stopper.signum or 0)
            if args.dry_run:
                views.print_dry_run(selection)
                return 0
            return await _republish(
                connection,
                names=names,
                selection=selection,
                args=args,
                settings=settings,
                stopper=stopper,
                started=started,
            )
        except (ReplayError, LogError) as exc:
            return _fail(str(exc))
        except (aio_pika.exceptions.AMQPError, ConnectionError) as exc:
            return _fail(f"lost the connection to RabbitMQ ({exc!r}): run the replay again")


async def _republish(
    connection: aio_pika.abc.AbstractConnection,
    *,
    names: Names,
    selection: Selection,
    args: argparse.Namespace,
    settings: Settings,
    stopper: _Stopper,
    started: float,
) -> int:
    target: Target = args.target
    total = len(selection.offsets)
    progress = views.Progress(sys.stderr)
    error: ReplayError | None = None
    async with Republisher(
        connection, names, target, window=WINDOW, timeout=settings.publish_timeout
    ) as republisher:
        records = selected_records(
            connection, names.log, selection.offsets, prefetch=settings.consumer_prefetch
        )
        try:
            async with contextlib.aclosing(records):
                sent = 0
                first: float | None = None
                async for record in records:
                    # The schedule starts with the first event, not before the log was read:
                    # a slow first read must not be made up for by a burst above the rate.
                    first = time.monotonic() if first is None else first
                    await _pace(args.rate, sent, first, stopper.event)
                    if stopper.event.is_set() or republisher.failure is not None:
                        break
                    await republisher.send(record)
                    sent += 1
                    progress.replaying(republisher, total)
        except ReplayError as exc:
            error = exc
    # Leaving the Republisher waited for every confirm in flight.
    progress.replaying(republisher, total, final=total > 0)
    error = republisher.failure or error
    views.print_summary(selection, republisher, time.monotonic() - started)
    if republisher.confirmed < total:
        if stopper.signum is not None:
            print(f"stopped by {_signame(stopper.signum)} after the confirms in flight")
        print(_resume_hint(selection, republisher.confirmed, args))
    if error is not None:
        return _fail(str(error))
    return 128 + stopper.signum if stopper.signum is not None else 0


def _resume_hint(selection: Selection, confirmed: int, args: argparse.Namespace) -> str:
    """The options that replay exactly what is left (same filters, the remaining offsets)."""
    hint = (
        f"resume with --from-offset {selection.offsets[confirmed]} "
        f"--to-offset {selection.offsets[-1]}"
    )
    for project in args.project or ():
        hint += f" --project {project}"
    for event_type in args.type or ():
        hint += f" --type {event_type}"
    hint += f" --to {args.target}"
    if args.rate is not None:
        hint += f" --rate {args.rate:g}"
    left_out = selection.left_out_between(selection.offsets[confirmed], selection.offsets[-1])
    if left_out:
        hint += (
            f"\n  (by offset, that range also holds {left_out} matching events outside the "
            "time window: they would be sent too)"
        )
    return hint


def _signame(signum: int | None) -> str:
    return signal.Signals(signum).name if signum is not None else "a signal"


def _fail(message: str) -> int:
    print(f"eventbridge replay: {message}", file=sys.stderr)
    return 1
