"""`eventbridge serve`: run the bridge until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from bridge.cli.logs import configure_logging
from bridge.cli.options import (
    AUTH_OPTIONS,
    BROKER_OPTIONS,
    SERVER_OPTIONS,
    add_auth_options,
    add_broker_options,
    add_server_options,
    settings_from,
)
from bridge.edge.server import serve
from bridge.errors import EventBridgeError


def add_parser(commands: Any, name: str) -> None:
    """Register the sub-command."""
    parser = commands.add_parser(
        name,
        help="run the bridge service",
        description="Run the bridge: consume the event log and serve Socket.IO at /socket.io/, "
        "WebSocket at /ws, /health and /ready. Stops gracefully on SIGTERM or Ctrl-C.",
    )
    add_broker_options(parser)
    add_server_options(parser)
    add_auth_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run `eventbridge serve`."""
    settings = settings_from(args, BROKER_OPTIONS + SERVER_OPTIONS + AUTH_OPTIONS)
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(serve(settings))
    except EventBridgeError as exc:
        print(f"eventbridge: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
