"""The per-connection outbound queue: order, coalescing of superseded progress, slow clients."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bridge.core.connection import COALESCE_FRACTION, ClientConnection, Frame
from bridge.core.events import DeadLetter, Event, decode
from schemas.codes import CloseReason
from tests.helpers import make_envelope, wait_for
from tests.recording import BatchingConnection


class RecordingConnection(ClientConnection):
    """A connection whose client reads only while `reading` is set, recording what it got."""

    transport = "recording"

    def __init__(self, *, limit: int, max_bytes: int = 2**30) -> None:
        super().__init__("recording-1", limit=limit, max_bytes=max_bytes)
        self.reading = asyncio.Event()
        self.written: list[dict[str, Any]] = []
        self.disconnected: list[CloseReason] = []

    def frame(self, event: Event) -> str:
        return event.payload.decode()

    def notice(self, name: str, payload: dict[str, Any]) -> str:
        return json.dumps({"type": name, **payload})

    async def write(self, frame: Frame) -> None:
        await self.reading.wait()
        self.written.append(json.loads(frame))

    async def disconnect(self, reason: CloseReason) -> None:
        self.disconnected.append(reason)


LINE = {"deployment_id": "d", "stream": "stdout", "line": "x"}


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
    threshold = 1000 // COALESCE_FRACTION
    for offset in range(threshold - 1):
        connection.deliver(event(offset, "progress_update", {"agent_id": "a", "progress": 0.5}))
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
    published = []
    for offset in range(400):
        if offset % 50 == 0:
            published.append(event(offset, "agent_status", {"agent_id": "a", "status": "running"}))
        else:
            agent = "a" if offset % 2 else "b"
            published.append(
                event(offset, "progress_update", {"agent_id": agent, "progress": offset / 400})
            )
        connection.deliver(published[-1])
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
    for offset in range(60):
        connection.deliver(
            event(offset, "deployment_log", {"deployment_id": "d", "stream": "stdout", "line": "x"})
        )
    await wait_for(lambda: connection.disconnected == [CloseReason.SLOW_CONSUMER])
    assert connection.closed
    await connection.stop()


async def test_a_client_that_stops_reading_large_events_is_disconnected_by_bytes() -> None:
    """Past the queue's byte limit the client is disconnected as slow, long before the event
    limit: a stuck client holds at most max_bytes of frames."""
    connection = RecordingConnection(limit=2000, max_bytes=100_000)
    line = "x" * 10_000
    delivered = 0
    while not connection.closed:
        connection.deliver(
            event(
                delivered,
                "deployment_log",
                {"deployment_id": "d", "stream": "stdout", "line": line},
            )
        )
        delivered += 1
    assert 9 <= delivered <= 11  # ten frames of ~10 kB fit in 100,000 bytes, not eleven
    await wait_for(lambda: connection.disconnected == [CloseReason.SLOW_CONSUMER])
    await connection.stop()


async def test_written_frames_no_longer_count_against_the_byte_limit() -> None:
    """A client that reads keeps getting large events for ever: only what is queued counts."""
    connection = RecordingConnection(limit=2000, max_bytes=50_000)
    connection.reading.set()
    line = "x" * 10_000
    for offset in range(100):
        connection.deliver(
            event(
                offset, "deployment_log", {"deployment_id": "d", "stream": "stdout", "line": line}
            )
        )
        await asyncio.sleep(0)
    await wait_for(lambda: len(connection.written) == 100)
    assert not connection.closed
    await connection.stop()


class DirectConnection(ClientConnection):
    """A connection whose socket takes frames at once while `open_socket` is set (the fast
    path) and otherwise only through the writer, recording what it got either way."""

    transport = "direct"

    def __init__(self, *, limit: int = 100) -> None:
        super().__init__("direct-1", limit=limit)
        self.open_socket = True
        self.drained = asyncio.Event()
        self.received: list[tuple[str, int]] = []

    def frame(self, event: Event) -> str:
        return event.payload.decode()

    def notice(self, name: str, payload: dict[str, Any]) -> str:
        return json.dumps({"type": name, **payload})

    def write_now(self, frame: Frame) -> bool:
        if not self.open_socket:
            return False
        self.received.append(("now", json.loads(frame)["offset"]))
        return True

    async def write(self, frame: Frame) -> None:
        await self.drained.wait()
        self.received.append(("writer", json.loads(frame)["offset"]))

    async def disconnect(self, reason: CloseReason) -> None:
        pass


async def test_a_client_that_keeps_up_is_written_to_directly_without_a_writer_task() -> None:
    """While the socket takes frames, each event is written at once and no task is started."""
    connection = DirectConnection()
    for offset in range(5):
        connection.deliver(event(offset, "deployment_log", LINE))
    assert connection.received == [("now", offset) for offset in range(5)]
    assert connection._writer is None


async def test_frames_keep_their_order_when_the_socket_backs_up_and_recovers() -> None:
    """Once a frame had to wait, later ones queue behind it even if the socket could take them,
    and after the queue drains frames go straight to the socket again: order is kept."""
    connection = DirectConnection()
    connection.deliver(event(0, "deployment_log", LINE))
    connection.open_socket = False
    connection.deliver(event(1, "deployment_log", LINE))
    connection.open_socket = True
    connection.deliver(event(2, "deployment_log", LINE))
    assert connection.queued == 2
    connection.drained.set()
    await wait_for(lambda: connection.queued == 0 and connection._writer is None)
    connection.deliver(event(3, "deployment_log", LINE))
    assert connection.received == [("now", 0), ("writer", 1), ("writer", 2), ("now", 3)]
    await connection.stop()


async def test_replies_do_not_count_against_the_slow_consumer_limit() -> None:
    """Answers to requests queued behind a backed-up socket never make the client slow; live
    events beyond the limit do."""
    connection = DirectConnection(limit=10)
    connection.open_socket = False
    for offset in range(50):
        connection.push_reply(json.dumps({"type": "pong", "offset": offset}))
    assert not connection.closed
    for offset in range(11):
        connection.deliver(event(offset, "deployment_log", LINE))
    assert connection.closed
    await connection.stop()


async def test_a_batch_reaches_a_client_that_keeps_up_in_one_write_in_order() -> None:
    """Events delivered in one batch are held, then written in order with a single write."""
    connection = BatchingConnection()
    batch: list[ClientConnection] = []
    for offset in range(5):
        connection.deliver(event(offset, "deployment_log", LINE), batch)
    assert connection.writes == []
    assert batch == [connection]
    connection.flush_batch()
    assert connection.writes == [[0, 1, 2, 3, 4]]


async def test_a_reply_during_a_batch_comes_after_the_events_delivered_before_it() -> None:
    """A frame pushed mid-batch (a reply) writes what the batch holds first: order is kept."""
    connection = BatchingConnection()
    batch: list[ClientConnection] = []
    connection.deliver(event(0, "deployment_log", LINE), batch)
    connection.deliver(event(1, "deployment_log", LINE), batch)
    connection.push_reply(json.dumps({"type": "pong"}).encode())
    connection.deliver(event(2, "deployment_log", LINE), batch)
    connection.flush_batch()
    assert connection.writes == [[0, 1], ["pong"], [2]]


async def test_a_batch_the_socket_cannot_take_is_queued_and_arrives_in_order() -> None:
    """When the socket is backed up at the end of a batch, its frames queue and all arrive."""
    connection = BatchingConnection()
    batch: list[ClientConnection] = []
    for offset in range(3):
        connection.deliver(event(offset, "deployment_log", LINE), batch)
    connection.open_socket = False
    connection.flush_batch()
    connection.deliver(event(3, "deployment_log", LINE))
    await wait_for(lambda: connection.queued == 0 and connection._writer is None)
    assert [offset for write in connection.writes for offset in write] == [0, 1, 2, 3]
    await connection.stop()


async def test_a_catch_up_batch_goes_out_in_one_write_when_the_socket_keeps_up() -> None:
    """Past events handed over together (a batch read from the log) reach a client that keeps
    up in one write; behind a queue they are queued, and all arrive in order."""
    connection = BatchingConnection()
    connection.deliver_backlog(event(offset, "deployment_log", LINE) for offset in range(4))
    assert connection.writes == [[0, 1, 2, 3]]
    connection.open_socket = False
    connection.deliver_backlog(event(offset, "deployment_log", LINE) for offset in range(4, 6))
    connection.open_socket = True
    connection.deliver_backlog(event(offset, "deployment_log", LINE) for offset in range(6, 8))
    await wait_for(lambda: connection.queued == 0 and connection._writer is None)
    assert [offset for write in connection.writes for offset in write] == list(range(8))
    await connection.stop()
