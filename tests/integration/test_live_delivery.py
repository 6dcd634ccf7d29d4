"""The live path end to end: SDK or hand-written publish → RabbitMQ → bridge → both transports."""

from __future__ import annotations

import itertools
import json
from typing import Any

import aio_pika

from producers import EventPublisher, PublishedEvent
from schemas.events import socketio_event_name
from tests.helpers import make_envelope, wait_for
from tests.integration.clients import socketio_client, websocket_client
from tests.integration.conftest import RunningBridge


async def publish_one_of_each(events: EventPublisher, project: str) -> list[PublishedEvent]:
    """Publish one event of every v1 type for `project` through the typed SDK helpers."""
    return [
        await events.agent_status(project, agent_id="planner", status="running", message="go"),
        await events.progress_update(project, agent_id="planner", progress=0.5, stage="plan"),
        await events.generation_complete(
            project,
            agent_id="planner",
            artifacts=[{"name": "main.tf", "kind": "terraform"}],
            summary="done",
        ),
        await events.error(project, code="E_QUOTA", message="quota exceeded", retryable=True),
        await events.activity_created(project, actor="alice", action="approved", priority="high"),
        await events.step_updated(
            project, workflow_id="wf", step_id="s1", changes={"status": "editing"}
        ),
        await events.step_completed(project, workflow_id="wf", step_id="s1", result={"ok": 1}),
        await events.deployment_status(project, deployment_id="d1", status="running", progress=0.3),
        await events.deployment_log(project, deployment_id="d1", stream="stdout", line="Apply!"),
    ]


def without_offset(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload minus the `offset` the bridge adds: what the producer sent."""
    return {key: value for key, value in payload.items() if key != "offset"}


async def test_every_event_type_reaches_both_transports(
    bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """Each v1 type arrives in its room under its Socket.IO name and over /ws, envelope intact."""
    async with (
        socketio_client(bridge.http_url) as sio,
        websocket_client(f"{bridge.ws_url}/ws") as ws,
    ):
        ack = await sio.call("join-project", "p1")
        assert ack["ok"] is True
        assert ack["room"] == "project:p1"
        assert ack["epoch"] == bridge.hub.epoch
        assert isinstance(ack["offset"], int)
        reply = await ws.request({"type": "subscribe", "project_id": "p1"}, "subscribed")
        assert reply == {
            "type": "subscribed",
            "room": "project:p1",
            "epoch": bridge.hub.epoch,
            "offset": reply["offset"],
        }
        sent = await publish_one_of_each(publisher, "p1")
        sio_events = await sio.wait_for_events(len(sent))
        ws_events = await ws.wait_for_events(len(sent))

    names = [name for name, data in sio.received if isinstance(data, dict) and "offset" in data]
    assert names == [socketio_event_name(event.envelope["type"]) for event in sent]
    assert "activity-created" in names
    assert "step-updated" in names
    assert "step-completed" in names
    for received in (sio_events, ws_events):
        assert [without_offset(payload) for payload in received] == [e.envelope for e in sent]
        offsets = [payload["offset"] for payload in received]
        assert offsets == sorted(set(offsets))
    assert [e["offset"] for e in sio_events] == [e["offset"] for e in ws_events]


async def test_rooms_isolate_projects_and_feed_collects_activities(
    bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """Other projects' events never arrive; the feed gets every activity; two rooms, one copy."""
    async with (
        socketio_client(bridge.http_url) as p1_only,
        socketio_client(bridge.http_url) as feed_only,
        socketio_client(bridge.http_url) as both,
        websocket_client(f"{bridge.ws_url}/ws") as ws_both,
    ):
        assert (await p1_only.call("join-project", {"project_id": "p1"}))["ok"]
        assert (await feed_only.call("join-activity-feed"))["ok"]
        assert (await both.call("join-project", "p1"))["ok"]
        assert (await both.call("join-activity-feed"))["ok"]
        await ws_both.request({"type": "subscribe", "project_id": "p1"}, "subscribed")
        await ws_both.request({"type": "subscribe", "room": "activity-feed"}, "subscribed")

        p1_activity = await publisher.activity_created("p1", actor="a", action="x")
        p2_activity = await publisher.activity_created("p2", actor="b", action="y")
        global_activity = await publisher.activity_created(None, actor="c", action="z")
        p2_status = await publisher.agent_status("p2", agent_id="x", status="queued")
        p1_status = await publisher.agent_status("p1", agent_id="y", status="queued")
        marker = await publisher.agent_status("p1", agent_id="last", status="idle")

        await p1_only.wait_for_events(3)
        await both.wait_for_events(5)
        await ws_both.wait_for_events(5)
        await feed_only.wait_for_events(3)

    def ids(events: list[dict[str, Any]]) -> list[str]:
        return [event["id"] for event in events]

    assert ids(p1_only.events()) == [p1_activity.id, p1_status.id, marker.id]
    assert ids(feed_only.events()) == [p1_activity.id, p2_activity.id, global_activity.id]
    expected_both = [p1_activity.id, p2_activity.id, global_activity.id, p1_status.id, marker.id]
    assert ids(both.events()) == expected_both
    assert ids(ws_both.events()) == expected_both
    assert p2_status.id not in ids(both.events())


async def test_two_thousand_events_arrive_in_publish_order(
    bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """2,000 events of one project reach each client in publish order, offsets strictly rising."""
    async with (
        socketio_client(bridge.http_url) as sio,
        websocket_client(f"{bridge.ws_url}/ws/ai/order") as ws,
    ):
        assert (await sio.call("join-project", "order"))["ok"]
        await wait_for(lambda: bool(ws.replies("subscribed")))
        envelopes = [
            make_envelope(
                "deployment_log",
                "order",
                {"deployment_id": "d", "stream": "stdout", "line": str(i)},
            )
            for i in range(2000)
        ]
        sent = await publisher.publish_batch(envelopes)
        sio_events = await sio.wait_for_events(2000, timeout=60)
        ws_events = await ws.wait_for_events(2000, timeout=60)

    expected = [event.id for event in sent]
    for received in (sio_events, ws_events):
        assert [event["id"] for event in received] == expected
        offsets = [event["offset"] for event in received]
        assert all(a < b for a, b in itertools.pairwise(offsets))


async def test_hand_written_json_is_delivered(
    bridge: RunningBridge, amqp_connection: aio_pika.abc.AbstractConnection, prefix: str
) -> None:
    """A JSON message published with plain aio-pika, no SDK, reaches the room."""
    envelope = {
        "id": "hand-written-1",
        "type": "deployment_status",
        "schema_version": 1,
        "project_id": "manual",
        "source": "bash-script",
        "occurred_at": "2026-11-26T12:00:00.123Z",
        "data": {"deployment_id": "d9", "status": "succeeded", "extra_field": [1, 2]},
    }
    async with websocket_client(f"{bridge.ws_url}/ws/ai/manual") as ws:
        await wait_for(lambda: bool(ws.replies("subscribed")))
        channel = await amqp_connection.channel()
        exchange = await channel.get_exchange(f"{prefix}.events")
        await exchange.publish(
            aio_pika.Message(json.dumps(envelope).encode(), content_type="application/json"),
            routing_key="project.manual.deployment_status",
        )
        [received] = await ws.wait_for_events(1)
    assert without_offset(received) == envelope
