"""History and state in memory: newest offsets per room and project, and the byte budgets."""

from __future__ import annotations

from bridge.core.events import Event
from bridge.core.history import LastValues, RoomBuffers
from schemas.routing import rooms_for


def event(
    offset: int, event_type: str, project_id: str | None, subject: str | None, size: int = 2
) -> Event:
    """A decoded event with just what the history looks at (a payload of `size` bytes)."""
    return Event(
        offset=offset,
        id=f"e{offset}",
        type=event_type,
        project_id=project_id,
        rooms=rooms_for(event_type, project_id),
        subject=subject,
        payload=b"{" + b" " * (size - 2) + b"}",
    )


def test_room_buffers_report_the_newest_offset_of_each_room_still_held() -> None:
    """RoomBuffers.newest_offsets names each room's newest event and forgets evicted rooms."""
    buffers = RoomBuffers(budget=3)
    buffers.record(event(1, "agent_status", "gone", "a"))
    buffers.record(event(2, "activity_created", "p1", None))
    buffers.record(event(3, "progress_update", "p2", "a"))
    assert buffers.newest_offsets() == {
        "project:gone": 1,
        "project:p1": 2,
        "activity-feed": 2,
        "project:p2": 3,
    }
    buffers.record(event(4, "activity_created", None, None))
    assert buffers.newest_offsets() == {"project:p1": 2, "activity-feed": 4, "project:p2": 3}


def test_last_values_report_the_newest_state_offset_of_each_project() -> None:
    """LastValues.newest_offsets is the newest state event per project, after evictions too."""
    state = LastValues(capacity=3)
    state.record(event(1, "agent_status", "p1", "a"))
    state.record(event(2, "deployment_status", "p2", "d"))
    state.record(event(3, "progress_update", "p1", "a"))
    state.record(event(4, "activity_created", "p3", None))  # not state: ignored
    assert state.newest_offsets() == {"p1": 3, "p2": 2}
    state.record(event(5, "agent_status", "p3", "b"))
    state.record(event(6, "agent_status", "p3", "c"))  # evicts p1's entry 1 and then p2's 2
    assert state.newest_offsets() == {"p1": 3, "p3": 6}


def test_room_buffers_drop_the_oldest_events_past_the_byte_budget() -> None:
    """Large events are dropped oldest first once their bytes exceed the budget; the floor
    moves with them, so a resume below it reads the log instead."""
    one = event(0, "deployment_log", "p1", None, size=10_000).size
    buffers = RoomBuffers(budget=1000, max_bytes=5 * one)
    for offset in range(12):
        buffers.record(event(offset, "deployment_log", "p1", None, size=10_000))
    assert len(buffers) == 5
    assert buffers.bytes == 5 * one
    assert buffers.floor == 6
    assert not buffers.covers(5)
    assert [e.offset for e in buffers.between("project:p1", 6, 99, limit=100)] == [7, 8, 9, 10, 11]


def test_last_values_drop_the_least_recently_updated_past_the_byte_budget() -> None:
    """State entries beyond the byte budget go least recently updated first; replacing an
    entry does not count twice."""
    one = event(0, "agent_status", "p1", "a", size=10_000).size
    state = LastValues(capacity=1000, max_bytes=3 * one)
    for offset in range(10):  # the same agent over and over: one entry
        state.record(event(offset, "agent_status", "p1", "a", size=10_000))
    assert (len(state), state.bytes) == (1, one)
    for offset, agent in enumerate("bcd", start=10):
        state.record(event(offset, "agent_status", "p1", agent, size=10_000))
    assert [e.subject for e in state.snapshot("p1")] == ["b", "c", "d"]
    assert state.bytes == 3 * one
