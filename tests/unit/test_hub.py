"""The delivery core without a broker: joins, leaves, resumes from memory and from the log,
every resync reason, the join-order rule, and exactly-once at the catch-up/live switch."""

from __future__ import annotations

import asyncio

import pytest

from bridge.core.connection import ClientConnection
from bridge.core.events import Event
from bridge.core.hub import Hub
from bridge.core.subscription import HubLimits
from bridge.errors import RequestError
from schemas.codes import ErrorCode, ResyncReason
from tests.recording import BatchingConnection, MemoryLog, RecordingConnection, event

P1 = "project:p1"
FEED = "activity-feed"


def hub_with(
    log: MemoryLog | None = None, *, epoch: str = "e1", **limits: float
) -> tuple[Hub, MemoryLog]:
    """A hub of epoch `e1` reading `log` (empty unless given), with the given limits."""
    log = log if log is not None else MemoryLog()
    hub = Hub(HubLimits(**limits), log)  # type: ignore[arg-type]
    hub.set_epoch(epoch)
    hub.start_at(0)
    return hub, log


def publish(hub: Hub, log: MemoryLog, *offsets: int, project: str | None = "p1") -> None:
    """Append log lines at `offsets` to the log and hand them to the hub, as the consumer does."""
    for offset in offsets:
        append(hub, log, event(offset, project=project))


def append(hub: Hub, log: MemoryLog, published: Event) -> None:
    """Append one event to the log and hand it to the hub."""
    log.events.append(published)
    hub.publish(published)


async def joined(
    hub: Hub,
    connection: ClientConnection,
    room: str = P1,
    since: int | None = None,
    epoch: str | None = None,
) -> dict[str, object]:
    """Join as a transport does: the reply, then the continuation; return the reply."""
    result = await hub.join(connection, room, since, epoch)
    result.then()
    return result.reply


async def settled(hub: Hub) -> None:
    """Let catch-ups that read the log finish."""
    for _ in range(50):
        await asyncio.sleep(0)


async def test_a_fresh_join_gets_the_snapshot_then_live_events() -> None:
    """Without `since`: the reply names epoch and head, the snapshot (latest state per agent,
    original offsets) comes first, then live events; older non-state events are not sent."""
    hub, log = hub_with()
    append(hub, log, event(0, "agent_status", {"agent_id": "a", "status": "running"}))
    append(hub, log, event(1, "progress_update", {"agent_id": "a", "progress": 0.5}))
    publish(hub, log, 2)  # a log line: history, not state
    append(hub, log, event(3, "progress_update", {"agent_id": "a", "progress": 0.7}))
    connection = RecordingConnection()
    hub.add(connection)
    reply = await joined(hub, connection)
    assert reply == {"room": P1, "epoch": "e1", "offset": 3}
    publish(hub, log, 4)
    assert connection.offsets == [0, 3, 4]


async def test_events_published_between_the_reply_and_the_continuation_come_after_it() -> None:
    """Live events that arrive before the join's continuation runs are held, then released in
    order after what the join sends first: no gap, no duplicate."""
    hub, log = hub_with()
    publish(hub, log, *range(5))
    connection = RecordingConnection()
    hub.add(connection)
    result = await hub.join(connection, P1, since=1)
    publish(hub, log, 5, 6)
    assert connection.offsets == []  # held until the continuation
    result.then()
    assert connection.offsets == [2, 3, 4, 5, 6]


async def test_a_resume_from_memory_sends_exactly_the_missed_events() -> None:
    """With `since` still in memory: the room's events after `since`, then live, each once."""
    hub, log = hub_with()
    publish(hub, log, *range(10))
    publish(hub, log, 10, project="p2")
    connection = RecordingConnection()
    hub.add(connection)
    await joined(hub, connection, since=6, epoch="e1")
    publish(hub, log, 11)
    assert connection.offsets == [7, 8, 9, 11]
    assert log.reads == []


async def test_a_resume_older_than_memory_reads_the_log_while_live_events_wait() -> None:
    """`since` below the buffers' floor: the missed events are read from the log; live events
    published during the read are held and follow them; nothing twice, nothing skipped."""
    hub, log = hub_with(history_max_events=3)
    publish(hub, log, *range(10))
    assert not hub.history.covers(2)
    log.gate = asyncio.Event()
    connection = RecordingConnection()
    hub.add(connection)
    await joined(hub, connection, since=2)
    await settled(hub)
    publish(hub, log, 10, 11)
    assert connection.offsets == []
    log.gate.set()
    await settled(hub)
    assert connection.offsets == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert log.reads == [(P1, 2, 9)]


@pytest.mark.parametrize(
    ("since", "epoch", "reason"),
    [
        (3, "another-epoch", ResyncReason.EPOCH_MISMATCH),
        (50, "e1", ResyncReason.FUTURE_OFFSET),
    ],
)
async def test_a_resume_that_cannot_be_served_says_why_then_sends_the_snapshot(
    since: int, epoch: str, reason: ResyncReason
) -> None:
    """A wrong epoch or a future offset: `resync-required` with the reason and the head, then
    the snapshot, then live events."""
    hub, log = hub_with(future_grace=0.05)
    append(hub, log, event(0, "agent_status", {"agent_id": "a", "status": "idle"}))
    publish(hub, log, 1, 2)
    connection = RecordingConnection()
    hub.add(connection)
    await joined(hub, connection, since=since, epoch=epoch)
    publish(hub, log, 3)
    assert connection.notices == [
        {"notice": "resync-required", "room": P1, "reason": reason, "epoch": "e1", "offset": 2}
    ]
    assert connection.offsets == [0, 3]


async def test_a_since_a_little_ahead_waits_for_the_head_instead_of_a_resync() -> None:
    """A client coming from a replica that is one record ahead: the join waits for this
    replica's head to get there and resumes without a resync."""
    hub, log = hub_with(future_grace=5.0)
    publish(hub, log, 0, 1)
    connection = RecordingConnection()
    hub.add(connection)
    join = asyncio.create_task(hub.join(connection, P1, since=2, epoch="e1"))
    await asyncio.sleep(0.01)
    assert not join.done()
    publish(hub, log, 2, 3)
    result = await asyncio.wait_for(join, 1)
    result.then()
    assert result.reply["offset"] == 3
    assert connection.notices == []
    assert connection.offsets == [3]


async def test_too_many_missed_events_in_memory_is_a_resync() -> None:
    """More missed events than the catch-up limit, in memory: `too_many`, then the snapshot."""
    hub, log = hub_with(catchup_max_events=3)
    publish(hub, log, *range(10))
    connection = RecordingConnection()
    hub.add(connection)
    await joined(hub, connection, since=2)
    assert [notice["reason"] for notice in connection.notices] == [ResyncReason.TOO_MANY]
    assert connection.offsets == []
    publish(hub, log, 10)
    assert connection.offsets == [10]


@pytest.mark.parametrize(
    ("first", "fail_after", "limit", "read", "reason"),
    [
        (5, None, 100, [], ResyncReason.EXPIRED),
        (0, 2, 100, [2, 3], ResyncReason.UNAVAILABLE),
        (0, None, 3, [2, 3, 4], ResyncReason.TOO_MANY),
    ],
)
async def test_a_log_catch_up_that_fails_ends_with_a_resync_never_a_silent_gap(
    first: int, fail_after: int | None, limit: int, read: list[int], reason: ResyncReason
) -> None:
    """Retention removed the start, the connection was lost mid-read, or too many events: the
    events read so far (streamed as read) are followed by `resync-required` with that reason,
    then live events; nothing after the notice pretends to continue the history."""
    hub, log = hub_with(history_max_events=2, catchup_max_events=limit)
    publish(hub, log, *range(10))
    log.first, log.fail_after = first, fail_after
    connection = RecordingConnection()
    hub.add(connection)
    await joined(hub, connection, since=1)
    await settled(hub)
    publish(hub, log, 10)
    assert [notice["reason"] for notice in connection.notices] == [reason]
    assert connection.notices[0]["offset"] == 9
    assert connection.offsets == [*read, 10]
    assert "notice" in connection.frames[len(read)]


async def test_an_event_of_two_joined_rooms_arrives_once_through_the_first_joined() -> None:
    """A connection in a project and the activity feed gets an activity of that project once,
    live and in a resume of both rooms."""
    hub, log = hub_with()
    activity = {"actor": "u", "action": "edited"}
    append(hub, log, event(0, "activity_created", activity))
    publish(hub, log, 1)
    append(hub, log, event(2, "activity_created", activity, project=None))
    connection = RecordingConnection()
    hub.add(connection)
    await joined(hub, connection, FEED, since=-1)
    await joined(hub, connection, P1, since=-1)
    assert connection.offsets == [0, 2, 1]
    append(hub, log, event(3, "activity_created", activity))
    assert connection.offsets == [0, 2, 1, 3]


async def test_leaving_during_a_log_catch_up_sends_nothing_of_that_room() -> None:
    """A client that leaves while its resume is read from the log gets none of it."""
    hub, log = hub_with(history_max_events=2)
    publish(hub, log, *range(10))
    log.gate = asyncio.Event()
    connection = RecordingConnection()
    hub.add(connection)
    await joined(hub, connection, since=1)
    hub.leave(connection, P1)
    log.gate.set()
    await settled(hub)
    publish(hub, log, 10)
    assert connection.frames == []
    assert hub.rooms_of(connection) == ()


async def test_a_re_created_log_restarts_every_room_with_epoch_mismatch() -> None:
    """A new epoch: members are told `epoch_mismatch` (offset -1), then get the new log's
    events."""
    hub, log = hub_with()
    publish(hub, log, 0, 1)
    connection = RecordingConnection()
    hub.add(connection)
    await joined(hub, connection)
    hub.set_epoch("e2")
    assert hub.head == -1
    publish(hub, log, 0)
    assert connection.notices == [
        {
            "notice": "resync-required",
            "room": P1,
            "reason": ResyncReason.EPOCH_MISMATCH,
            "epoch": "e2",
            "offset": -1,
        }
    ]
    assert connection.offsets == [0]


async def test_live_events_held_past_the_queue_limit_drop_the_client_as_slow() -> None:
    """While a catch-up is read, more held live events than the client's queue allows mark it
    slow (it resumes by offset later)."""
    hub, log = hub_with(history_max_events=2)
    publish(hub, log, *range(5))
    log.gate = asyncio.Event()
    connection = RecordingConnection(limit=3)
    hub.add(connection)
    await joined(hub, connection, since=0)
    publish(hub, log, 5, 6, 7)
    assert not connection.slow
    publish(hub, log, 8)
    assert connection.slow
    log.gate.set()
    await settled(hub)


async def test_joins_past_the_room_limit_and_after_removal_are_refused() -> None:
    """The room limit answers `too_many_rooms`; a removed connection answers `not_connected`."""
    hub, _ = hub_with(max_rooms_per_connection=1)
    connection = RecordingConnection()
    hub.add(connection)
    await joined(hub, connection)
    again = await hub.join(connection, P1)
    assert again.reply["room"] == P1  # joining a room again is answered, nothing resent
    with pytest.raises(RequestError) as refused:
        await hub.join(connection, FEED)
    assert refused.value.code == ErrorCode.TOO_MANY_ROOMS
    hub.remove(connection)
    with pytest.raises(RequestError) as gone:
        await hub.join(connection, FEED)
    assert gone.value.code == ErrorCode.NOT_CONNECTED
    assert hub.members(P1) == 0


async def test_events_of_one_batch_reach_a_member_that_keeps_up_in_one_write() -> None:
    """Events published inside `hub.batch()` reach each member in one write, in order, once."""
    hub, log = hub_with()
    members = [BatchingConnection(), BatchingConnection()]
    for member in members:
        hub.add(member)
        await joined(hub, member)
    with hub.batch():
        publish(hub, log, 1, 2, 3)
        assert all(member.writes == [] for member in members)
    assert [member.writes for member in members] == [[[1, 2, 3]], [[1, 2, 3]]]
