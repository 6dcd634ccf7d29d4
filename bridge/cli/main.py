"""`eventbridge`: the command-line entry point and its sub-commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bridge.cli import dead_letters, demo, publish, replay, serve, status, tail, tokens, topology

COMMANDS = {
    "serve": serve,
    "publish": publish,
    "demo": demo,
    "dead-letters": dead_letters,
    "tail": tail,
    "status": status,
    "replay": replay,
    "token": tokens,
    "topology": topology,
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="eventbridge",
        description="Forward events from a RabbitMQ topic exchange to Socket.IO and WebSocket "
        "rooms. Every option also reads its EVENTBRIDGE_* environment variable.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        module.add_parser(commands, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
