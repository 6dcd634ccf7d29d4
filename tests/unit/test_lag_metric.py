"""The lag gauges operators alert on (docs/observability.md): a replica busy routing old events
shows their age even when no record waits at the scrape, one with records waiting shows how long
ago its newest routed event occurred, and an idle replica shows 0."""

from __future__ import annotations

import time
from typing import Any

from bridge.broker.timing import observe_delivery
from bridge.core.hub import Hub
from bridge.core.subscription import HubLimits
from bridge.edge.gcpauses import GcPauses
from bridge.edge.metrics.collector import ROUTING_RECENT_SECONDS, BridgeCollector
from tests.recording import MemoryLog, event


class Broker:
    """The consumer as the collector sees it: connected, with the log's tail it was delivered."""

    connected = True
    reconnects = 0
    failovers = 0

    def __init__(self, log_tail: int) -> None:
        self.log_tail = log_tail


class Message:
    """A log message without the broker's timestamp header."""

    headers: dict[str, Any] = {}  # noqa: RUF012 - a stand-in, never changed


def routed_hub(age: float) -> Hub:
    """A hub that has just routed, at offset 10, an event that occurred `age` seconds ago."""
    hub = Hub(HubLimits(), MemoryLog())
    hub.set_epoch("e1")
    hub.start_at(0)
    routed = event(10)._replace(occurred_at=time.time() - age)
    hub.publish(routed)
    observe_delivery(hub.tally, routed, Message())  # type: ignore[arg-type]
    return hub


def lag(hub: Hub, broker: Broker) -> tuple[float, float]:
    """The lag gauges of one scrape: records, seconds."""
    found = {
        metric.name: metric.samples[0].value
        for metric in BridgeCollector(hub, broker, GcPauses()).collect()
        if metric.name in ("eventbridge_log_lag_records", "eventbridge_log_lag_seconds")
    }
    return found["eventbridge_log_lag_records"], found["eventbridge_log_lag_seconds"]


def test_a_busy_catch_up_shows_the_age_of_what_it_routes_with_nothing_waiting() -> None:
    """Just after routing an event 30 s old, with no record waiting, the lag is about 30 s."""
    hub = routed_hub(age=30.0)
    records, seconds = lag(hub, Broker(log_tail=hub.head))
    assert records == 0
    assert 29.5 <= seconds <= 31.0


def test_records_waiting_show_how_long_ago_the_newest_routed_event_occurred() -> None:
    """With 5 records delivered and not handled, the lag counts them and grows from the newest
    routed event's time, however long ago it was routed."""
    hub = routed_hub(age=40.0)
    hub.tally.routed_when -= ROUTING_RECENT_SECONDS + 5  # routed a while ago: the reader is stuck
    records, seconds = lag(hub, Broker(log_tail=hub.head + 5))
    assert records == 5
    assert 39.5 <= seconds <= 41.0


def test_an_idle_replica_shows_no_lag_whatever_it_routed_last() -> None:
    """Once nothing was routed for a while and nothing waits, the lag is 0, even if the last
    event routed was old (the end of a catch-up)."""
    hub = routed_hub(age=300.0)
    hub.tally.routed_when -= ROUTING_RECENT_SECONDS + 0.1
    assert lag(hub, Broker(log_tail=hub.head)) == (0, 0.0)
