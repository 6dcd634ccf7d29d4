"""`BridgeCollector`: every metric of the bridge, read at scrape time.

Counting costs the delivery path nothing beyond integer increments: the hub, the log consumer and
the transports keep plain counts where things happen (`bridge.core.tally`), and this collector
reads them when Prometheus scrapes. Label sets are bounded: event types, transports, close
reasons, join outcomes and refusal codes — never a project, connection or user
(docs/observability.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from bridge.core.hub import Hub
from bridge.core.tally import AUTH_REFUSED, TRANSPORTS, Tally
from bridge.edge.gcpauses import BUCKETS, GcPauses
from bridge.edge.metrics.families import add_histogram, counter, histogram_buckets
from schemas.codes import CloseReason, DeadLetterReason, ErrorCode, ResyncReason
from schemas.events import EVENT_MODELS

AUTH_CODES = (ErrorCode.AUTH_REQUIRED, ErrorCode.INVALID_TOKEN, ErrorCode.TOKEN_EXPIRED)
"""The codes a connection is refused with for its token."""
CLOSE_REASONS = (*(str(reason) for reason in CloseReason), AUTH_REFUSED, "client")
"""Why connections end: the bridge's close reasons, a refused token, or `client` (it left)."""
JOIN_OUTCOMES = ("live", "memory", "log", *(f"resync_{reason}" for reason in ResyncReason))


ROUTING_RECENT_SECONDS = 1.0
"""The lag in seconds counts the age of routed events only while they were routed this recently."""


class BrokerView(Protocol):
    """What the collector reads of the broker side (the log consumer)."""

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up."""
        ...

    @property
    def reconnects(self) -> int:
        """Sessions started after a lost connection."""
        ...

    @property
    def failovers(self) -> int:
        """Reconnections that went to another node than the one lost."""
        ...

    @property
    def log_tail(self) -> int:
        """The newest log offset the broker has delivered to the bridge."""
        ...


class BridgeCollector(Collector):
    """Reads the bridge's counts at scrape time."""

    def __init__(self, hub: Hub, broker: BrokerView, gc_pauses: GcPauses) -> None:
        self._hub = hub
        self._broker = broker
        self._gc = gc_pauses

    def collect(self) -> Iterator[Metric]:
        """Every metric of the bridge, as of now."""
        tally = self._hub.tally
        yield from self._log_metrics(tally)
        yield from self._delivery_metrics(tally)
        yield from self._connection_metrics(tally)
        yield from self._join_metrics(tally)
        yield from self._broker_metrics()
        yield from self._gc_metrics()

    # -- the log ---------------------------------------------------------------------------

    def _log_metrics(self, tally: Tally) -> Iterator[Metric]:
        hub = self._hub
        yield counter(
            "eventbridge_events_read",
            "Valid events read from the log and routed to rooms, by event type.",
            "type",
            tally.events,
            always=EVENT_MODELS,
        )
        yield CounterMetricFamily(
            "eventbridge_events_routed", "Valid events read from the log and routed to rooms.",
            value=hub.events_routed,
        )  # fmt: skip
        yield CounterMetricFamily(
            "eventbridge_events_replayed",
            "Replayed events (appended to the log by `eventbridge replay`) routed to rooms.",
            value=tally.replayed,
        )
        yield counter(
            "eventbridge_dead_letters",
            "Invalid messages copied to the dead-letter queue (confirmed), by reason.",
            "reason",
            tally.dead_letters,
            always=(str(reason) for reason in DeadLetterReason),
        )
        yield GaugeMetricFamily(
            "eventbridge_log_head_offset", "The newest log offset this bridge has handled.",
            value=hub.head,
        )  # fmt: skip
        tail = max(self._broker.log_tail, hub.head)
        yield GaugeMetricFamily(
            "eventbridge_log_tail_offset",
            "The newest log offset the broker has delivered to this bridge.",
            value=tail,
        )
        behind = tail - hub.head
        yield GaugeMetricFamily(
            "eventbridge_log_lag_records",
            "Log records delivered to the bridge and not yet handled (at most the prefetch).",
            value=behind,
        )
        # Two views, the larger wins: records delivered and waiting (a stuck reader), and the
        # age of what is being routed (a busy catch-up, whose reader seldom has records
        # waiting when a scrape is answered between its batches).
        now = time.time()
        waiting = now - tally.routed_at if behind > 0 and tally.routed_at else 0.0
        routing = tally.routed_when - tally.routed_at  # the newest routed event's age then
        recent = now - tally.routed_when < ROUTING_RECENT_SECONDS
        yield GaugeMetricFamily(
            "eventbridge_log_lag_seconds",
            "How far behind the log the bridge delivers: the age of the newest event routed in "
            "the last second when it was routed, or while records wait, how long ago the newest "
            "routed event occurred; 0 when idle.",
            value=max(0.0, waiting, routing if recent else 0.0),
        )

    # -- delivery --------------------------------------------------------------------------

    def _delivery_metrics(self, tally: Tally) -> Iterator[Metric]:
        deliveries = CounterMetricFamily(
            "eventbridge_deliveries",
            "Live events handed to clients (once per client per event), by transport.",
            labels=["transport"],
        )
        delivered = CounterMetricFamily(
            "eventbridge_delivered_bytes",
            "Bytes of the live events handed to clients, by transport.",
            labels=["transport"],
        )
        coalesced = CounterMetricFamily(
            "eventbridge_progress_coalesced",
            "Queued progress updates replaced by a newer one of the same agent, by transport.",
            labels=["transport"],
        )
        high_water = GaugeMetricFamily(
            "eventbridge_outbox_high_water_frames",
            "The most live frames one client has had queued since start, by transport.",
            labels=["transport"],
        )
        for name, counts in tally.transports.items():
            deliveries.add_metric([name], counts.deliveries)
            delivered.add_metric([name], counts.bytes)
            coalesced.add_metric([name], counts.coalesced)
            high_water.add_metric([name], counts.outbox_high_water)
        yield from (deliveries, delivered, coalesced, high_water)
        latency = HistogramMetricFamily(
            "eventbridge_delivery_latency_seconds",
            "From an event's publication to its delivery to clients, by the clock that dated "
            "the publication: the producer's (`occurred_at`) or the broker's (`timestamp_in_ms`).",
            labels=["clock"],
        )
        add_histogram(latency, ["producer"], tally.latency)
        add_histogram(latency, ["broker"], tally.broker_latency)
        yield latency

    # -- connections -----------------------------------------------------------------------

    def _connection_metrics(self, tally: Tally) -> Iterator[Metric]:
        counts = self._hub.counts()
        connections = GaugeMetricFamily(
            "eventbridge_connections", "Client connections open now.", labels=["transport"]
        )
        opened = CounterMetricFamily(
            "eventbridge_connections_opened", "Client connections opened.", labels=["transport"]
        )
        closed = CounterMetricFamily(
            "eventbridge_connections_closed",
            "Client connections ended, by transport and reason (`client`: the client left).",
            labels=["transport", "reason"],
        )
        limited = CounterMetricFamily(
            "eventbridge_rate_limited",
            "Client messages refused (or that got the client closed) as over the rate limit.",
            labels=["transport"],
        )
        for name in TRANSPORTS:
            connections.add_metric([name], counts.get(name, 0))
        for name, transport in tally.transports.items():
            opened.add_metric([name], transport.opened)
            reasons = dict.fromkeys(CLOSE_REASONS, 0)
            reasons.update(transport.closed)
            for reason, count in reasons.items():
                closed.add_metric([name, reason], count)
            limited.add_metric([name], transport.rate_limited)
        yield from (connections, opened, closed, limited)
        yield counter(
            "eventbridge_auth_refusals",
            "Connections refused for their token, by code.",
            "code",
            tally.auth_refusals,
            always=(str(code) for code in AUTH_CODES),
        )
        yield CounterMetricFamily(
            "eventbridge_origin_refusals",
            "Native WebSocket handshakes refused for their Origin.",
            value=tally.origin_refusals,
        )

    def _join_metrics(self, tally: Tally) -> Iterator[Metric]:
        yield counter(
            "eventbridge_joins",
            "Room joins by outcome: live (no resume), memory or log (the missed events from "
            "memory or read from the log), resync_<reason> (told to resync).",
            "outcome",
            tally.joins,
            always=JOIN_OUTCOMES,
        )
        catchup = HistogramMetricFamily(
            "eventbridge_catchup_duration_seconds",
            "From a join's reply until its room delivers live events.",
        )
        catchup.add_metric(
            [], histogram_buckets(tally.catchup.bounds, tally.catchup.counts), tally.catchup.sum
        )
        yield catchup

    # -- the broker ------------------------------------------------------------------------

    def _broker_metrics(self) -> Iterator[Metric]:
        broker = self._broker
        yield GaugeMetricFamily(
            "eventbridge_broker_connected", "1 while the broker connection is up, else 0.",
            value=1 if broker.connected else 0,
        )  # fmt: skip
        yield CounterMetricFamily(
            "eventbridge_broker_reconnects", "Broker connections made after one was lost.",
            value=broker.reconnects,
        )  # fmt: skip
        yield CounterMetricFamily(
            "eventbridge_broker_failovers",
            "Reconnections that went to another RabbitMQ node than the one lost.",
            value=broker.failovers,
        )

    # -- the garbage collector -------------------------------------------------------------

    def _gc_metrics(self) -> Iterator[Metric]:
        pauses = HistogramMetricFamily(
            "eventbridge_gc_pause_seconds",
            "How long each garbage collection stopped the bridge, by generation.",
            labels=["generation"],
        )
        for generation, counts in enumerate(self._gc.counts):
            pauses.add_metric(
                [str(generation)], histogram_buckets(BUCKETS, counts), self._gc.sums[generation]
            )
        yield pauses
        yield GaugeMetricFamily(
            "eventbridge_gc_pause_max_seconds", "The longest garbage collection since start.",
            value=self._gc.longest,
        )  # fmt: skip
