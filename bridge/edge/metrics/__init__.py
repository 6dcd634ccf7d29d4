"""`/metrics`: the bridge's numbers in the Prometheus text format (prometheus-client).

- `collector`: `BridgeCollector`, which reads the counts the hub, the log consumer and the
  transports keep (`bridge.core.tally`) when Prometheus scrapes, so counting costs the delivery
  path next to nothing.
- `families`: the metric families of one scrape, built from those counts.
- `summary`: `/api/operator`, the same numbers as JSON for the live dashboard's operator panel.
- `endpoint`: the registry (the bridge's collector beside the client library's process and
  platform collectors), the `/metrics` route, and the small app that serves it on its own port.

Every metric, its labels and what to do when its alert fires: docs/observability.md.
"""

from bridge.edge.metrics.collector import BridgeCollector, BrokerView
from bridge.edge.metrics.endpoint import metrics_app, metrics_registry, metrics_routes
from bridge.edge.metrics.summary import operator_routes

__all__ = [
    "BridgeCollector",
    "BrokerView",
    "metrics_app",
    "metrics_registry",
    "metrics_routes",
    "operator_routes",
]
