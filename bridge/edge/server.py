"""One bridge replica put together: the hub, the log consumer that feeds it, the ASGI app that
serves it, and the HTTP server in front, with the order in which they start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import uuid
from types import TracebackType
from typing import Any

import uvicorn

from bridge.broker.consumer import LogConsumer
from bridge.broker.presence import PresenceLink
from bridge.broker.ranges import LogRanges
from bridge.broker.topology import Names
from bridge.core.hub import Hub
from bridge.core.presence import Presence
from bridge.core.presence_local import PresenceLimits
from bridge.core.subscription import HubLimits
from bridge.edge.app import create_app
from bridge.edge.auth import Authenticator, check_exposure
from bridge.edge.gcpauses import GcPauses, configure_collector
from bridge.edge.metrics import metrics_app, metrics_registry
from bridge.edge.presence import PresenceRooms
from bridge.errors import ConfigurationError
from bridge.settings import Settings
from bridge.upstream.uvicorn import (
    BoundedHttpToolsProtocol,
    GracefulServer,
    TransportAwareWebSockets,
)
from schemas.codes import CloseReason

logger = logging.getLogger(__name__)


def hub_limits(settings: Settings) -> HubLimits:
    """The hub's bounds, from the settings of the same names."""
    return HubLimits(
        history_max_events=settings.history_max_events,
        history_max_bytes=settings.history_max_bytes,
        state_max_entries=settings.state_max_entries,
        state_max_bytes=settings.state_max_bytes,
        catchup_max_events=settings.catchup_max_events,
        catchup_max_records=settings.catchup_max_records,
        catchup_concurrency=settings.catchup_concurrency,
        room_index_max=settings.room_index_max,
        snapshot_wait=settings.snapshot_wait,
        max_rooms_per_connection=settings.max_rooms_per_connection,
    )


def presence_of(settings: Settings) -> Presence | None:
    """This replica's presence, with a fresh replica id (None when presence is turned off)."""
    if not settings.presence:
        return None
    limits = PresenceLimits(
        expiry=settings.presence_expiry,
        state_max_bytes=settings.presence_state_max_bytes,
        state_per_second=settings.presence_state_per_second,
        max_members=settings.presence_max_members,
    )
    return Presence(
        uuid.uuid4().hex,
        limits,
        schedule=lambda delay, flush: asyncio.get_running_loop().call_later(delay, flush),
    )


class Bridge:
    """One replica: hub, log consumer and app; an async context manager.

    Entering it connects to the broker and returns once the log is consumed live (or raises
    with one sentence saying what is wrong); leaving it shuts down in the order clients can
    follow (see `close`).
    """

    def __init__(self, settings: Settings, authenticator: Authenticator | None = None) -> None:
        self.settings = settings
        ranges = LogRanges(
            Names(settings.prefix).log,
            prefetch=settings.consumer_prefetch,
            max_bytes=settings.max_message_bytes,
        )
        self.hub = Hub(hub_limits(settings), ranges)
        self.consumer = LogConsumer(settings, self.hub, ranges)
        self.presence = presence_of(settings)
        self.presence_link = (
            None if self.presence is None else PresenceLink(settings, self.presence)
        )
        self.gc_pauses = GcPauses()
        self.metrics = metrics_registry(self.hub, self.consumer, self.gc_pauses)
        """The registry `/metrics` serves (also read by the dashboard's operator panel)."""
        self.app: Any = create_app(
            self.hub,
            broker=self.consumer,
            publish=self.consumer.publish_client_event,
            settings=settings,
            authenticator=authenticator or Authenticator(settings),
            metrics=self.metrics if settings.metrics and not settings.metrics_port else None,
            on_shutdown=self.close,
            presence=PresenceRooms(self.presence),
        )
        self._closed = False

    async def __aenter__(self) -> Bridge:
        self.gc_pauses.__enter__()
        link = self.presence_link
        try:
            # Presence learns the other replicas' members while the log is read.
            if link is not None:
                await link.__aenter__()
            await self.consumer.__aenter__()
            if link is not None:
                await link.wait_ready(self.settings.startup_timeout)
        except BaseException:
            if link is not None:
                await link.close()
            self.gc_pauses.__exit__()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Shut down in order; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        # 1. Stop consuming the log: no new events enter the bridge; the dead-letter checkpoint
        #    is saved and the broker connection closed.
        await self.consumer.close()
        # 2. Say goodbye on the presence exchange: the other replicas drop this one's members
        #    at once (the clients reconnect elsewhere and are present there).
        if self.presence_link is not None:
            await self.presence_link.close()
        # 3. Close every client connection with a reason (they resume by offset later); a client
        #    that does not take its close within the time allowed is dropped. 4. Stop the
        #    writers: frames a client did not take in time are dropped.
        await self.hub.close(CloseReason.SHUTDOWN, within=self.settings.shutdown_timeout / 2)
        self.gc_pauses.__exit__()

    def metrics_server(self) -> uvicorn.Server | None:
        """The HTTP server of `/metrics` on its own port, if `EVENTBRIDGE_METRICS_PORT` asks
        for one (and metrics are on)."""
        settings = self.settings
        if not settings.metrics or not settings.metrics_port:
            return None
        config = uvicorn.Config(
            metrics_app(self.metrics),
            host=settings.host,
            port=settings.metrics_port,
            lifespan="off",
            log_config=None,
            access_log=False,
        )
        return uvicorn.Server(config)

    def server(self) -> GracefulServer:
        """The HTTP server for this replica: on SIGTERM it stops accepting, then closes the
        bridge (above), then lets uvicorn finish."""
        return GracefulServer(uvicorn_config(self.app, self.settings), self.close)


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    """The HTTP server's configuration for the bridge."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        http=BoundedHttpToolsProtocol,
        ws=TransportAwareWebSockets,
        log_config=None,
        access_log=False,  # access logs would print query strings verbatim
        ws_per_message_deflate=settings.ws_compression,
        # Every WebSocket, native or Socket.IO's, is served by uvicorn: these apply to both.
        ws_max_size=settings.max_frame_bytes,
        ws_ping_interval=settings.ping_interval,
        ws_ping_timeout=settings.ping_timeout,
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
    )


def secured(settings: Settings) -> Authenticator:
    """Check that the bridge may start with these settings, and build its authenticator.

    Raises:
        ConfigurationError: anonymous mode on a non-loopback address without `insecure`, or an
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


def bind(settings: Settings) -> list[socket.socket]:
    """Bind the HTTP port now, before the broker is contacted, so a port in use is reported
    at once rather than after the bridge said it was ready; uvicorn listens on the sockets.

    Binds each address the host resolves to (as uvicorn would), with the same options.

    Raises:
        ConfigurationError: the address cannot be bound (the port is in use, or the host is no
            address of this machine); the sentence names EVENTBRIDGE_PORT and --port.
    """
    where = f"{settings.host}:{settings.port}"
    try:
        infos = socket.getaddrinfo(
            settings.host or None,
            settings.port,
            type=socket.SOCK_STREAM,
            flags=socket.AI_PASSIVE,
        )
    except socket.gaierror as exc:
        raise ConfigurationError(
            f"cannot listen on {where} ({exc.strerror}): set EVENTBRIDGE_HOST (or --host) to an "
            "address of this machine"
        ) from exc
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            listener = socket.socket(family, kind, proto)
            sockets.append(listener)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio does: IPv4 gets its own socket
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            listener.bind(address)
    except OSError as exc:
        for listener in sockets:
            listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"port {settings.port} on {settings.host} is in use by another program: stop it, "
                "or choose another port with EVENTBRIDGE_PORT or --port (e.g. "
                f"EVENTBRIDGE_PORT={settings.port + 1})"
            ) from exc
        raise ConfigurationError(
            f"cannot listen on {where} ({exc.strerror}): choose another address or port with "
            "EVENTBRIDGE_HOST / EVENTBRIDGE_PORT or --host / --port"
        ) from exc
    return sockets


async def _start_metrics(
    server: uvicorn.Server | None, settings: Settings
) -> tuple[uvicorn.Server, asyncio.Task[None]] | None:
    """Start the metrics port's server, if there is one, and wait until it listens.

    Raises:
        ConfigurationError: it could not listen (the port is taken).
    """
    if server is None:
        return None
    # The main server handles the signals; this one is stopped with `should_exit`.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(), name="metrics-server")
    while not server.started:
        if task.done():
            raise ConfigurationError(
                f"could not serve metrics on {settings.host}:{settings.metrics_port}; "
                "is the port in use? (EVENTBRIDGE_METRICS_PORT)"
            )
        await asyncio.sleep(0.01)
    return server, task


async def serve(settings: Settings) -> None:
    """Start the bridge, then the HTTP server; return after a graceful shutdown.

    Raises:
        EventBridgeError: authentication is misconfigured or missing where it must be, or the
            port cannot be bound (both before anything connects), or the broker is unreachable.
    """
    authenticator = secured(settings)
    sockets = bind(settings)
    configure_collector()
    try:
        async with Bridge(settings, authenticator) as bridge:
            server = bridge.server()
            metrics = await _start_metrics(bridge.metrics_server(), settings)
            # uvicorn re-raises the signal it handled once it has stopped; this handler swallows
            # that so the bridge below still closes the broker connection in order.
            signal.signal(signal.SIGTERM, lambda *_: None)
            logger.info("serving on http://%s:%s", settings.host, settings.port)
            try:
                await server.serve(sockets=sockets)
            finally:
                if metrics is not None:
                    # The metrics port closes last, so the shutdown can be watched to its end.
                    metrics_server, task = metrics
                    metrics_server.should_exit = True
                    await task
            if not server.started:
                raise ConfigurationError(
                    f"the HTTP server on {settings.host}:{settings.port} did not start; see the "
                    "log above"
                )
    finally:
        for listener in sockets:  # uvicorn closes them too; closing twice is harmless
            listener.close()
    logger.info("eventbridge stopped")
