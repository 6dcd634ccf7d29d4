"""The counts behind `/metrics`: plain integers kept where things happen, read at scrape time.

The delivery path costs a few microseconds per client (docs/architecture.md), so counting must
cost next to nothing: an integer increment where a thing happens, a dictionary of integers for a
count by a bounded label (event type, close reason, refusal code: never a project, connection or
user), and histograms as a fixed list of bucket counts found by bisection. Nothing here allocates
per delivery or takes a lock; `bridge.edge.metrics` turns these numbers into metric families
when Prometheus scrapes (docs/observability.md lists them).

One `Tally` per hub. Each count has one writer: the hub and its connections (connections,
deliveries, joins, catch-ups, coalescing, the outbox high-water mark), the log consumer (dead
letters, latency) and the transports (refusals, rate-limit hits).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

TRANSPORTS = ("websocket", "socketio")
"""The label values of `transport`."""

AUTH_REFUSED = "auth_refused"
"""The close reason counted for a native WebSocket refused for its token after it opened."""

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the publish → delivery latency histogram."""

CATCHUP_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Upper bounds (seconds) of the catch-up duration histogram."""


class Buckets:
    """A histogram as counts per bucket (the last: above every bound) and a sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation (a value equal to a bound falls in that bound's bucket)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class TransportTally:
    """The counts of one transport's connections."""

    __slots__ = (
        "bytes", "closed", "coalesced", "deliveries", "opened", "outbox_high_water", "rate_limited"
    )  # fmt: skip

    def __init__(self) -> None:
        self.deliveries = 0
        """Live events handed to clients, once per client per event (counted by the hub when it
        routes the event, for members still catching up too: they get it when they go live)."""
        self.bytes = 0
        """Bytes of those events' payloads (the envelope with its offset; each transport's
        framing adds a few bytes more on the wire)."""
        self.opened = 0
        self.closed: dict[str, int] = {}
        """Connections ended, by close reason (`client` when the client left)."""
        self.rate_limited = 0
        """Client messages refused as over the rate limit."""
        self.coalesced = 0
        """Progress updates dropped from an outbox because a newer one of the agent was queued."""
        self.outbox_high_water = 0
        """The most live frames any one client had queued."""


def bump(counts: dict[str, int], label: str) -> None:
    """Add one to the count under `label`."""
    counts[label] = counts.get(label, 0) + 1


class Tally:
    """Everything one bridge replica counts (see the module docstring for who writes what)."""

    def __init__(self) -> None:
        self.transports = {name: TransportTally() for name in TRANSPORTS}
        self.events: dict[str, int] = {}
        """Valid events read from the log and routed, by event type."""
        self.replayed = 0
        """Replayed events among them (appended to the log by `eventbridge replay`)."""
        self.dead_letters: dict[str, int] = {}
        """Invalid records dead-lettered, by reason."""
        self.latency = Buckets(LATENCY_BUCKETS)
        """Publish → delivery, from the envelope's `occurred_at`."""
        self.broker_latency = Buckets(LATENCY_BUCKETS)
        """Publish → delivery, from the broker's `timestamp_in_ms` header, where present."""
        self.routed_at = 0.0
        """When the newest routed event occurred (Unix seconds; 0 before the first)."""
        self.routed_when = 0.0
        """When the newest routed event was routed (Unix seconds; 0 before the first): minus
        `routed_at`, how old it was then."""
        self.joins: dict[str, int] = {}
        """Joins by outcome: `live`, `memory`, `log`, or `resync_<reason>`."""
        self.catchup = Buckets(CATCHUP_BUCKETS)
        """How long from a join's reply until its room went live."""
        self.auth_refusals: dict[str, int] = {}
        """Connections refused for their token, by code."""
        self.origin_refusals = 0
        """WebSocket handshakes refused for their Origin."""

    def transport(self, name: str) -> TransportTally:
        """The counts of a transport (a name not in `TRANSPORTS` gets its own)."""
        tally = self.transports.get(name)
        if tally is None:
            tally = self.transports[name] = TransportTally()
        return tally


UNCOUNTED = TransportTally()
"""Where a connection that no hub registered counts (tests that build one on its own)."""
