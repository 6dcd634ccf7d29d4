"""Client-originated events: published through the exchange with confirms, then delivered."""

from __future__ import annotations

import json
from typing import Any

import aio_pika

from tests.helpers import wait_for
from tests.integration.clients import socketio_client, websocket_client
from tests.integration.conftest import RunningBridge


async def test_client_events_reach_room_and_plain_amqp_consumer(
    bridge: RunningBridge, amqp_connection: aio_pika.abc.AbstractConnection, prefix: str
) -> None:
    """new-activity, step-updated, step-completed from one client reach the room and AMQP."""
    channel = await amqp_connection.channel()
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(f"{prefix}.events", routing_key="#")
    seen: list[tuple[str, dict[str, Any]]] = []

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        seen.append((message.routing_key or "", json.loads(message.body)))
        await message.ack()

    await queue.consume(on_message)

    async with (
        socketio_client(bridge.http_url) as sender,
        socketio_client(bridge.http_url) as peer,
        websocket_client(f"{bridge.ws_url}/ws") as ws_peer,
        socketio_client(bridge.http_url) as feed,
    ):
        for client in (sender, peer):
            assert (await client.call("join-project", "p1"))["ok"]
        assert (await feed.call("join-activity-feed"))["ok"]
        await ws_peer.request({"type": "subscribe", "project_id": "p1"}, "subscribed")

        activity = await sender.call(
            "new-activity", {"project_id": "p1", "actor": "alice", "action": "commented"}
        )
        updated = await sender.call(
            "step-updated",
            {"project_id": "p1", "workflow_id": "wf", "step_id": "s1", "changes": {"a": 1}},
        )
        completed = await sender.call(
            "step-completed",
            {"project_id": "p1", "workflow_id": "wf", "step_id": "s1", "result": "ok"},
        )
        for ack in (activity, updated, completed):
            assert ack["ok"] is True, ack
            assert isinstance(ack["id"], str)

        await peer.wait_for_events(3)
        await sender.wait_for_events(3)
        await ws_peer.wait_for_events(3)
        await feed.wait_for_events(1)
        await wait_for(lambda: len(seen) >= 3)

    ids = [activity["id"], updated["id"], completed["id"]]
    # the peer also gets the presence of the project's room (docs/clients.md, "Presence")
    received = [
        name
        for name, data in peer.received
        if isinstance(data, dict) and not name.startswith("presence")
    ]
    assert received == [
        "activity-created",
        "step-updated",
        "step-completed",
    ]
    assert [event["id"] for event in peer.events()] == ids
    assert [event["id"] for event in ws_peer.events()] == ids
    assert [event["id"] for event in feed.events()] == [activity["id"]]
    assert [(key, body["id"]) for key, body in seen] == [
        ("project.p1.activity_created", ids[0]),
        ("project.p1.step_updated", ids[1]),
        ("project.p1.step_completed", ids[2]),
    ]
    assert seen[1][1]["data"] == {"workflow_id": "wf", "step_id": "s1", "changes": {"a": 1}}


async def test_global_activity_from_a_client_reaches_the_feed(bridge: RunningBridge) -> None:
    """new-activity without project_id is a global activity and reaches the activity feed."""
    async with socketio_client(bridge.http_url) as sender, socketio_client(bridge.http_url) as feed:
        assert (await feed.call("join-activity-feed"))["ok"]
        ack = await sender.call("new-activity", {"actor": "ops", "action": "paged"})
        assert ack["ok"] is True
        [event] = await feed.wait_for_events(1)
    assert event["id"] == ack["id"]
    assert event["project_id"] is None


async def test_invalid_client_events_are_refused_and_nothing_is_published(
    bridge: RunningBridge,
) -> None:
    """Bad client-originated events get the error ack, reach nobody, and the connection works."""
    async with socketio_client(bridge.http_url) as sender, socketio_client(bridge.http_url) as peer:
        assert (await peer.call("join-project", "p1"))["ok"]
        cases: list[tuple[str, Any, str]] = [
            (
                "step-updated",
                {"workflow_id": "wf", "step_id": "s", "changes": {}},
                "invalid_payload",
            ),
            ("step-updated", {"project_id": "p1", "step_id": "s", "changes": {}}, "invalid_data"),
            (
                "new-activity",
                {"project_id": "bad id", "actor": "a", "action": "b"},
                "invalid_project_id",
            ),
            ("new-activity", {"actor": "a", "action": "b", "priority": "urgent"}, "invalid_data"),
            ("step-completed", "not an object", "invalid_payload"),
        ]
        for name, payload, code in cases:
            ack = await sender.call(name, payload)
            assert ack["ok"] is False
            assert ack["error"]["code"] == code, (name, ack)
            assert ack["error"]["message"]
        good = await sender.call(
            "step-completed", {"project_id": "p1", "workflow_id": "wf", "step_id": "s"}
        )
        assert good["ok"] is True
        [event] = await peer.wait_for_events(1)
    assert event["id"] == good["id"]
