"""Markers: end a check that something did NOT arrive on an event, instead of a fixed wait.

A test publishes a marker after the events under test, waits until the marker arrives, and
then asserts on everything that arrived before it. That is exact because of how the bridge
delivers (docs/architecture.md, "Resume and snapshots" and "Delivery"): a connection's frames
are written in order by one writer, and within one room a connection gets the room's catch-up
first and then its live events in log order (live events are held while the catch-up is read).
So once a room's marker, published after the events under test, has arrived, every event of
that room that was (rightly or wrongly) due before it has arrived too.

A connection in several rooms needs one marker per room: while one room's catch-up is read
from the log, another room's live events (a marker among them) are not held behind it.

The markers themselves are chosen to change nothing a test looks at: a `deployment_log` line
of deployment `marker` for a project room (a log line is no snapshot state and reaches no other
room), a global `activity_created` of actor `marker` for the activity feed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Protocol

from producers import EventPublisher, PublishedEvent
from tests.helpers import wait_for

MARKER = "marker"
"""The deployment id (project rooms) and the actor (activity feed) of every marker."""

_numbers = itertools.count(1)


class Watcher(Protocol):
    """A client that records the bridge events it receives, in order."""

    def events(self) -> list[dict[str, Any]]:
        """Every bridge event received so far, in order."""
        ...


async def publish_marker(publisher: EventPublisher, project_id: str) -> PublishedEvent:
    """Publish a marker to the room of `project_id`: a log line of deployment `marker`."""
    return await publisher.deployment_log(
        project_id, deployment_id=MARKER, stream="stdout", line=f"{MARKER} {next(_numbers)}"
    )


async def publish_feed_marker(publisher: EventPublisher) -> PublishedEvent:
    """Publish a marker to the activity feed: a global activity of actor `marker`."""
    return await publisher.activity_created(None, actor=MARKER, action=f"#{next(_numbers)}")


def before_markers(ids: Sequence[str], markers: Sequence[PublishedEvent]) -> list[int]:
    """Positions in `ids` (event ids in arrival order) of what arrived before the last of the
    markers, markers excepted. Fails if a marker is missing or arrived more than once."""
    marker_ids = [marker.id for marker in markers]
    for marker_id in marker_ids:
        assert ids.count(marker_id) == 1, f"marker {marker_id} arrived {ids.count(marker_id)} times"
    end = max(ids.index(marker_id) for marker_id in marker_ids)
    return [index for index in range(end) if ids[index] not in marker_ids]


async def events_before(
    watcher: Watcher, *markers: PublishedEvent, timeout: float = 10
) -> list[dict[str, Any]]:
    """Wait until every marker has arrived at `watcher`; return the events that arrived before
    the last of them, markers excepted (see the module docstring for why that is everything).
    """
    wanted = {marker.id for marker in markers}
    await wait_for(lambda: wanted <= {event["id"] for event in watcher.events()}, timeout)
    events = watcher.events()
    return [events[index] for index in before_markers([event["id"] for event in events], markers)]
