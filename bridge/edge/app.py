"""The ASGI application: the Socket.IO app, then the native WebSocket endpoints, then FastAPI
(HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import socketio
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from bridge.core.hub import Hub
from bridge.edge.auth import Authenticator
from bridge.edge.client_events import ClientEventSink
from bridge.edge.contract import contract_routes
from bridge.edge.dashboard import dashboard_routes, project_routes
from bridge.edge.health import BrokerState, health_routes
from bridge.edge.metrics import metrics_routes, operator_routes
from bridge.edge.origins import OriginPolicy
from bridge.edge.presence import PresenceRooms, presence_routes
from bridge.edge.transports.socketio import SocketIOTransport
from bridge.edge.transports.sockets import tracking_transports
from bridge.edge.transports.websocket import WebSocketHandler, websocket_app
from bridge.settings import Settings
from bridge.upstream.engineio import frame_guard


def create_app(
    hub: Hub,
    *,
    broker: BrokerState,
    publish: ClientEventSink,
    settings: Settings,
    authenticator: Authenticator,
    metrics: CollectorRegistry | None,
    on_shutdown: Callable[[], Awaitable[None]],
    presence: PresenceRooms | None = None,
) -> Any:
    """Build the ASGI app around a hub that a started log consumer feeds.

    The consumer is started before the HTTP server (so a broker problem stops start-up with one
    clear sentence); the app's lifespan runs `on_shutdown` (close the clients) at its end.
    `/metrics` (and `/api/operator`, the dashboard's operator panel) is served from `metrics`
    unless that is None (turned off, or on its own port).
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await on_shutdown()

    origins = OriginPolicy(settings.allowed_origins)
    api = FastAPI(
        title="eventbridge",
        summary="RabbitMQ events to Socket.IO and WebSocket rooms",
        lifespan=lifespan,
    )
    api.include_router(health_routes(hub, broker))
    api.include_router(project_routes(hub, authenticator))
    api.include_router(dashboard_routes())
    api.include_router(contract_routes(settings.prefix))
    if metrics is not None:
        api.include_router(metrics_routes(metrics))
        api.include_router(operator_routes(metrics))
    rooms = presence or PresenceRooms(None)
    api.include_router(presence_routes(rooms, authenticator))
    websockets = WebSocketHandler(hub, settings, origins, authenticator, rooms)
    sio = SocketIOTransport(hub, publish, settings, origins, authenticator, presence=rooms)
    sio_app = socketio.ASGIApp(
        sio.server, other_asgi_app=websocket_app(websockets, api), socketio_path="socket.io"
    )
    return tracking_transports(frame_guard(sio_app))
