"""What the log consumer measures for the lag and latency metrics (docs/observability.md): how
far the log reaches as the bridge sees it, and how long an event took from its publication to
its delivery, by the producer's clock and by the broker's."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bridge.broker.logmessage import LogMessage
from bridge.core.events import Event
from bridge.core.tally import Tally

BROKER_TIMESTAMP_HEADER = "timestamp_in_ms"
"""Set by RabbitMQ (3.12+) when its `set_header_timestamp` message interceptor is enabled: when
the broker received the message, in milliseconds since the epoch."""


@dataclass(slots=True)
class LogTail:
    """The newest offset the broker has delivered to the bridge's log reader: how far the log
    reaches, as far as the bridge can tell without asking (its reader holds up to a prefetch of
    records it has not handled yet)."""

    received: int = -1


def broker_timestamp(message: LogMessage) -> float | None:
    """When the broker received the message (Unix seconds), if it stamped it."""
    value = (message.headers or {}).get(BROKER_TIMESTAMP_HEADER)
    if isinstance(value, int) and not isinstance(value, bool):
        return value / 1000
    return None


def observe_delivery(tally: Tally, event: Event, message: LogMessage) -> None:
    """Time an event just handed to its clients from its publication: by the producer's clock
    (`occurred_at`) and, where the broker stamped the message, by the broker's. Once per event,
    never per client. A replayed event is not timed: its `occurred_at` is the original's."""
    if event.replayed:
        return
    now = time.time()
    occurred = event.occurred_at
    if occurred:
        tally.routed_at, tally.routed_when = occurred, now
        tally.latency.observe(now - occurred if now > occurred else 0.0)
    headers = message.headers
    if headers and BROKER_TIMESTAMP_HEADER in headers:
        stamped = broker_timestamp(message)
        if stamped is not None:
            tally.broker_latency.observe(max(0.0, now - stamped))
