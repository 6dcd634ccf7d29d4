"""The metrics registry, the `GET /metrics` route, and the app that serves it on its own port
(`EVENTBRIDGE_METRICS_PORT`, e.g. to scrape on an internal port only)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from bridge.core.hub import Hub
from bridge.edge.gcpauses import GcPauses
from bridge.edge.metrics.collector import BridgeCollector, BrokerView


def metrics_registry(hub: Hub, broker: BrokerView, gc_pauses: GcPauses) -> CollectorRegistry:
    """A registry with the bridge's collector and the process and platform collectors.

    Each bridge has its own registry (several bridges may share a process in tests).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BridgeCollector(hub, broker, gc_pauses))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def metrics_routes(registry: CollectorRegistry) -> APIRouter:
    """`GET /metrics`."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def metrics_app(registry: CollectorRegistry) -> FastAPI:
    """An app serving only `GET /metrics`, for a port of its own."""
    app = FastAPI(title="eventbridge metrics", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(metrics_routes(registry))
    return app
