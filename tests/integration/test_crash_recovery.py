"""The bridge killed with SIGKILL twice while 10,000 events are published: nothing is lost."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import socketio
import websockets

from producers import EventPublisher, PublishedEvent
from schemas.envelope import Envelope
from tests.helpers import make_envelope, wait_for
from tests.integration.conftest import free_port, serve_process, wait_ready

# Under pytest-xdist the tests that load the bridge run on one worker, one after another.
pytestmark = pytest.mark.xdist_group("load")

TOTAL = 10_000
KILL_AT = (2_500, 6_500)
READY_WITHIN = 60.0
"""Seconds a (re)started bridge may take to be ready: it reads the log's recent events back
first, which takes a few seconds alone and several times longer beside other tests."""


def rooms_of(event: dict[str, Any]) -> set[str]:
    """The rooms an event belongs to (docs/clients.md, "Rooms, events and offsets")."""
    rooms = set()
    if event["project_id"] is not None:
        rooms.add(f"project:{event['project_id']}")
    if event["type"] == "activity_created":
        rooms.add("activity-feed")
    return rooms


class ResumingClient:
    """A client that reconnects after every drop and resumes each room from its last offset,
    the way the documented browser examples do."""

    def __init__(self, name: str, rooms: list[str]) -> None:
        self.name = name
        self.rooms = rooms
        self.last: dict[str, int] = {}
        self.epoch: str | None = None
        self.received: list[dict[str, Any]] = []
        self.connections = 0
        self.duplicates_within_connection = 0
        self.resyncs: list[dict[str, Any]] = []

    def join_payload(self, room: str) -> dict[str, Any]:
        """The resume fields for a room: `since` and `epoch` once something was received."""
        if room not in self.last:
            return {}
        return {"since": self.last[room], "epoch": self.epoch}

    def take(self, event: dict[str, Any], seen_here: set[str]) -> None:
        """Record one received event and advance the offset of the room it counts in: the one
        joined first among its rooms (docs/delivery-guarantees.md, "Not sent twice"). Advancing
        the feed on a project's activity would skip the feed's older events on the next resume."""
        if event["id"] in seen_here:
            self.duplicates_within_connection += 1
        seen_here.add(event["id"])
        self.received.append(event)
        room = next((room for room in self.rooms if room in rooms_of(event)), None)
        if room is not None:
            self.last[room] = max(self.last.get(room, -1), event["offset"])

    def joined(self, reply: dict[str, Any]) -> None:
        """Remember the epoch; a fresh join starts counting from the room's current offset."""
        self.epoch = reply["epoch"]
        self.last.setdefault(reply["room"], reply["offset"])


async def run_websocket_client(client: ResumingClient, port: int, stop: asyncio.Event) -> None:
    """Keep a native WebSocket client connected and resuming until `stop`."""
    while not stop.is_set():
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=2) as ws:
                client.connections += 1
                seen_here: set[str] = set()
                for room in client.rooms:
                    target = (
                        {"room": room}
                        if room == "activity-feed"
                        else {"project_id": room.removeprefix("project:")}
                    )
                    await ws.send(
                        json.dumps({"type": "subscribe", **target, **client.join_payload(room)})
                    )
                async for text in ws:
                    frame = json.loads(text)
                    if frame.get("type") == "subscribed":
                        client.joined(frame)
                    elif frame.get("type") == "resync_required":
                        client.resyncs.append(frame)
                    elif "offset" in frame and "id" in frame:
                        client.take(frame, seen_here)
        except (OSError, websockets.WebSocketException, TimeoutError):
            pass
        await asyncio.sleep(0.1)


async def run_socketio_client(client: ResumingClient, port: int, stop: asyncio.Event) -> None:
    """Keep a Socket.IO client connected and resuming until `stop`."""
    while not stop.is_set():
        sio = socketio.AsyncClient(reconnection=False)
        seen_here: set[str] = set()
        gone = asyncio.Event()

        async def on_any(event: str, data: Any = None, seen: set[str] = seen_here) -> None:
            if event == "resync-required":
                client.resyncs.append(data)
            elif isinstance(data, dict) and "offset" in data and "id" in data:
                client.take(data, seen)

        sio.on("*", on_any)
        sio.on("disconnect", gone.set)
        try:
            await sio.connect(f"http://127.0.0.1:{port}", transports=["websocket"], wait_timeout=2)
            client.connections += 1
            for room in client.rooms:
                project = room.removeprefix("project:")
                ack = await sio.call(
                    "join-project", {"project_id": project, **client.join_payload(room)}, timeout=5
                )
                assert ack["ok"], ack
                client.joined(ack)
            stop_wait = asyncio.create_task(stop.wait())
            gone_wait = asyncio.create_task(gone.wait())
            await asyncio.wait({stop_wait, gone_wait}, return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
            gone_wait.cancel()
        except (OSError, socketio.exceptions.SocketIOError, TimeoutError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await sio.disconnect()
        await asyncio.sleep(0.1)


def event_envelope(number: int) -> Envelope:
    """The n-th event of the load: mostly p1 and p2 progress, some activities, some global."""
    project = ("p1", "p2", "p1", None)[number % 4]
    data: dict[str, Any]
    if number % 5 == 0 or project is None:
        event_type, data = "activity_created", {"actor": "load", "action": str(number)}
    else:
        event_type, data = "progress_update", {"agent_id": f"a{number % 3}", "progress": 0.5}
    return make_envelope(event_type, project, data)


@pytest.mark.timeout(300)  # about 40 s alone; a shared machine may take several times longer
async def test_sigkill_twice_while_publishing_loses_nothing(
    amqp_url: str, prefix: str, tmp_path: Path
) -> None:
    """The bridge is SIGKILLed twice while 10,000 events are published; clients reconnect and
    resume by offset and every client ends with every event of its rooms: zero lost, and zero
    duplicates within one connection (duplicates across connections are counted and reported)."""
    port = free_port()
    stop = asyncio.Event()
    clients = [
        ResumingClient("ws-p1", ["project:p1"]),
        ResumingClient("ws-p1-feed", ["project:p1", "activity-feed"]),
        ResumingClient("sio-p1", ["project:p1"]),
        ResumingClient("sio-p2", ["project:p2"]),
    ]
    published: list[PublishedEvent] = []
    log = tmp_path / "bridge.log"
    async with contextlib.AsyncExitStack() as bridges_running:
        first = await bridges_running.enter_async_context(
            serve_process(amqp_url, prefix, port, log=log)
        )
        await wait_ready(port, READY_WITHIN)
        tasks = [
            asyncio.create_task(
                (run_socketio_client if client.name.startswith("sio") else run_websocket_client)(
                    client, port, stop
                )
            )
            for client in clients
        ]
        await wait_for(lambda: all(client.connections for client in clients))
        bridges = [first]
        async with EventPublisher(amqp_url, prefix=prefix, source="crash-test") as publisher:
            for start in range(0, TOTAL, 250):
                batch = [event_envelope(number) for number in range(start, start + 250)]
                published += await publisher.publish_batch(batch)
                if start + 250 in KILL_AT:
                    bridges[-1].send_signal(signal.SIGKILL)
                    await bridges[-1].wait()
                    restarted = serve_process(amqp_url, prefix, port, log=log)
                    bridges.append(await bridges_running.enter_async_context(restarted))
                    # Publishing goes on meanwhile from the next batch; the clients must have
                    # come back to this bridge before the next kill.
                    connected = {client.name: client.connections for client in clients}
                    await wait_ready(port, READY_WITHIN)
                    await wait_for(
                        lambda before=connected: all(  # type: ignore[misc]
                            c.connections > before[c.name] for c in clients
                        ),
                        timeout=30,
                    )
                await asyncio.sleep(0.02)
        expected = {
            client.name: [e.id for e in published if rooms_of(e.envelope) & set(client.rooms)]
            for client in clients
        }
        try:
            await wait_for(
                lambda: all(
                    set(expected[c.name]) <= {e["id"] for e in c.received} for c in clients
                ),
                timeout=60,
            )
        except AssertionError:
            for client in clients:  # say who lost what before failing
                got = {event["id"] for event in client.received}
                lost = [event_id for event_id in expected[client.name] if event_id not in got]
                print(f"{client.name}: {len(lost)} lost, {client.connections} connections")
            raise
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    report = []
    for client in clients:
        ids = [e["id"] for e in client.received]
        counts = Counter(ids)
        missing = set(expected[client.name]) - set(ids)
        duplicates = sum(count - 1 for count in counts.values())
        report.append(
            f"{client.name}: {len(set(ids))} events, {len(missing)} lost, {duplicates} duplicates, "
            f"{client.connections} connections, {len(client.resyncs)} resyncs"
        )
        assert not missing, report[-1]
        assert client.duplicates_within_connection == 0, report[-1]
        assert not client.resyncs, client.resyncs
        assert client.connections >= 3, report[-1]  # it really reconnected after each kill
    print("\n".join(report))
