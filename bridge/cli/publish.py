"""`eventbridge publish`: publish one event with a broker confirm, as a producer would.

The event is validated before the broker is contacted. The exchange is looked up before
publishing: a producer publishing to a prefix no bridge serves would otherwise create
`<prefix>.events` on the broker as a side effect of a typo (`--create-exchange` allows it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

import aio_pika

from bridge.broker import connect
from bridge.broker.topology import Names
from bridge.cli.options import BROKER_OPTIONS, add_broker_options, settings_from
from bridge.errors import EventBridgeError, TopologyError
from bridge.settings import Settings
from producers import EventPublisher
from producers.encoding import build_envelope, encode
from schemas import Envelope
from schemas.events import EVENT_MODELS


def add_parser(commands: Any, name: str) -> None:
    """Register the sub-command."""
    parser = commands.add_parser(
        name,
        help="publish one event to the exchange",
        description="Validate one event, publish it to <prefix>.events with a publisher "
        "confirm, and print its id and routing key. Without --project the event is global. "
        "A prefix whose exchange does not exist (no bridge has declared it) is refused unless "
        "--create-exchange is given.",
        epilog="example: eventbridge publish progress_update --project proj-123 "
        '--data \'{"agent_id": "agent-1", "progress": 0.5}\'',
    )
    # Plain names: argparse shows each choice's repr, and an enum member's repr is noise.
    parser.add_argument("type", choices=sorted(map(str, EVENT_MODELS)), help="the event type")
    parser.add_argument("--project", help="the project id (omit for a global event)")
    parser.add_argument("--data", required=True, help="the event's data, a JSON object")
    parser.add_argument("--source", default="eventbridge-cli", help="the producer name")
    parser.add_argument(
        "--create-exchange",
        action="store_true",
        help="declare <prefix>.events if it does not exist (as the SDK does) instead of "
        "refusing; the event is still refused unless a queue, such as a bridge's log, is bound",
    )
    add_broker_options(parser)
    parser.set_defaults(handler=run)


async def check_exchange(settings: Settings) -> None:
    """Raise `TopologyError` unless the prefix's exchange exists (looked up, never declared)."""
    names = Names(settings.prefix)
    connection = await connect.open_connection(settings.amqp_url, "publish")
    async with connection, connection.channel() as channel:
        try:
            await channel.declare_exchange(names.exchange, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            raise TopologyError(
                f"no bridge has declared prefix {settings.prefix!r} on this broker (the exchange "
                f"{names.exchange} does not exist): check --prefix or EVENTBRIDGE_PREFIX, start "
                "the bridge once with this prefix, or pass --create-exchange to declare it anyway"
            ) from None


async def publish(settings: Settings, envelope: Envelope, *, create_exchange: bool) -> None:
    """Publish a validated envelope with a confirm and print its id and routing key."""
    if not create_exchange:
        await check_exchange(settings)
    async with EventPublisher(
        settings.amqp_url,
        prefix=settings.prefix,
        source=envelope.source,
        publish_timeout=settings.publish_timeout,
        max_body_bytes=settings.max_message_bytes,
    ) as publisher:
        published = await publisher.publish_envelope(envelope)
    print(f"published {published.id} with routing key {published.routing_key}")


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
    try:  # validate before anything is sent, or any broker is contacted
        envelope = build_envelope(args.type, data, project_id=args.project, source=args.source)
        encode(envelope, None, max_body_bytes=settings.max_message_bytes)
    except ValueError as exc:  # InvalidEventError
        print(f"eventbridge publish: {exc}", file=sys.stderr)
        return 2
    for library in ("aiormq", "aio_pika"):  # their failures reach the user as one line
        logging.getLogger(library).setLevel(logging.CRITICAL)
    try:
        asyncio.run(publish(settings, envelope, create_exchange=args.create_exchange))
    except ValueError as exc:  # invalid event: nothing was sent
        print(f"eventbridge publish: {exc}", file=sys.stderr)
        return 2
    except EventBridgeError as exc:  # PublishError among them
        print(f"eventbridge publish: {exc}", file=sys.stderr)
        return 1
    return 0
