"""The ASGI application: FastAPI (HTTP and native WebSocket) wrapped by the Socket.IO app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import socketio
from fastapi import FastAPI

from bridge.auth import Authenticator
from bridge.dashboard import dashboard_routes, project_routes
from bridge.health import health_routes
from bridge.origins import OriginPolicy
from bridge.service import BridgeService
from bridge.subscriptions import Subscriptions
from bridge.transports.socketio import SocketIOTransport, engineio_frame_guard
from bridge.transports.sockets import tracking_transports
from bridge.transports.websocket import WebSocketHandler, websocket_routes


def create_app(service: BridgeService, authenticator: Authenticator | None = None) -> Any:
    """Build the ASGI app around a started `BridgeService`.

    The service is started before the HTTP server (so a broker problem stops start-up with one
    clear sentence); the app's lifespan closes the service's client connections at shutdown.
    `authenticator` defaults to one built from the service's settings.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await service.close()

    if authenticator is None:
        authenticator = Authenticator(service.settings)
    subscriptions = Subscriptions(service)
    origins = OriginPolicy(service.settings.allowed_origins)
    api = FastAPI(
        title="eventbridge",
        summary="RabbitMQ events to Socket.IO and WebSocket rooms",
        lifespan=lifespan,
    )
    api.include_router(health_routes(service))
    websockets = WebSocketHandler(service, subscriptions, origins, authenticator)
    api.include_router(websocket_routes(websockets))
    api.include_router(project_routes(service, authenticator))
    api.include_router(dashboard_routes())
    sio = SocketIOTransport(service, subscriptions, origins, authenticator)
    sio_app = socketio.ASGIApp(sio.server, other_asgi_app=api, socketio_path="socket.io")
    return tracking_transports(engineio_frame_guard(sio_app))
