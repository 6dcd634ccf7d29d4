"""`eventbridge publish`: publish one event with a broker confirm, as a producer would."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from bridge.cli.options import BROKER_OPTIONS, add_broker_options, settings_from
from producers import EventPublisher, PublishError
from schemas.events import EVENT_MODELS


def add_parser(commands: Any, name: str) -> None:
    """Register the sub-command."""
    parser = commands.add_parser(
        name,
        help="publish one event to the exchange",
        description="Validate one event, publish it to <prefix>.events with a publisher "
        "confirm, and print its id and routing key. Without --project the event is global.",
        epilog="example: eventbridge publish progress_update --project proj-123 "
        '--data \'{"agent_id": "agent-1", "progress": 0.5}\'',
    )
    parser.add_argument("type", choices=sorted(EVENT_MODELS), help="the event type")
    parser.add_argument("--project", help="the project id (omit for a global event)")
    parser.add_argument("--data", required=True, help="the event's data, a JSON object")
    parser.add_argument("--source", default="eventbridge-cli", help="the producer name")
    add_broker_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run `eventbridge publish`."""
    try:
        data = json.loads(args.data)
    except ValueError as exc:
        print(f"eventbridge publish: --data is not valid JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(data, dict):
        print("eventbridge publish: --data must be a JSON object", file=sys.stderr)
        return 2
    settings = settings_from(args, BROKER_OPTIONS)

    async def publish() -> None:
        async with EventPublisher(
            settings.amqp_url,
            prefix=settings.prefix,
            source=args.source,
            publish_timeout=settings.publish_timeout,
        ) as publisher:
            published = await publisher.publish(args.type, data, project_id=args.project)
        print(f"published {published.id} with routing key {published.routing_key}")

    try:
        asyncio.run(publish())
    except ValueError as exc:  # invalid event: nothing was sent
        print(f"eventbridge publish: {exc}", file=sys.stderr)
        return 2
    except PublishError as exc:
        print(f"eventbridge publish: {exc}", file=sys.stderr)
        return 1
    return 0
