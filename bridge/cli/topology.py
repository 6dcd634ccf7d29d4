"""`eventbridge topology show|migrate|delete`: a prefix's broker objects.

- `show` lists them: exists or not, kind (stream, quorum or classic queue), messages.
- `migrate` moves an earlier deployment's classic queues to quorum queues (`bridge.ops.migrate`),
  with every bridge replica of the prefix stopped.
- `delete` lists every object of the prefix — the log with every event, the dead letters — and
  removes them after a confirmation (`--yes` off a terminal), refusing while anything reads
  them unless `--force` (`bridge.ops.teardown`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection

from bridge.broker import connect
from bridge.broker.topology import Names, queue_arguments
from bridge.cli.options import BROKER_OPTIONS, add_broker_options, settings_from
from bridge.errors import EventBridgeError
from bridge.ops.counting import counted
from bridge.ops.migrate import MIGRATING_SUFFIX, kind_of, migrate, needed
from bridge.ops.teardown import Survey, count, delete, queue_names, survey
from bridge.settings import Settings

INTERRUPTED = 130
Work = Callable[[AbstractConnection, Names, asyncio.Event], Awaitable[int]]


def add_parser(commands: Any, name: str) -> None:
    """Register the sub-command and its actions."""
    parser = commands.add_parser(
        name,
        help="show, migrate or delete a prefix's broker objects",
        description="A prefix's broker objects: the exchange, the log stream and the queues.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="list the objects, their kind and messages")
    add_broker_options(show)
    show.set_defaults(handler=run_show)
    move = actions.add_parser(
        "migrate",
        help="move classic queues of an earlier version to replicated quorum queues",
        description="Move <prefix>.dead-letters, .epoch and .checkpoint from classic queues "
        "(one node's) to quorum queues (replicated), losing no message. Stop every bridge "
        "replica of the prefix first; run it again to resume after an interruption.",
    )
    add_broker_options(move)
    move.set_defaults(handler=run_migrate)
    delete = actions.add_parser(
        "delete",
        help="delete every object of the prefix (the log and its events, the dead letters)",
        description="List, then delete, the exchange, the log stream (every event in it), the "
        "checkpoint stream, the dead-letter queue (every dead letter) and the bridge's own "
        "queues of one prefix. Asks for the prefix to be typed on a terminal; elsewhere it "
        "needs --yes. Refuses while a bridge (or anything) consumes them, or where that cannot "
        "be told, unless --force. Exit status: 0 deleted (or nothing there, or not confirmed), "
        "1 refused or failed, 2 no confirmation possible.",
        epilog="example: eventbridge topology delete --prefix staging-old --yes",
    )
    add_broker_options(delete)
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.add_argument(
        "--force",
        action="store_true",
        help="delete even while something consumes the objects, or where the consumers cannot "
        "be counted (a bridge still running loses its log and declares an empty one)",
    )
    delete.set_defaults(handler=run_delete)


def _run(args: argparse.Namespace, work: Work) -> int:
    """Connect, run `work` with Ctrl-C and SIGTERM setting its stop event, and turn errors into
    one line."""
    settings = settings_from(args, BROKER_OPTIONS)
    for library in ("aiormq", "aio_pika"):  # their failures reach the operator as one line
        logging.getLogger(library).setLevel(logging.CRITICAL)

    async def main(settings: Settings) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        connection = await connect.open_connection(settings.amqp_url, "topology")
        async with connection:
            return await work(connection, Names(settings.prefix), stop)

    try:
        return asyncio.run(main(settings))
    except EventBridgeError as exc:
        print(f"eventbridge topology {args.action}: {exc}", file=sys.stderr)
        return 1
    except (aio_pika.exceptions.AMQPError, ConnectionError) as exc:
        print(
            f"eventbridge topology {args.action}: lost the connection to RabbitMQ ({exc!r}); "
            "run it again",
            file=sys.stderr,
        )
        return 1


def run_show(args: argparse.Namespace) -> int:
    """Run `eventbridge topology show`."""

    async def show(connection: AbstractConnection, names: Names, _: asyncio.Event) -> int:
        arguments = queue_arguments(names)
        async with connection.channel() as probe:
            try:
                await probe.declare_exchange(names.exchange, passive=True)
                exchange = "exists (topic)"
            except aio_pika.exceptions.ChannelNotFoundEntity:
                exchange = "does not exist"
        rows = [(names.exchange, exchange)]
        for name in queue_names(names):
            counts = await count(connection, name)
            if counts is None:
                if not name.endswith(MIGRATING_SUFFIX):
                    rows.append((name, "does not exist"))
                continue
            if name in (names.log, names.snapshots):
                rows.append((name, "stream"))
                continue
            kind = await kind_of(connection, name, arguments[name.removesuffix(MIGRATING_SUFFIX)])
            advice = " (run `eventbridge topology migrate`)" if kind == "classic" else ""
            rows.append((name, f"{kind} queue, {counted(counts[0], 'message')}{advice}"))
        width = max(len(name) for name, _ in rows)
        print("\n".join(f"{name.ljust(width)}  {what}" for name, what in rows))
        return 0

    return _run(args, show)


def run_migrate(args: argparse.Namespace) -> int:
    """Run `eventbridge topology migrate`."""

    async def move(connection: AbstractConnection, names: Names, stop: asyncio.Event) -> int:
        if not await needed(connection, names):
            print(f"nothing to migrate: the queues of prefix {names.prefix!r} are quorum queues")
            return 0
        report = await migrate(
            connection, names, stop=stop, progress=lambda line: print(line, flush=True)
        )
        if report.interrupted:
            print("stopped; run the migration again to finish it", file=sys.stderr)
            return INTERRUPTED
        moved = ", ".join(
            f"{name}: {counted(count, 'message')}" for name, count in report.moved.items()
        )
        print(f"migrated to quorum queues ({moved or 'nothing to move'})")
        return 0

    return _run(args, move)


def _listing(found: Survey) -> str:
    """What would be deleted, one aligned line per object."""
    rows = [
        (
            queue.name,
            "stream (every record in it)"
            if queue.stream
            else f"queue, {counted(queue.messages, 'message')}",
        )
        for queue in found.queues
    ]
    if found.exchange:
        rows.append((found.names.exchange, "exchange"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name.ljust(width)}  {what}" for name, what in rows)


def _busy(found: Survey) -> str | None:
    """Why deleting now would hurt a running bridge, or None."""
    prefix = found.names.prefix
    if found.consumers is None:
        return (
            f"cannot tell whether a bridge reads {found.names.log}: RabbitMQ reports no consumers "
            "of a stream over AMQP, and rabbitmqctl cannot reach this broker; stop every bridge "
            f"of prefix {prefix!r}, then run again with --force"
        )
    if found.consumers:
        return (
            f"{counted(found.consumers, 'consumer')} (from {found.consumers_source}) "
            f"{'reads' if found.consumers == 1 else 'read'} the objects of prefix {prefix!r}: "
            "a bridge of it is probably running. Stop every "
            "bridge of the prefix first (a stopped reader may be counted for about a minute "
            "more), or pass --force to delete from under it"
        )
    return None


def _confirmed(prefix: str) -> bool:
    """Ask on the terminal for the prefix to be typed."""
    try:
        answer = input(f"Type the prefix ({prefix}) to delete all of this: ")
    except (EOFError, KeyboardInterrupt):
        return False
    return answer.strip() == prefix


def run_delete(args: argparse.Namespace) -> int:
    """Run `eventbridge topology delete`: survey, list, check for readers, ask, delete."""
    if not args.yes and not sys.stdin.isatty():
        print(
            "eventbridge topology delete: refusing to delete without confirmation: stdin is "
            "not a terminal, so add --yes",
            file=sys.stderr,
        )
        return 2
    settings = settings_from(args, BROKER_OPTIONS)
    surveyed: list[Survey] = []

    async def look(connection: AbstractConnection, names: Names, _: asyncio.Event) -> int:
        surveyed.append(await survey(connection, names, settings.amqp_url))
        return 0

    if code := _run(args, look):
        return code
    [found] = surveyed
    if found.empty:
        print(f"nothing to delete: prefix {found.names.prefix!r} has no object on this broker")
        return 0
    print(f"prefix {found.names.prefix!r} has:\n{_listing(found)}", flush=True)
    if (why := _busy(found)) is not None:
        if not args.force:
            print(f"eventbridge topology delete: refusing: {why}", file=sys.stderr)
            return 1
        print(f"deleting anyway (--force): {why}", file=sys.stderr)
    if not args.yes and not _confirmed(found.names.prefix):
        print("nothing deleted")
        return 0

    async def remove(connection: AbstractConnection, _: Names, __: asyncio.Event) -> int:
        deleted = await delete(connection, found)
        print(f"deleted {', '.join(deleted)}")
        return 0

    return _run(args, remove)
