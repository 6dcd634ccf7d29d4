"""`/health` and `/ready`: what operators and orchestrators poll."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from bridge.service import BridgeService


def health_report(service: BridgeService) -> dict[str, Any]:
    """The `/health` body (CONTRACT.md section 6), plus the log position."""
    counts = service.rooms.counts()
    return {
        "status": "ok" if service.ready else "degraded",
        "services": {
            "broker": {"status": "connected" if service.connected else "disconnected"},
            "websocket": {"status": "active", "connections": counts.get("websocket", 0)},
            "socketio": {"status": "active", "connections": counts.get("socketio", 0)},
        },
        "log": {
            "name": service.names.log,
            "epoch": service.epoch,
            "offset": service.head,
            "events_routed": service.events_routed,
            "dead_lettered": service.dead_lettered,
        },
    }


def health_routes(service: BridgeService) -> APIRouter:
    """The health endpoints, bound to one service."""
    router = APIRouter()

    @router.get("/health")
    async def health() -> dict[str, Any]:
        return health_report(service)

    @router.get("/ready")
    async def ready() -> JSONResponse:
        if service.ready:
            return JSONResponse({"ready": True})
        reason = "consuming is paused" if service.connected else "the broker is unreachable"
        return JSONResponse({"ready": False, "reason": reason}, status_code=503)

    return router
