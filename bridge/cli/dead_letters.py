"""`eventbridge dead-letters list | show | replay | purge`: work on `<prefix>.dead-letters`.

`list` and `show` remove nothing; `replay` removes a message only once its republish is
confirmed; `purge` asks first. Ctrl-C (or SIGTERM) stops after the message in hand.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from bridge.cli.options import BROKER_OPTIONS, add_broker_options, settings_from
from bridge.ops import dead_letter_views as views
from bridge.ops.deadletter_admin import DeadLetterQueue
from bridge.ops.deadletter_records import LetterFilter
from bridge.ops.deadletter_redrive import RedriveReport, redrive
from bridge.settings import Settings
from schemas.errors import EventBridgeError
from schemas.routing import is_valid_project_id

INTERRUPTED = 130

Work = Callable[[asyncio.Event], Coroutine[Any, Any, int]]


def add_parser(commands: Any, name: str) -> None:
    """Register the sub-command and its four actions."""
    parser = commands.add_parser(
        name,
        help="list, show, replay or purge dead letters",
        description="Work on <prefix>.dead-letters, where the bridge copies invalid messages "
        "with the reason headers. list and show remove nothing; replay republishes to "
        "<prefix>.events and removes each message once the broker confirmed it; purge removes.",
    )
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument(
        "--reason",
        action="append",
        choices=views.REASONS,
        help="only dead letters with this reason (repeatable)",
    )
    filters.add_argument(
        "--project",
        type=_project_id,
        help="only dead letters of this project (from the original routing key "
        "project.<id>.<type>, or the body's project_id)",
    )
    filters.add_argument(
        "--limit", type=_positive, help="act on at most this many matching dead letters"
    )
    add_broker_options(filters)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    summary = "count the dead letters by reason, with oldest, newest and an example error"
    listing = actions.add_parser("list", parents=[filters], help=summary, description=summary)
    listing.set_defaults(handler=run_list)
    summary = "print the matching dead letters: headers and body"
    show = actions.add_parser("show", parents=[filters], help=summary, description=summary)
    show.add_argument("--full", action="store_true", help="print whole bodies, not 2 KiB")
    show.set_defaults(handler=run_show)
    replay = actions.add_parser(
        "replay",
        parents=[filters],
        help="republish matching dead letters to the exchange, then remove them",
        description="Republish each matching dead letter to <prefix>.events with its original "
        "routing key, body and properties (without the x-eventbridge-* reason headers, with "
        "x-eventbridge-redriven: true), and remove it from the queue once the broker confirmed "
        "it. Others stay. Safe to kill and run again: nothing is lost, a few may arrive twice.",
    )
    replay.add_argument(
        "--rate", type=_positive_float, help="at most this many messages per second"
    )
    replay.set_defaults(handler=run_replay)
    purge = actions.add_parser(
        "purge",
        parents=[filters],
        help="remove matching dead letters (all without filters)",
        description="Remove the matching dead letters, all of them without filters. Asks for "
        "confirmation on a terminal; elsewhere it needs --yes.",
    )
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(handler=run_purge)


def _project_id(value: str) -> str:
    if not is_valid_project_id(value):
        raise argparse.ArgumentTypeError("must be 1-64 characters of letters, digits, '_' or '-'")
    return value


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError("must be a whole number of at least 1")
    return int(value)


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0:
        raise argparse.ArgumentTypeError("must be a number above 0")
    return number


def _selection(args: argparse.Namespace) -> LetterFilter:
    return LetterFilter(frozenset(args.reason or ()), args.project, args.limit)


def _run(args: argparse.Namespace, work: Work) -> int:
    """Run `work` with Ctrl-C and SIGTERM setting its stop event; turn errors into one line."""

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            stop.set()
            # A second Ctrl-C aborts at once (Python's default handling).
            loop.remove_signal_handler(signal.SIGINT)

        loop.add_signal_handler(signal.SIGINT, interrupt)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        return await work(stop)

    for library in ("aiormq", "aio_pika"):
        # Their failures reach the operator as this command's one-line errors.
        logging.getLogger(library).setLevel(logging.CRITICAL)
    try:
        return asyncio.run(main())
    except EventBridgeError as exc:
        print(f"eventbridge dead-letters {args.action}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"eventbridge dead-letters {args.action}: aborted", file=sys.stderr)
        return INTERRUPTED


def _open(settings: Settings) -> DeadLetterQueue:
    return DeadLetterQueue(settings.amqp_url, settings.prefix)


def run_list(args: argparse.Namespace) -> int:
    """Run `eventbridge dead-letters list`."""
    settings, selection = settings_from(args, BROKER_OPTIONS), _selection(args)

    async def work(stop: asyncio.Event) -> int:
        table = views.ReasonTable()
        async with _open(settings) as dead_letters, dead_letters.session(stop) as session:
            async for letter in session.matching(selection):
                table.add(letter)
        print(
            f"{dead_letters.names.dead_letters}: {views.letters(session.expected)}, "
            f"{session.examined} examined, {table.total} selected{views.described(selection)}"
        )
        if table.total:
            print("", *table.lines(), sep="\n")
        if stop.is_set():
            print("interrupted: the summary covers only what was examined", file=sys.stderr)
            return INTERRUPTED
        return 0

    return _run(args, work)


def run_show(args: argparse.Namespace) -> int:
    """Run `eventbridge dead-letters show`."""
    settings, selection = settings_from(args, BROKER_OPTIONS), _selection(args)

    async def work(stop: asyncio.Event) -> int:
        shown = 0
        async with _open(settings) as dead_letters, dead_letters.session(stop) as session:
            async for letter in session.matching(selection):
                shown += 1
                print("\n".join(views.show_lines(shown, letter, args.full)))
        print(
            f"shown {shown} of {views.letters(session.expected)} in "
            f"{dead_letters.names.dead_letters}{views.described(selection)}; nothing was removed"
        )
        return INTERRUPTED if stop.is_set() else 0

    return _run(args, work)


def run_replay(args: argparse.Namespace) -> int:
    """Run `eventbridge dead-letters replay`."""
    settings, selection = settings_from(args, BROKER_OPTIONS), _selection(args)
    report = RedriveReport()

    def progress(report: RedriveReport) -> None:
        print(
            f"progress: {report.republished} republished, {report.skipped} left in place, "
            f"{report.examined} of {report.expected} examined",
            flush=True,
        )

    async def work(stop: asyncio.Event) -> int:
        async with _open(settings) as dead_letters:
            try:
                await redrive(
                    dead_letters,
                    selection,
                    report,
                    stop=stop,
                    publish_timeout=settings.publish_timeout,
                    rate=args.rate,
                    progress=progress,
                )
            finally:
                print(
                    f"republished {views.letters(report.republished)}{views.described(selection)} "
                    f"to {dead_letters.names.exchange}, each removed from the queue once "
                    f"confirmed; {report.skipped} not matching left in place",
                    flush=True,
                )
            remaining = await dead_letters.count()
            print(f"{dead_letters.names.dead_letters} now holds {remaining}")
        if stop.is_set():
            print(
                "interrupted: the dead letters not yet republished stay in the queue; run the "
                "command again to continue",
                file=sys.stderr,
            )
            return INTERRUPTED
        return 0

    return _run(args, work)


async def _count_selected(settings: Settings, selection: LetterFilter, stop: asyncio.Event) -> int:
    async with _open(settings) as dead_letters:
        if not selection.filtered:
            return min(await dead_letters.count(), selection.limit or sys.maxsize)
        async with dead_letters.session(stop) as session:
            return len([letter async for letter in session.matching(selection)])


def run_purge(args: argparse.Namespace) -> int:
    """Run `eventbridge dead-letters purge`."""
    settings, selection = settings_from(args, BROKER_OPTIONS), _selection(args)
    if not args.yes:
        if not sys.stdin.isatty():
            print(
                "eventbridge dead-letters purge: refusing to remove dead letters without "
                "confirmation: stdin is not a terminal, so add --yes",
                file=sys.stderr,
            )
            return 2
        counted: list[int] = []

        async def count(stop: asyncio.Event) -> int:
            counted.append(await _count_selected(settings, selection, stop))
            return INTERRUPTED if stop.is_set() else 0

        if code := _run(args, count):
            return code
        if not counted[0]:
            print(f"no dead letters to remove{views.described(selection)}")
            return 0
        try:
            answer = input(f"Remove {views.letters(counted[0])}? [y/N] ")
        except (EOFError, KeyboardInterrupt):
            answer = ""
        if answer.strip().lower() not in {"y", "yes"}:
            print("nothing removed")
            return 0
        # Remove no more than the operator agreed to, even if more arrived meanwhile.
        selection = LetterFilter(selection.reasons, selection.project, counted[0])

    async def remove(stop: asyncio.Event) -> int:
        removed = 0
        async with _open(settings) as dead_letters:
            async with dead_letters.session(stop) as session:
                async for letter in session.matching(selection):
                    await session.remove(letter)
                    removed += 1
            remaining = await dead_letters.count()
        print(
            f"removed {views.letters(removed)}{views.described(selection)} from "
            f"{dead_letters.names.dead_letters}; {remaining} remain"
        )
        return INTERRUPTED if stop.is_set() else 0

    return _run(args, remove)
