"""`/health` and `/ready`: what operators and orchestrators poll."""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from bridge.core.hub import Hub


class BrokerState(Protocol):
    """What the health endpoints need to know of the broker side (the log consumer)."""

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up."""
        ...

    @property
    def ready(self) -> bool:
        """Whether the bridge is connected and consuming the log live."""
        ...

    @property
    def node(self) -> str | None:
        """The broker node in use (`host:port`), None while not connected."""
        ...

    @property
    def log_name(self) -> str:
        """The name of the log stream being consumed."""
        ...

    @property
    def dead_lettered(self) -> int:
        """Invalid records dead-lettered since start."""
        ...


def health_report(hub: Hub, broker: BrokerState) -> dict[str, Any]:
    """The `/health` body (docs/operators.md), plus the log position."""
    counts = hub.counts()
    return {
        "status": "ok" if broker.ready else "degraded",
        "services": {
            "broker": {
                "status": "connected" if broker.connected else "disconnected",
                "node": broker.node,
            },
            "websocket": {"status": "active", "connections": counts.get("websocket", 0)},
            "socketio": {"status": "active", "connections": counts.get("socketio", 0)},
        },
        "log": {
            "name": broker.log_name,
            "epoch": hub.epoch,
            "offset": hub.head,
            "events_routed": hub.events_routed,
            "dead_lettered": broker.dead_lettered,
        },
    }


def health_routes(hub: Hub, broker: BrokerState) -> APIRouter:
    """The health endpoints."""
    router = APIRouter()

    @router.get("/health")
    async def health() -> dict[str, Any]:
        return health_report(hub, broker)

    @router.get("/ready")
    async def ready() -> JSONResponse:
        if broker.ready:
            return JSONResponse({"ready": True})
        reason = "consuming is paused" if broker.connected else "the broker is unreachable"
        return JSONResponse({"ready": False, "reason": reason}, status_code=503)

    return router
