"""The counts behind `/metrics`, kept by the hub: deliveries per transport as members join and
leave, events by type, joins by outcome, and histogram buckets."""

from __future__ import annotations

from bridge.core.tally import Buckets
from tests.recording import RecordingConnection, event
from tests.unit.test_hub import hub_with, joined, publish


async def test_deliveries_are_counted_per_member_as_rooms_change() -> None:
    """Each live event counts one delivery (and its payload's bytes) per member of its room at
    that moment, whoever joins or leaves in between."""
    hub, log = hub_with()
    members = [RecordingConnection(f"c{number}") for number in range(3)]
    for connection in members:
        hub.add(connection)
        await joined(hub, connection)
    publish(hub, log, 1, 2)
    hub.leave(members[0], "project:p1")
    hub.remove(members[1])
    publish(hub, log, 3)
    counts = hub.tally.transport("recording")
    assert counts.deliveries == 3 + 3 + 1
    assert counts.bytes == sum(len(e.payload) for e in log.events[:2]) * 3 + len(
        log.events[2].payload
    )
    assert [len(c.frames) for c in members] == [2, 2, 3]
    assert hub.tally.events == {"deployment_log": 3}
    assert hub.tally.joins == {"live": 3}
    assert (counts.opened, counts.closed) == (3, {"client": 1})


async def test_an_event_of_two_rooms_counts_once_per_connection() -> None:
    """A connection in both rooms of a global event's fan-out is counted once, like it is
    delivered once."""
    hub, log = hub_with()
    both, feed_only = RecordingConnection("both"), RecordingConnection("feed")
    for connection in (both, feed_only):
        hub.add(connection)
        await joined(hub, connection, "activity-feed")
    await joined(hub, both, "project:p1")
    activity = event(1, "activity_created", {"actor": "a", "action": "b"})
    log.events.append(activity)
    hub.publish(activity)
    assert len(activity.rooms) == 2
    assert hub.tally.transport("recording").deliveries == 2


def test_histogram_buckets_hold_values_up_to_their_bound() -> None:
    """A value equal to a bucket's bound falls in that bucket; one above every bound in the
    last; the sum adds every value."""
    histogram = Buckets((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 1.0, 7.0):
        histogram.observe(value)
    assert histogram.counts == [2, 2, 1]
    assert histogram.sum == 8.65
