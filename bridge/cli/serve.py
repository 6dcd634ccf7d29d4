"""`eventbridge serve`: run the bridge until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bridge.app import create_app
from bridge.auth import Authenticator, check_exposure
from bridge.cli.options import (
    AUTH_OPTIONS,
    BROKER_OPTIONS,
    SERVER_OPTIONS,
    add_auth_options,
    add_broker_options,
    add_server_options,
    configure_logging,
    settings_from,
)
from bridge.service import BridgeService
from bridge.settings import Settings
from schemas.errors import EventBridgeError

logger = logging.getLogger(__name__)


def add_parser(commands: Any, name: str) -> None:
    """Register the sub-command."""
    parser = commands.add_parser(
        name,
        help="run the bridge service",
        description="Run the bridge: consume the event log and serve Socket.IO at /socket.io/, "
        "WebSocket at /ws, /health and /ready. Stops gracefully on SIGTERM or Ctrl-C.",
    )
    add_broker_options(parser)
    add_server_options(parser)
    add_auth_options(parser)
    parser.set_defaults(handler=run)


MAX_REQUEST_HEAD_BYTES = 65_536
"""Largest request line plus headers a client may send (nginx allows 32 KiB by default)."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request head larger than 64 KiB with HTTP 400.

    httptools buffers an unfinished header line or URL without limit, so one client sending a
    header that never ends could use any amount of memory; h11 has a limit but holds garbage
    without a line end until it arrives, where httptools refuses it at the first wrong byte.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True

    def data_received(self, data: bytes) -> None:
        """Count what arrives while a request head is being read; refuse past the limit."""
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_REQUEST_HEAD_BYTES:
                self.logger.warning("Request head larger than %d bytes", MAX_REQUEST_HEAD_BYTES)
                self.send_400_response("Request head too large.")
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        """A new request: its head starts now."""
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        """The head is complete: the body, if any, is not counted."""
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    """The HTTP server's configuration for the bridge."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        http=BoundedHttpToolsProtocol,
        log_config=None,
        access_log=False,  # access logs would print query strings verbatim
        ws_per_message_deflate=settings.ws_compression,
        # Every WebSocket, native or Socket.IO's, is served by uvicorn: these apply to both.
        ws_max_size=settings.max_frame_bytes,
        ws_ping_interval=settings.ping_interval,
        ws_ping_timeout=settings.ping_timeout,
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
    )


class BridgeServer(uvicorn.Server):
    """uvicorn's server, shutting the bridge down in the order clients can follow.

    uvicorn alone would close every WebSocket with a bare 1012 before the app hears of the
    shutdown; here the bridge first stops consuming and closes each client with its reason.
    """

    def __init__(self, config: uvicorn.Config, service: BridgeService) -> None:
        super().__init__(config)
        self.service = service

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting, stop consuming, close clients with a reason, then let uvicorn finish."""
        for server in self.servers:
            server.close()
        await self.service.close()
        await super().shutdown(sockets)


async def serve(settings: Settings) -> None:
    """Start the service, then the HTTP server; return after a graceful shutdown.

    Raises:
        EventBridgeError: authentication is misconfigured or missing where it must be (before
            anything connects), the broker is unreachable, or the port is taken.
    """
    authenticator = secured(settings)
    async with BridgeService(settings) as service:
        app = create_app(service, authenticator)
        server = BridgeServer(uvicorn_config(app, settings), service)
        # uvicorn re-raises the signal it handled once it has stopped; this handler swallows
        # that so the service below still closes the broker connection in order.
        signal.signal(signal.SIGTERM, lambda *_: None)
        await server.serve()
        if not server.started:
            raise EventBridgeError(
                f"could not listen on {settings.host}:{settings.port}; is the port in use?"
            )
    logger.info("eventbridge stopped")


def secured(settings: Settings) -> Authenticator:
    """Check that the bridge may start with these settings, and build its authenticator.

    Raises:
        EventBridgeError: anonymous mode on a non-loopback address without `insecure`, or an
            incomplete JWT configuration.
    """
    check_exposure(settings)
    authenticator = Authenticator(settings)
    if authenticator.required:
        logger.info(
            "clients must present a %s token (iss %r, aud %r)",
            authenticator.algorithm,
            authenticator.issuer,
            authenticator.audience,
        )
    else:
        logger.warning(
            "anonymous mode: anyone who reaches %s:%s may join every room",
            settings.host,
            settings.port,
        )
    return authenticator


def run(args: argparse.Namespace) -> int:
    """Run `eventbridge serve`."""
    settings = settings_from(args, BROKER_OPTIONS + SERVER_OPTIONS + AUTH_OPTIONS)
    configure_logging(settings.log_level)
    try:
        asyncio.run(serve(settings))
    except EventBridgeError as exc:
        print(f"eventbridge: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
