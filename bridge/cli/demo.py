"""`eventbridge demo`: the bridge plus simulated agents publishing for a few demo projects."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import TYPE_CHECKING, Any

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
from bridge.edge.server import Bridge, bind, secured
from bridge.errors import ConfigurationError, EventBridgeError
from bridge.ops.counting import counted
from bridge.settings import Settings
from producers import EventPublisher

if TYPE_CHECKING:
    from producers.demo import DemoStats

logger = logging.getLogger(__name__)
DEFAULT_PROJECTS = "demo-web,demo-data,demo-infra"


def add_parser(commands: Any, name: str) -> None:
    """Register the sub-command."""
    parser = commands.add_parser(
        name,
        help="run the bridge with simulated agents",
        description="Run the bridge and simulated agents that publish a realistic stream "
        "(agent status and progress, generations, errors, activities, workflow steps, "
        "deployments and their logs) for a few demo projects. Stop with Ctrl-C.",
    )
    parser.add_argument(
        "--rate", type=float, default=5.0, help="events per second, all projects together [5]"
    )
    parser.add_argument(
        "--projects",
        default=DEFAULT_PROJECTS,
        help=f"comma-separated project ids [{DEFAULT_PROJECTS}]",
    )
    parser.add_argument(
        "--duration", type=float, help="stop after this many seconds (default: run until stopped)"
    )
    parser.add_argument(
        "--no-serve",
        action="store_true",
        help="only run the simulated agents, against a bridge running elsewhere",
    )
    add_broker_options(parser)
    add_server_options(parser)
    add_auth_options(parser, default_auth="anonymous")
    parser.set_defaults(handler=run)


def _print_banner(settings: Settings, projects: list[str], serving: bool) -> None:
    base = f"{settings.host}:{settings.port}"
    lines = [f"eventbridge demo: publishing to {settings.prefix}.events for {', '.join(projects)}"]
    if serving:
        lines += [
            f"  dashboard:  http://{base}/?project={projects[0]}",
            f"  health:     http://{base}/health",
            f"  WebSocket:  ws://{base}/ws/ai/{projects[0]}",
            f"  Socket.IO:  http://{base}/socket.io/  (emit join-project '{projects[0]}')",
        ]
    lines.append("  stop with Ctrl-C")
    print("\n".join(lines), flush=True)


async def _simulate(settings: Settings, args: argparse.Namespace, stop: asyncio.Event) -> DemoStats:
    from producers.demo import run_demo

    projects = [project.strip() for project in args.projects.split(",") if project.strip()]
    async with EventPublisher(
        settings.amqp_url, prefix=settings.prefix, source="eventbridge-demo"
    ) as publisher:
        return await run_demo(
            publisher, projects=projects, rate=args.rate, duration=args.duration, stop=stop
        )


async def demo(settings: Settings, args: argparse.Namespace) -> DemoStats:
    """Run the simulation, and the bridge unless `--no-serve`; return what was published."""
    projects = [project.strip() for project in args.projects.split(",") if project.strip()]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if args.no_serve:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        _print_banner(settings, projects, serving=False)
        return await _simulate(settings, args, stop)
    authenticator = secured(settings)
    sockets = bind(settings)  # a port in use is said before anything connects
    async with contextlib.AsyncExitStack() as stack:
        for listener in sockets:
            stack.callback(listener.close)
        bridge = await stack.enter_async_context(Bridge(settings, authenticator))
        server = bridge.server()
        signal.signal(signal.SIGTERM, lambda *_: None)  # see bridge.edge.server.serve
        server_task = asyncio.create_task(server.serve(sockets=sockets), name="http-server")
        while not server.started and not server_task.done():  # noqa: ASYNC110 - uvicorn offers no event
            await asyncio.sleep(0.05)
        if server_task.done():
            raise ConfigurationError(
                f"the HTTP server on {settings.host}:{settings.port} did not start; see the log "
                "above"
            )
        _print_banner(settings, projects, serving=True)
        simulation = asyncio.create_task(_simulate(settings, args, stop), name="demo-agents")
        await asyncio.wait({server_task, simulation}, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            stats = await simulation
        await server_task
    return stats


def run(args: argparse.Namespace) -> int:
    """Run `eventbridge demo`."""
    if args.rate <= 0:
        print("eventbridge demo: --rate must be more than 0", file=sys.stderr)
        return 2
    settings = settings_from(args, BROKER_OPTIONS + SERVER_OPTIONS + AUTH_OPTIONS)
    configure_logging(settings.log_level, settings.log_format)
    try:
        stats = asyncio.run(demo(settings, args))
    except EventBridgeError as exc:  # includes the SDK's PublishError
        print(f"eventbridge demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    print(f"eventbridge demo: published {counted(stats.published, 'event')}", flush=True)
    return 0
