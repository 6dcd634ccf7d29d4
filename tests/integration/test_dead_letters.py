"""Invalid messages: never delivered, never blocking valid ones, dead-lettered with the reason."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aio_pika

from bridge.settings import Settings
from tests.helpers import wait_for
from tests.integration.clients import websocket_client
from tests.integration.conftest import RunningBridge, running_bridge


def valid(event_id: str, project: str = "p1") -> tuple[str, bytes]:
    """A valid progress_update for `project`, as (routing key, body)."""
    body = {
        "id": event_id,
        "type": "progress_update",
        "schema_version": 1,
        "project_id": project,
        "source": "tests",
        "occurred_at": "2026-11-26T12:00:00Z",
        "data": {"agent_id": "a", "progress": 0.5},
    }
    return f"project.{project}.progress_update", json.dumps(body).encode()


def mutated(event_id: str, **changes: Any) -> bytes:
    """A valid envelope with some fields replaced (a value of None removes the field)."""
    body = json.loads(valid(event_id)[1])
    for key, value in changes.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    return json.dumps(body).encode()


INVALID: dict[str, tuple[str, bytes]] = {
    "invalid_json": ("project.p1.progress_update", b'{"id": "x", not json'),
    "invalid_envelope": ("project.p1.progress_update", mutated("bad-env", source=None)),
    "unknown_type": ("project.p1.telepathy", mutated("bad-type", type="telepathy")),
    "invalid_data": ("project.p1.progress_update", mutated("bad-data", data={"progress": 7})),
    "routing_key_mismatch": ("project.p2.progress_update", mutated("bad-key")),
    "too_large": (
        "project.p1.progress_update",
        mutated("too-big", data={"agent_id": "a", "progress": 0.1, "blob": "x" * 70_000}),
    ),
}


async def publish_raw(
    connection: aio_pika.abc.AbstractConnection, prefix: str, key: str, body: bytes
) -> None:
    """Publish bytes to the exchange with a confirm, as any producer could."""
    channel = await connection.channel()
    exchange = await channel.get_exchange(f"{prefix}.events")
    await exchange.publish(aio_pika.Message(body, message_id="raw"), routing_key=key)
    await channel.close()


async def drain_dead_letters(
    connection: aio_pika.abc.AbstractConnection, prefix: str, expected: int
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take every message from the dead-letter queue once `expected` are there."""
    channel = await connection.channel()
    queue = await channel.get_queue(f"{prefix}.dead-letters")
    taken: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def fetch() -> None:
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            taken.append(message)

    async def enough() -> bool:
        await fetch()
        return len(taken) >= expected

    for _ in range(200):
        if await enough():
            break
        await asyncio.sleep(0.05)
    return taken


async def dead_letters_until_marker(
    connection: aio_pika.abc.AbstractConnection, prefix: str
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Publish an invalid marker message, wait until it is dead-lettered, and return every dead
    letter taken before it.

    The bridge reads the log in order and its one dead-letter writer copies invalid records in
    that order (docs/architecture.md, "Dead letters and their checkpoint"), so once the marker,
    published last, is in the queue, every dead letter due before it is there too. After a
    restart, records below the live start are checked by the background rebuild: wait for it
    (`hub.state_complete`) before calling this.
    """
    marker = f'{{"id": "marker-{uuid.uuid4().hex}", not json'.encode()
    await publish_raw(connection, prefix, "project.p1.progress_update", marker)
    channel = await connection.channel()
    queue = await channel.get_queue(f"{prefix}.dead-letters")
    taken: list[aio_pika.abc.AbstractIncomingMessage] = []
    async with asyncio.timeout(10):
        while not taken or taken[-1].body != marker:
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.02)
            else:
                taken.append(message)
    await channel.close()
    return taken[:-1]


async def test_each_invalid_message_is_dead_lettered_and_valid_ones_flow(
    bridge: RunningBridge, amqp_connection: aio_pika.abc.AbstractConnection, prefix: str
) -> None:
    """Each kind of invalid message is dead-lettered with its reason; valid ones arrive in order."""
    async with websocket_client(f"{bridge.ws_url}/ws/ai/p1") as ws:
        await wait_for(lambda: bool(ws.replies("subscribed")))
        expected_ids = []
        for number, (key, body) in enumerate(INVALID.values()):
            before = f"valid-{number}"
            await publish_raw(amqp_connection, prefix, *valid(before))
            await publish_raw(amqp_connection, prefix, key, body)
            expected_ids.append(before)
        await publish_raw(amqp_connection, prefix, *valid("valid-last"))
        expected_ids.append("valid-last")
        received = await ws.wait_for_events(len(expected_ids))
        dead = await dead_letters_until_marker(amqp_connection, prefix)

    assert [event["id"] for event in received] == expected_ids
    # Each once, in the order published.
    assert [str(m.headers["x-eventbridge-reason"]) for m in dead] == list(INVALID)
    reasons = {str(m.headers["x-eventbridge-reason"]): m for m in dead}
    for reason, message in reasons.items():
        key, body = INVALID[reason]
        assert message.body == body
        assert message.headers["x-eventbridge-routing-key"] == key
        assert isinstance(message.headers["x-eventbridge-offset"], int)
        assert str(message.headers["x-eventbridge-error"]).strip()
    assert "progress" in str(reasons["invalid_data"].headers["x-eventbridge-error"])
    assert "65536" in str(reasons["too_large"].headers["x-eventbridge-error"])


async def test_a_dead_letter_keeps_the_producers_properties_and_headers(
    bridge: RunningBridge, amqp_connection: aio_pika.abc.AbstractConnection, prefix: str
) -> None:
    """A dead letter carries the refused message's id, type, app id, timestamp and headers."""
    sent_at = datetime(2026, 12, 7, 6, 30, 15, tzinfo=UTC)
    channel = await amqp_connection.channel()
    exchange = await channel.get_exchange(f"{prefix}.events")
    await exchange.publish(
        aio_pika.Message(
            b'{"id": "kept", not json',
            message_id="kept-id",
            content_type="application/json",
            content_encoding="utf-8",
            type="progress_update",
            app_id="planner",
            timestamp=sent_at,
            headers={"x-producer-trace": "abc", "x-attempt": 3},
        ),
        routing_key="project.p1.progress_update",
    )
    await channel.close()

    [dead] = await dead_letters_until_marker(amqp_connection, prefix)

    assert dead.body == b'{"id": "kept", not json'
    assert dead.message_id == "kept-id"
    assert (dead.content_type, dead.content_encoding) == ("application/json", "utf-8")
    assert (dead.type, dead.app_id, dead.timestamp) == ("progress_update", "planner", sent_at)
    headers = dead.headers or {}
    assert (headers["x-producer-trace"], headers["x-attempt"]) == ("abc", 3)
    assert headers["x-eventbridge-reason"] == "invalid_json"
    assert headers["x-eventbridge-routing-key"] == "project.p1.progress_update"


async def test_restart_dead_letters_what_arrived_while_down_exactly_once(
    bridge_settings: Callable[..., Settings],
    amqp_connection: aio_pika.abc.AbstractConnection,
    prefix: str,
) -> None:
    """After a restart, invalid messages published while the bridge was down are dead-lettered,
    and those handled before are not dead-lettered again."""
    settings = bridge_settings()
    async with running_bridge(settings):
        await publish_raw(amqp_connection, prefix, *INVALID["invalid_json"])
        first = await drain_dead_letters(amqp_connection, prefix, 1)
    await publish_raw(amqp_connection, prefix, *INVALID["unknown_type"])
    async with running_bridge(settings) as bridge:
        # What arrived while it was down is checked by the rebuild, in the background: once that
        # is done, a wrongly repeated dead letter would be dead-lettered before the marker.
        await asyncio.wait_for(bridge.hub.state_complete.wait(), 10)
        second = await dead_letters_until_marker(amqp_connection, prefix)
    assert [m.headers["x-eventbridge-reason"] for m in first] == ["invalid_json"]
    assert [m.headers["x-eventbridge-reason"] for m in second] == ["unknown_type"]
