"""The newest offset per room and per project, as the dashboard's `/api/projects` lists them."""

from __future__ import annotations

from bridge.decoding import Event
from bridge.history import LastValues, RoomBuffers
from schemas.routing import rooms_for


def event(offset: int, event_type: str, project_id: str | None, subject: str | None) -> Event:
    """A decoded event with just what the history looks at."""
    return Event(
        offset=offset,
        id=f"e{offset}",
        type=event_type,
        project_id=project_id,
        rooms=rooms_for(event_type, project_id),
        subject=subject,
        json_frame="{}",
        socketio_frame="",
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
