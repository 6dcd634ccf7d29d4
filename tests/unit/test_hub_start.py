"""The delivery core while a bridge starts and for quiet rooms: the background rebuild (fresh
joins wait for the state, resumes are served meanwhile, nothing is lost or repeated when the
rebuild is adopted), the room index that bounds a resume's read, and state checkpoints."""

from __future__ import annotations

import asyncio

from bridge.broker.snapshots import _decode, _encode
from bridge.core.hub import Hub
from bridge.core.subscription import HubLimits
from schemas.codes import ResyncReason
from tests.recording import MemoryLog, RecordingConnection, event

P1 = "project:p1"


def starting_hub(log: MemoryLog, live_from: int, **limits: float) -> Hub:
    """A hub whose bridge just started reading live at `live_from` (epoch e1)."""
    hub = Hub(HubLimits(**limits), log)  # type: ignore[arg-type]
    hub.set_epoch("e1")
    hub.start_at(live_from)
    hub.advance(live_from)
    return hub


async def settled() -> None:
    """Let tasks started by the hub run."""
    for _ in range(50):
        await asyncio.sleep(0)


async def test_a_fresh_join_waits_for_the_rebuilt_state_then_gets_snapshot_and_live() -> None:
    """While a starting bridge rebuilds its state, a fresh join is answered but its snapshot and
    live events wait; once the rebuild is adopted they come: snapshot first, then live, once."""
    log = MemoryLog()
    hub = starting_hub(log, live_from=10)
    rebuilding = hub.begin_backfill(live_from=10, history_from=0)
    connection = RecordingConnection()
    hub.add(connection)
    joined = await hub.join(connection, P1)
    joined.then()
    live = event(11)
    hub.publish(live)
    await settled()
    assert connection.frames == []  # waiting for the state
    rebuilding.record(event(3, "agent_status", {"agent_id": "a", "status": "running"}))
    rebuilding.record(event(4))
    hub.finish_backfill(rebuilding)
    await settled()
    assert connection.offsets == [3, 11]
    assert hub.state.snapshot("p1")[0].offset == 3


async def test_resumes_are_served_while_the_state_is_rebuilt_and_history_is_whole_after() -> None:
    """During the rebuild a resume from before the live start reads the log; once adopted, the
    history holds the rebuilt events and the live ones in order, once each."""
    log = MemoryLog([event(n) for n in range(10)])
    hub = starting_hub(log, live_from=10)
    rebuilding = hub.begin_backfill(live_from=10, history_from=5)
    for number in (11, 12):
        live = event(number)
        log.events.append(live)
        hub.publish(live)
    connection = RecordingConnection()
    hub.add(connection)
    joined = await hub.join(connection, P1, since=7, epoch="e1")
    joined.then()
    await settled()
    assert connection.offsets == [8, 9, 11, 12]
    for number in range(10):
        rebuilding.record(event(number))
    hub.finish_backfill(rebuilding)
    assert hub.history.floor == 4
    assert [e.offset for e in hub.history.between(P1, 4, 12, limit=100)] == [5, 6, 7, 8, 9, 11, 12]


async def test_a_fresh_join_that_waits_too_long_gets_unavailable_then_live_events() -> None:
    """If the state is not rebuilt within the wait, the fresh join gets `unavailable` (no
    snapshot that could be wrong), then live events."""
    hub = starting_hub(MemoryLog(), live_from=10, snapshot_wait=0.05)
    hub.begin_backfill(live_from=10, history_from=0)
    connection = RecordingConnection()
    hub.add(connection)
    (await hub.join(connection, P1)).then()
    await asyncio.sleep(0.2)
    hub.publish(event(11))
    assert [notice["reason"] for notice in connection.notices] == [ResyncReason.UNAVAILABLE]
    assert connection.offsets == [11]


async def test_a_fresh_join_in_a_busy_room_is_not_cut_while_the_state_is_rebuilt() -> None:
    """Live events that overflow a waiting join's limit are read from the log once the state
    is adopted: the client stays connected and gets snapshot, every event once, in order."""
    log = MemoryLog()
    hub = starting_hub(log, live_from=10)
    rebuilding = hub.begin_backfill(live_from=10, history_from=0)
    connection = RecordingConnection(limit=5)
    hub.add(connection)
    (await hub.join(connection, P1)).then()
    for number in range(11, 41):  # 30 live events, six times the client's limit
        live = event(number)
        log.events.append(live)
        hub.publish(live)
    await settled()
    assert not connection.slow
    assert connection.frames == []  # still waiting for the state
    rebuilding.record(event(3, "agent_status", {"agent_id": "a", "status": "running"}))
    hub.finish_backfill(rebuilding)
    await settled()
    hub.publish(event(41))
    assert not connection.slow
    assert connection.offsets == [3, *range(11, 42)]
    assert connection.notices == []


async def test_a_busy_room_overflowing_a_waiting_join_again_while_it_is_served() -> None:
    """Events that overflow again while the first spilled range is read are read next, with
    no gap and no repeat."""
    log = MemoryLog()
    log.gate = asyncio.Event()
    hub = starting_hub(log, live_from=10)
    rebuilding = hub.begin_backfill(live_from=10, history_from=0)
    connection = RecordingConnection(limit=3)
    hub.add(connection)
    (await hub.join(connection, P1)).then()

    def publish(numbers: range) -> None:
        for number in numbers:
            live = event(number)
            log.events.append(live)
            hub.publish(live)

    publish(range(11, 21))
    hub.finish_backfill(rebuilding)
    await settled()  # the read of the first spilled range waits at the gate
    publish(range(21, 31))
    log.gate.set()
    await settled()
    publish(range(31, 33))
    assert not connection.slow
    assert connection.offsets == list(range(11, 33))
    assert [read[1:] for read in log.reads] == [(10, 18), (18, 30)]


async def test_a_spilled_range_that_cannot_be_read_ends_in_a_resync_notice() -> None:
    """If the log fails while the overflowed events are read, the client is told to resync at
    the range's end, then gets the live events: never a silent gap."""
    log = MemoryLog()
    log.fail_after = 2
    hub = starting_hub(log, live_from=10)
    rebuilding = hub.begin_backfill(live_from=10, history_from=0)
    connection = RecordingConnection(limit=4)
    hub.add(connection)
    (await hub.join(connection, P1)).then()
    for number in range(11, 21):
        live = event(number)
        log.events.append(live)
        hub.publish(live)
    hub.finish_backfill(rebuilding)
    await settled()
    hub.publish(event(21))
    assert not connection.slow
    [notice] = connection.notices
    assert (notice["reason"], notice["offset"]) == (ResyncReason.UNAVAILABLE, 20)
    assert connection.offsets == [11, 12, 21]


async def test_a_quiet_room_resumes_without_reading_the_log() -> None:
    """A room whose newest event is older than `since` resumes at once, whatever else the log
    holds: the room index says nothing was missed."""
    log = MemoryLog()
    hub = starting_hub(log, live_from=0, history_max_events=2)
    hub.publish(event(1))
    for number in range(2, 50):
        hub.publish(event(number, project="busy"))
    connection = RecordingConnection()
    hub.add(connection)
    (await hub.join(connection, P1, since=1, epoch="e1")).then()
    await settled()
    assert log.reads == []
    assert connection.notices == []


async def test_a_resume_reads_the_log_only_up_to_the_rooms_newest_event() -> None:
    """The read of a resume ends at the room's newest event, not at the head."""
    log = MemoryLog()
    hub = starting_hub(log, live_from=0, history_max_events=2)
    for number in range(1, 6):
        published = event(number)
        log.events.append(published)
        hub.publish(published)
    for number in range(6, 60):
        hub.publish(event(number, project="busy"))
    connection = RecordingConnection()
    hub.add(connection)
    (await hub.join(connection, P1, since=2, epoch="e1")).then()
    await settled()
    assert connection.offsets == [3, 4, 5]
    assert log.reads == [(P1, 2, 5)]


async def test_a_resume_that_would_read_too_many_records_is_refused_at_once() -> None:
    """More records to read than allowed: `too_many` without reading anything."""
    log = MemoryLog()
    hub = starting_hub(log, live_from=0, history_max_events=2, catchup_max_records=10)
    for number in range(1, 40):
        hub.publish(event(number))
    connection = RecordingConnection()
    hub.add(connection)
    (await hub.join(connection, P1, since=2, epoch="e1")).then()
    await settled()
    assert log.reads == []
    assert [notice["reason"] for notice in connection.notices] == [ResyncReason.TOO_MANY]


def test_a_state_checkpoint_restores_the_same_state_and_index() -> None:
    """A checkpoint written and read back gives the same snapshot per project and the same
    room index."""
    hub = starting_hub(MemoryLog(), live_from=0)
    hub.publish(event(1, "agent_status", {"agent_id": "a", "status": "running"}))
    hub.publish(event(2, "progress_update", {"agent_id": "a", "progress": 0.5}, project="p2"))
    hub.publish(event(3, "agent_status", {"agent_id": "a", "status": "succeeded"}))
    body = _encode(3, hub.state.entries(), hub.index.items(), hub.index.floor)
    restored = _decode(body, hub.limits)
    assert restored.offset == 3
    for project in ("p1", "p2"):
        assert restored.state.snapshot(project) == hub.state.snapshot(project)
    assert restored.index.items() == hub.index.items()
    assert restored.index.floor == hub.index.floor
