"""`eventbridge`: the command-line entry point and its sub-commands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS = {
    "serve": "serve",
    "publish": "publish",
    "demo": "demo",
    "dead-letters": "dead_letters",
    "tail": "tail",
    "status": "status",
    "replay": "replay",
    "token": "tokens",
    "topology": "topology",
}
"""Each sub-command and its module in `bridge.cli`, which defines `add_parser(commands, name)`."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of every sub-command, or of the sub-command `only`.

    Building one imports that command's module alone: `eventbridge status` or `eventbridge tail`
    then starts in about a third of a second, without loading the server (FastAPI,
    python-socketio) that `serve` needs.
    """
    parser = argparse.ArgumentParser(
        prog="eventbridge",
        description="Forward events from a RabbitMQ topic exchange to Socket.IO and WebSocket "
        "rooms. Every option also reads its EVENTBRIDGE_* environment variable.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        if only is None or name == only:
            importlib.import_module(f"bridge.cli.{module}").add_parser(commands, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    # The top-level parser has no option taking a value, so the first word is the command;
    # anything else (no command, -h, a typo) gets the full parser and its list of commands.
    first = next((word for word in arguments if not word.startswith("-")), None)
    args = build_parser(first if first in COMMANDS else None).parse_args(arguments)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
