"""The per-connection outbound queue: order, coalescing of superseded progress, slow clients."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bridge.decoding import DeadLetter, Event, decode
from bridge.delivery import COALESCE_FRACTION, SLOW_CONSUMER, ClientConnection, Subscription
from tests.helpers import make_envelope, wait_for


class RecordingConnection(ClientConnection):
    """A connection whose client reads only while `reading` is set, recording what it got."""

    transport = "recording"

    def __init__(self, *, limit: int, max_bytes: int = 2**30) -> None:
        super().__init__("recording-1", limit=limit, max_bytes=max_bytes)
        self.reading = asyncio.Event()
        self.written: list[dict[str, Any]] = []
        self.disconnected: list[str] = []
        self.rooms["project:p1"] = Subscription(covered_after=-1)

    def frame(self, event: Event) -> str:
        return event.json_frame

    def notice(self, name: str, payload: dict[str, Any]) -> str:
        return json.dumps({"type": name, **payload})

    async def write(self, frame: str) -> None:
        await self.reading.wait()
        self.written.append(json.loads(frame))

    async def disconnect(self, reason: str) -> None:
        self.disconnected.append(reason)


def event(offset: int, event_type: str, data: dict[str, Any]) -> Event:
    """A decoded event of project p1 at `offset`."""
    envelope = make_envelope(event_type, "p1", data)
    result = decode(
        envelope.model_dump_json().encode(),
        f"project.p1.{event_type}",
        offset,
        max_bytes=65_536,
    )
    assert not isinstance(result, DeadLetter), result
    return result


async def test_a_client_that_keeps_up_gets_every_progress_update_in_order() -> None:
    """A client less than half its queue limit behind gets every update, in order."""
    connection = RecordingConnection(limit=1000)
    connection.start()
    threshold = 1000 // COALESCE_FRACTION
    for offset in range(threshold - 1):
        connection.deliver(
            event(offset, "progress_update", {"agent_id": "a", "progress": 0.5}), "project:p1"
        )
    connection.reading.set()
    await wait_for(lambda: len(connection.written) == threshold - 1)
    await connection.stop()
    assert [frame["offset"] for frame in connection.written] == list(range(threshold - 1))


async def test_a_backed_up_client_gets_the_latest_progress_per_agent_and_every_other_event() -> (
    None
):
    """When a client falls behind, older queued progress updates of the same agent are dropped;
    status events are all kept, order is kept, and the newest progress of each agent arrives."""
    connection = RecordingConnection(limit=200)
    connection.start()
    published = []
    for offset in range(400):
        if offset % 50 == 0:
            published.append(event(offset, "agent_status", {"agent_id": "a", "status": "running"}))
        else:
            agent = "a" if offset % 2 else "b"
            published.append(
                event(offset, "progress_update", {"agent_id": agent, "progress": offset / 400})
            )
        connection.deliver(published[-1], "project:p1")
    assert connection.queued < 400
    assert not connection.disconnected
    connection.reading.set()
    await wait_for(lambda: connection.queued == 0)
    await asyncio.sleep(0.05)
    await connection.stop()

    offsets = [frame["offset"] for frame in connection.written]
    assert offsets == sorted(offsets)
    statuses = [frame["offset"] for frame in connection.written if frame["type"] == "agent_status"]
    assert statuses == [e.offset for e in published if e.type == "agent_status"]
    progress = [frame for frame in connection.written if frame["type"] == "progress_update"]
    assert len(progress) < 150  # 392 were published: superseded ones never reached it
    for agent in ("a", "b"):
        newest = max(
            e.offset for e in published if e.type == "progress_update" and e.subject == agent
        )
        assert newest in offsets


async def test_a_client_that_stops_reading_events_that_cannot_coalesce_is_disconnected() -> None:
    """Past the queue limit with nothing to coalesce, the client is disconnected as slow."""
    connection = RecordingConnection(limit=50)
    connection.start()
    for offset in range(60):
        connection.deliver(
            event(
                offset, "deployment_log", {"deployment_id": "d", "stream": "stdout", "line": "x"}
            ),
            "project:p1",
        )
    await wait_for(lambda: connection.disconnected == [SLOW_CONSUMER])
    assert connection.closed
    await connection.stop()


async def test_a_client_that_stops_reading_large_events_is_disconnected_by_bytes() -> None:
    """Past the queue's byte limit the client is disconnected as slow, long before the event
    limit: a stuck client holds at most max_bytes of frames."""
    connection = RecordingConnection(limit=2000, max_bytes=100_000)
    connection.start()
    line = "x" * 10_000
    delivered = 0
    while not connection.closed:
        connection.deliver(
            event(
                delivered,
                "deployment_log",
                {"deployment_id": "d", "stream": "stdout", "line": line},
            ),
            "project:p1",
        )
        delivered += 1
    assert 9 <= delivered <= 11  # ten frames of ~10 kB fit in 100,000 bytes, not eleven
    await wait_for(lambda: connection.disconnected == [SLOW_CONSUMER])
    await connection.stop()


async def test_written_frames_no_longer_count_against_the_byte_limit() -> None:
    """A client that reads keeps getting large events for ever: only what is queued counts."""
    connection = RecordingConnection(limit=2000, max_bytes=50_000)
    connection.reading.set()
    connection.start()
    line = "x" * 10_000
    for offset in range(100):
        connection.deliver(
            event(
                offset, "deployment_log", {"deployment_id": "d", "stream": "stdout", "line": line}
            ),
            "project:p1",
        )
        await asyncio.sleep(0)
    await wait_for(lambda: len(connection.written) == 100)
    assert not connection.closed
    await connection.stop()
