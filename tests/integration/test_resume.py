"""Offline delivery: resume by offset over both transports, with producers publishing throughout."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bridge.settings import Settings
from producers import EventPublisher, PublishedEvent
from tests.helpers import wait_for
from tests.integration.clients import socketio_client, websocket_client
from tests.integration.conftest import RunningBridge, running_bridge
from tests.integration.markers import events_before, publish_feed_marker, publish_marker


class Producer:
    """Publishes events for p1 and p2 until stopped, remembering each event's id and project."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher
        self.published: list[PublishedEvent] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self, pause: float) -> None:
        number = 0
        while not self._stop.is_set():
            number += 1
            project = "p1" if number % 3 else "p2"
            if number % 7 == 0:
                event = await self._publisher.activity_created(
                    project, actor="a", action=str(number)
                )
            else:
                event = await self._publisher.progress_update(
                    project, agent_id=f"agent-{number % 4}", progress=(number % 100) / 100
                )
            self.published.append(event)
            await asyncio.sleep(pause)

    def start(self, pause: float = 0.0) -> None:
        """Start publishing, `pause` seconds between events."""
        self._task = asyncio.create_task(self._run(pause))

    async def stop(self) -> None:
        """Stop publishing and wait for the last publish to be confirmed."""
        self._stop.set()
        assert self._task is not None
        await self._task

    def ids_of(self, project: str) -> list[str]:
        """Ids of every event published for `project`, in publish order."""
        return [e.id for e in self.published if e.envelope["project_id"] == project]

    async def wait_count(self, count: int) -> None:
        """Wait until `count` more events than now have been published."""
        target = len(self.published) + count
        await wait_for(lambda: len(self.published) >= target, timeout=60)


@asynccontextmanager
async def producing(publisher: EventPublisher, pause: float = 0.0) -> AsyncIterator[Producer]:
    """A running `Producer`, stopped on exit."""
    producer = Producer(publisher)
    producer.start(pause)
    try:
        yield producer
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()


def assert_exact_sequence(received: list[dict[str, Any]], expected_ids: list[str]) -> None:
    """The events received are exactly the expected ones, in order, once, offsets rising."""
    ids = [event["id"] for event in received]
    assert len(ids) == len(set(ids)), "duplicate event ids"
    missing = [event_id for event_id in expected_ids if event_id not in set(ids)]
    assert not missing, f"{len(missing)} events missing, first {missing[:3]}"
    assert ids == expected_ids
    offsets = [event["offset"] for event in received]
    assert offsets == sorted(set(offsets)), "offsets not strictly increasing"


def after_offset(producer: Producer, received: list[dict[str, Any]], since: int) -> list[str]:
    """Ids of p1 events the client should see after `since`: from its last seen id onwards."""
    p1 = producer.ids_of("p1")
    last_seen = next(e["id"] for e in reversed(received) if e["offset"] == since)
    return p1[p1.index(last_seen) + 1 :]


async def test_websocket_reload_resumes_exactly_while_producers_publish(
    bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """A WebSocket client gone while 1,000 events are published, back on a new connection with
    `since` and `epoch`, gets exactly the missed p1 events in order, then live ones."""
    async with producing(publisher) as producer:
        async with websocket_client(f"{bridge.ws_url}/ws") as ws:
            subscribed = await ws.request({"type": "subscribe", "project_id": "p1"}, "subscribed")
            before = await ws.wait_for_events(30)
        since = before[-1]["offset"]
        await producer.wait_count(1000)
        async with websocket_client(f"{bridge.ws_url}/ws") as ws:
            reply = await ws.request(
                {
                    "type": "subscribe",
                    "project_id": "p1",
                    "since": since,
                    "epoch": subscribed["epoch"],
                },
                "subscribed",
            )
            assert reply["epoch"] == subscribed["epoch"]
            await producer.wait_count(300)  # live events after the switch
            await producer.stop()
            expected = after_offset(producer, before, since)
            await ws.wait_for_events(len(expected), timeout=30)
            # A duplicate or stray event would arrive before the marker.
            resumed = await events_before(ws, await publish_marker(publisher, "p1"))
    assert not ws.replies("resync_required")
    assert_exact_sequence(resumed, expected)
    assert {event["project_id"] for event in resumed} == {"p1"}


async def test_socketio_reconnect_resumes_exactly_while_producers_publish(
    bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """The same Socket.IO client disconnects, misses 1,000 events, reconnects and re-joins with
    `since`: it gets exactly the missed events in order, then live ones."""
    async with producing(publisher) as producer, socketio_client(bridge.http_url) as sio:
        joined = await sio.call("join-project", "p1")
        before = await sio.wait_for_events(30)
        await sio.client.disconnect()
        since = before[-1]["offset"]
        await producer.wait_count(1000)
        sio.received.clear()
        await sio.client.connect(bridge.http_url, transports=["websocket"], wait_timeout=5)
        ack = await sio.call(
            "join-project", {"project_id": "p1", "since": since, "epoch": joined["epoch"]}
        )
        assert ack["ok"] is True
        await producer.wait_count(300)
        await producer.stop()
        expected = after_offset(producer, before, since)
        await sio.wait_for_events(len(expected), timeout=30)
        resumed = await events_before(sio, await publish_marker(publisher, "p1"))
    assert not [name for name, _ in sio.received if name == "resync-required"]
    assert_exact_sequence(resumed, expected)


async def test_resume_older_than_memory_is_served_from_the_log(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """With a 50-event memory buffer, a resume 600 events back is read from the log, exactly."""
    async with (
        running_bridge(bridge_settings(history_max_events=50)) as bridge,
        producing(publisher) as producer,
    ):
        async with websocket_client(f"{bridge.ws_url}/ws/ai/p1") as ws:
            before = await ws.wait_for_events(10)
        since = before[-1]["offset"]
        await producer.wait_count(600)
        assert not bridge.hub.history.covers(since)
        async with (
            websocket_client(f"{bridge.ws_url}/ws") as ws,
            socketio_client(bridge.http_url) as sio,
        ):
            await ws.request(
                {"type": "subscribe", "project_id": "p1", "since": since}, "subscribed"
            )
            assert (await sio.call("join-project", {"project_id": "p1", "since": since}))["ok"]
            await producer.wait_count(100)
            await producer.stop()
            expected = after_offset(producer, before, since)
            await ws.wait_for_events(len(expected), timeout=30)
            await sio.wait_for_events(len(expected), timeout=30)
            marker = await publish_marker(publisher, "p1")
            from_ws, from_sio = await events_before(ws, marker), await events_before(sio, marker)
    assert_exact_sequence(from_ws, expected)
    assert_exact_sequence(from_sio, expected)


async def test_resume_of_two_rooms_delivers_each_event_once(
    bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """Resuming project p1 and the activity feed on one connection gets every missed event of
    both rooms once, p1's activities included, each room in order."""
    async with producing(publisher) as producer:
        async with websocket_client(f"{bridge.ws_url}/ws") as ws:
            await ws.request({"type": "subscribe", "project_id": "p1"}, "subscribed")
            await ws.request({"type": "subscribe", "room": "activity-feed"}, "subscribed")
            before = await ws.wait_for_events(40)
        since = before[-1]["offset"]
        await producer.wait_count(500)
        async with websocket_client(f"{bridge.ws_url}/ws") as ws:
            for room in ({"project_id": "p1"}, {"room": "activity-feed"}):
                await ws.request({"type": "subscribe", "since": since, **room}, "subscribed")
            await producer.stop()
            wanted = [
                e
                for e in producer.published
                if e.envelope["project_id"] == "p1" or e.envelope["type"] == "activity_created"
            ]
            last_seen = next(i for i, e in enumerate(wanted) if e.id == before[-1]["id"])
            expected = [e.id for e in wanted[last_seen + 1 :]]
            await ws.wait_for_events(len(expected), timeout=30)
            # One marker per room: a room's marker comes after that room's catch-up.
            markers = [await publish_marker(publisher, "p1"), await publish_feed_marker(publisher)]
            resumed = await events_before(ws, *markers)
    ids = [event["id"] for event in resumed]
    assert sorted(ids) == sorted(expected)
    assert len(ids) == len(set(ids))
    p1_ids = [e["id"] for e in resumed if e["project_id"] == "p1"]
    assert p1_ids == [i for i in expected if i in set(p1_ids)]


@pytest.mark.parametrize("transport", ["websocket", "socketio"])
async def test_each_resync_reason_is_sent_and_live_delivery_continues(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher, transport: str
) -> None:
    """epoch_mismatch, future_offset and too_many each produce resync-required with that
    reason, then the room's snapshot, then live events."""
    async with running_bridge(bridge_settings(catchup_max_events=20)) as bridge:
        reasons = ("epoch_mismatch", "future_offset", "too_many")
        for number in range(60):
            for reason in reasons:
                project = reason.replace("_", "-")
                await publisher.progress_update(project, agent_id="a", progress=number / 100)
        await wait_for(lambda: bridge.hub.events_routed >= 180)
        head, epoch = bridge.hub.head, bridge.hub.epoch
        cases = {
            "epoch_mismatch": {"since": head - 5, "epoch": "not-this-log"},
            "future_offset": {"since": head + 1000, "epoch": epoch},
            "too_many": {"since": 0, "epoch": epoch},
        }
        for reason, resume in cases.items():
            project = reason.replace("_", "-")
            notice, snapshot, live = await join_expecting_notice(
                bridge, transport, project, resume, publisher
            )
            assert notice["reason"] == reason
            assert notice["room"] == f"project:{project}"
            assert notice["epoch"] == epoch
            assert notice["offset"] >= head
            assert [(e["type"], e["data"]["progress"]) for e in snapshot] == [
                ("progress_update", 0.59)
            ]
            assert live["type"] == "agent_status"
            assert live["project_id"] == project


async def join_expecting_notice(
    bridge: RunningBridge,
    transport: str,
    project: str,
    resume: dict[str, Any],
    publisher: EventPublisher,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """Join `project` with `resume`; return the resync notice, what came between it and the
    live event (the snapshot), and the live event published after the notice."""
    if transport == "websocket":
        async with websocket_client(f"{bridge.ws_url}/ws") as ws:
            await ws.request({"type": "subscribe", "project_id": project, **resume}, "subscribed")
            await wait_for(lambda: bool(ws.replies("resync_required")))
            await publisher.agent_status(project, agent_id="live", status="running")
            await ws.wait_for_events(2)
            frames = ws.received
            [notice] = ws.replies("resync_required")
    else:
        async with socketio_client(bridge.http_url) as sio:
            ack = await sio.call("join-project", {"project_id": project, **resume})
            assert ack["ok"] is True
            await wait_for(lambda: any(name == "resync-required" for name, _ in sio.received))
            await publisher.agent_status(project, agent_id="live", status="running")
            await sio.wait_for_events(2)
            frames = [data for _, data in sio.received]
            [notice] = [data for name, data in sio.received if name == "resync-required"]
    after_notice = frames[frames.index(notice) + 1 :]
    events = [frame for frame in after_notice if "offset" in frame and "id" in frame]
    return notice, events[:-1], events[-1]


async def test_room_resumed_after_another_does_not_resend_what_that_room_delivered(
    bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """A connection in the activity feed that then resumes project p1 from an older offset does
    not get again the p1 activities the feed already delivered; it gets every other missed one."""
    first = await publisher.agent_status("p1", agent_id="a", status="queued")
    async with websocket_client(f"{bridge.ws_url}/ws") as ws:
        await ws.request({"type": "subscribe", "room": "activity-feed"}, "subscribed")
        status = await publisher.agent_status("p1", agent_id="a", status="running")
        activity = await publisher.activity_created("p1", actor="a", action="b")
        [delivered] = await ws.wait_for_events(1)
        assert delivered["id"] == activity.id
        await wait_for(lambda: bridge.hub.events_routed >= 3)
        since = delivered["offset"] - 2  # the offset of `first` (published just before)
        await ws.request({"type": "subscribe", "project_id": "p1", "since": since}, "subscribed")
        live = await publisher.agent_status("p1", agent_id="a", status="succeeded")
        await ws.wait_for_events(3)
        markers = [await publish_marker(publisher, "p1"), await publish_feed_marker(publisher)]
        ids = [event["id"] for event in await events_before(ws, *markers)]
    assert first.id not in ids
    assert ids == [activity.id, status.id, live.id]


async def test_resume_from_the_log_across_a_segment_boundary_is_not_a_gap(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """Offsets skip one at each new log segment; a resume read from the log right before such a
    skip still gets every later event, not `expired`."""
    settings = bridge_settings(log_segment_bytes=4096, history_max_events=5)
    async with running_bridge(settings) as bridge:
        async with websocket_client(f"{bridge.ws_url}/ws/ai/p1") as ws:
            for number in range(60):
                await publisher.progress_update("p1", agent_id="a", progress=number / 100)
            seen = await ws.wait_for_events(60)
        offsets = [event["offset"] for event in seen]
        skips = [a for a, b in itertools.pairwise(offsets) if b - a > 1]
        assert skips, "no segment boundary among 60 events; the test needs smaller segments"
        since = skips[0]
        expected = [event["id"] for event in seen if event["offset"] > since]
        async with websocket_client(f"{bridge.ws_url}/ws") as ws:
            await ws.request(
                {"type": "subscribe", "project_id": "p1", "since": since}, "subscribed"
            )
            await ws.wait_for_events(len(expected))
            resumed = await events_before(ws, await publish_marker(publisher, "p1"))
        assert not ws.replies("resync_required")
    assert [event["id"] for event in resumed] == expected
