"""Snapshots on a fresh join, warm restarts, and resync when the log has expired."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aio_pika

from bridge.broker.eventlog import LogReader
from bridge.settings import Settings
from producers import EventPublisher, PublishedEvent
from schemas import Envelope
from tests.helpers import make_envelope, wait_for
from tests.integration.clients import socketio_client, websocket_client
from tests.integration.conftest import running_bridge
from tests.integration.markers import events_before, publish_marker


async def publish_state_history(publisher: EventPublisher) -> list[PublishedEvent]:
    """Publish several state changes per agent and deployment (plus noise, 26 events); return
    the latest state event per (type, subject) of project p1, in publish order."""
    order: list[str] = []
    latest: dict[str, PublishedEvent] = {}

    def keep(key: str, event: PublishedEvent) -> None:
        order.append(event.id)
        latest[key] = event

    for round_number in range(3):
        for agent in ("planner", "writer"):
            status = ("queued", "running", "succeeded")[round_number]
            keep(
                f"agent_status/{agent}",
                await publisher.agent_status("p1", agent_id=agent, status=status),
            )
            keep(
                f"progress_update/{agent}",
                await publisher.progress_update("p1", agent_id=agent, progress=round_number / 2),
            )
        status = ("pending", "running", "done")[round_number]
        keep(
            "deployment_status/d1",
            await publisher.deployment_status("p1", deployment_id="d1", status=status),
        )
        await publisher.deployment_log("p1", deployment_id="d1", stream="stdout", line="...")
        await publisher.activity_created("p1", actor="a", action="b")
        await publisher.agent_status("p2", agent_id="planner", status="failed")
    keep(
        "deployment_status/d2",
        await publisher.deployment_status("p1", deployment_id="d2", status="pending"),
    )
    keep(
        "agent_status/planner",
        await publisher.agent_status("p1", agent_id="planner", status="idle"),
    )
    return sorted(latest.values(), key=lambda event: order.index(event.id))


async def test_fresh_join_gets_latest_state_per_agent_and_deployment_then_live(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """A join without `since` first receives exactly the latest agent_status and progress_update
    per agent and deployment_status per deployment of the project, in offset order, then live."""
    async with running_bridge(bridge_settings()) as bridge:
        latest = await publish_state_history(publisher)
        await wait_for(lambda: bridge.hub.head >= 0 and bridge.hub.events_routed >= 26)
        expected = latest
        async with (
            websocket_client(f"{bridge.ws_url}/ws/ai/p1") as ws,
            socketio_client(bridge.http_url) as sio,
        ):
            assert (await sio.call("join-project", "p1"))["ok"]
            live = await publisher.agent_status("p1", agent_id="writer", status="failed")
            await ws.wait_for_events(len(expected) + 1)
            await sio.wait_for_events(len(expected) + 1)
            marker = await publish_marker(publisher, "p1")
            ws_events = await events_before(ws, marker)
            sio_events = await events_before(sio, marker)
            assert len(ws_events) == len(sio_events) == len(expected) + 1
    for received in (ws_events, sio_events):
        assert [e["id"] for e in received] == [e.id for e in expected] + [live.id]
        offsets = [e["offset"] for e in received]
        assert offsets == sorted(offsets)


async def test_activity_feed_join_has_no_snapshot(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """Joining the activity feed without `since` sends no past events, only live ones."""
    async with running_bridge(bridge_settings()) as bridge:
        await publish_state_history(publisher)
        await wait_for(lambda: bridge.hub.events_routed >= 26)
        async with websocket_client(f"{bridge.ws_url}/ws") as ws:
            await ws.request({"type": "subscribe", "room": "activity-feed"}, "subscribed")
            live = await publisher.activity_created(None, actor="x", action="y")
            [event] = await ws.wait_for_events(1)
    assert event["id"] == live.id


async def test_warm_restart_serves_snapshots_and_short_resumes_at_once(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """After a restart the bridge rebuilds state and buffers from the log (in the background,
    once it is ready): the first join gets the full snapshot, and a resume from before the
    restart is served."""
    settings = bridge_settings()
    async with running_bridge(settings) as first:
        async with websocket_client(f"{first.ws_url}/ws/ai/p1") as ws:
            await wait_for(lambda: bool(ws.replies("subscribed")))
            early = await publisher.agent_status("p1", agent_id="early", status="running")
            [seen] = await ws.wait_for_events(1)
        since = seen["offset"]
        assert seen["id"] == early.id
    latest = await publish_state_history(publisher)  # while the bridge is down
    async with running_bridge(settings) as second:
        await wait_for(lambda: second.hub.history.covers(since))
        async with (
            websocket_client(f"{second.ws_url}/ws") as fresh,
            websocket_client(f"{second.ws_url}/ws") as resumed,
        ):
            await fresh.request({"type": "subscribe", "project_id": "p1"}, "subscribed")
            await resumed.request(
                {"type": "subscribe", "project_id": "p1", "since": since}, "subscribed"
            )
            await fresh.wait_for_events(len(latest) + 1)
            await resumed.wait_for_events(23)  # the p1 events of the history
            marker = await publish_marker(publisher, "p1")
            snapshot = await events_before(fresh, marker)
            missed = await events_before(resumed, marker)
    expected_snapshot = [early, *latest]
    assert [e["id"] for e in snapshot] == [e.id for e in expected_snapshot]
    assert len(missed) == 23  # every p1 event published while the bridge was down, once
    assert all(e["project_id"] == "p1" and e["offset"] > since for e in missed)
    assert {e["id"] for e in missed} >= {e.id for e in latest}
    assert not resumed.replies("resync_required")


async def first_offset(connection: aio_pika.abc.AbstractConnection, log: str) -> int:
    """The offset of the oldest record the log still holds."""
    async with LogReader(connection, log, "first", prefetch=10) as reader:
        record = await asyncio.wait_for(reader.next(), 10)
        assert record is not None
        return record.offset


async def test_resume_past_retention_gets_resync_expired_then_live(
    bridge_settings: Callable[..., Settings],
    publisher: EventPublisher,
    amqp_connection: aio_pika.abc.AbstractConnection,
    prefix: str,
) -> None:
    """When retention removed the events after `since` and memory does not hold them either,
    the client is told `expired` and then receives live events."""
    settings = bridge_settings(log_max_bytes=20_000, log_segment_bytes=4096, history_max_events=10)
    async with running_bridge(settings) as bridge:
        for number in range(400):
            await publisher.progress_update("p1", agent_id="a", progress=(number % 100) / 100)
            if number % 50 == 49 and await first_offset(amqp_connection, f"{prefix}.log") > 5:
                break
        assert await first_offset(amqp_connection, f"{prefix}.log") > 5
        async with websocket_client(f"{bridge.ws_url}/ws") as ws:
            await ws.request({"type": "subscribe", "project_id": "p1", "since": 1}, "subscribed")
            await wait_for(lambda: bool(ws.replies("resync_required")))
            [notice] = ws.replies("resync_required")
            live = await publisher.agent_status("p1", agent_id="b", status="running")
            await wait_for(lambda: any(e["id"] == live.id for e in ws.events()))
    assert notice["reason"] == "expired"
    assert notice["room"] == "project:p1"


def progress(number: int, project: str = "p1") -> Envelope:
    """A progress_update of `project` carrying its number."""
    return make_envelope(
        "progress_update", project, {"agent_id": "a", "progress": 0.5, "n": number}
    )


async def test_a_fresh_join_in_a_busy_room_keeps_its_connection_while_a_restart_rebuilds(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """A fresh join answered while a restarted bridge still rebuilds its state is not cut off
    when its room sends more than the client's queue holds meanwhile: every event arrives, in
    order, once, and the connection stays open."""
    settings = bridge_settings(outbox_size=10)
    async with running_bridge(settings):
        pass  # the log exists from the first start on
    await publisher.publish_batch([progress(n, "elsewhere") for n in range(40_000)])
    async with running_bridge(settings) as bridge, websocket_client(f"{bridge.ws_url}/ws") as ws:
        await ws.request({"type": "subscribe", "project_id": "p1"}, "subscribed")
        routed = bridge.hub.events_routed
        sent = await publisher.publish_batch([progress(n) for n in range(60)])
        # The premise: all 60 (six times the client's queue) arrived while the join was held.
        await wait_for(lambda: bridge.hub.events_routed >= routed + 60, 10)
        assert not bridge.hub.state_complete.is_set(), "the rebuild ended too soon to test this"
        received = await ws.wait_for_events(60, timeout=60)
        reply = await ws.request({"type": "subscribe", "project_id": "p2"}, "subscribed")
        assert reply["type"] == "subscribed"  # still connected
    assert [event["id"] for event in received] == [event.id for event in sent]
    assert not ws.replies("resync_required")
