"""`GET /api/operator`: the few numbers of the live dashboard's operator panel, taken from the
same metrics `/metrics` serves (one scrape of the same registry), as JSON the page can poll.

The page turns counters into rates and the latency buckets into p50/p99 from the difference
between two polls, the way Prometheus does between two scrapes. Served only where `/metrics` is
(on the main port, metrics on): moving the metrics to an internal port hides these too.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from prometheus_client import CollectorRegistry

SUMMED = {
    "eventbridge_events_read_total": "events",
    "eventbridge_deliveries_total": "deliveries",
    "eventbridge_dead_letters_total": "dead_letters",
    "eventbridge_connections_closed_total": "closed",
}
"""Counters the panel shows as totals over every label (the JSON field each goes to)."""

SINGLE = {
    "eventbridge_log_lag_seconds": "lag_seconds",
    "eventbridge_log_lag_records": "lag_records",
    "eventbridge_broker_connected": "broker_connected",
}


def operator_summary(registry: CollectorRegistry) -> dict[str, Any]:
    """The operator panel's numbers, read from one collection of `registry`."""
    summary: dict[str, Any] = {
        "time": time.time(),
        "connections": {},
        **dict.fromkeys(SUMMED.values(), 0.0),
        "latency": {"le": [], "cumulative": []},
    }
    slow = 0.0
    for family in registry.collect():
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name in SUMMED:
                summary[SUMMED[name]] += value
                if name == "eventbridge_connections_closed_total":
                    slow += value if labels.get("reason") == "slow_consumer" else 0.0
            elif name in SINGLE:
                summary[SINGLE[name]] = value
            elif name == "eventbridge_connections":
                summary["connections"][labels["transport"]] = value
            elif (
                name == "eventbridge_delivery_latency_seconds_bucket"
                and labels.get("clock") == "producer"
            ):
                summary["latency"]["le"].append(labels["le"])
                summary["latency"]["cumulative"].append(value)
    summary["slow_disconnects"] = slow
    del summary["closed"]
    return summary


def operator_routes(registry: CollectorRegistry) -> APIRouter:
    """`GET /api/operator`."""
    router = APIRouter()

    @router.get("/api/operator")
    async def operator() -> dict[str, Any]:
        return operator_summary(registry)

    return router
