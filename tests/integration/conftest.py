"""Fixtures that run the real bridge: `Bridge` (hub, log consumer, app) plus uvicorn on a free
port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from bridge.broker.consumer import LogConsumer
from bridge.core.hub import Hub
from bridge.edge.server import Bridge
from bridge.settings import Settings
from producers import EventPublisher


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def wait_ready(port: int, timeout: float = 20) -> None:
    """Wait until the bridge on `port` answers /ready with 200."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(f"http://127.0.0.1:{port}/ready")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"the bridge on port {port} did not become ready in {timeout} s")


EVENTBRIDGE = [sys.executable, "-m", "bridge.cli.main"]


@asynccontextmanager
async def serve_process(
    amqp_url: str,
    prefix: str,
    port: int,
    *,
    log: Path | None = None,
    settings: dict[str, str] | None = None,
    **env: str,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run `eventbridge serve` as a child process; kill it if the test leaves it running.

    Its output is piped, or appended to `log` for a long run whose pipes nobody reads. It runs
    anonymous unless `settings` or `env` (both `EVENTBRIDGE_*` variables) say otherwise.
    """
    output: Any = asyncio.subprocess.PIPE if log is None else log.open("ab")
    process = await asyncio.create_subprocess_exec(
        *EVENTBRIDGE,
        "serve",
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE if log is None else asyncio.subprocess.DEVNULL,
        stderr=output,
        env={
            **os.environ,
            "EVENTBRIDGE_AMQP_URL": amqp_url,
            "EVENTBRIDGE_PREFIX": prefix,
            "EVENTBRIDGE_AUTH": "anonymous",
            **(settings or {}),
            **env,
        },
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        if log is not None:
            output.close()


@dataclass
class RunningBridge:
    """A bridge serving on a local port."""

    bridge: Bridge
    server: uvicorn.Server
    port: int

    @property
    def hub(self) -> Hub:
        """The bridge's hub: rooms, history, state, head and epoch."""
        return self.bridge.hub

    @property
    def consumer(self) -> LogConsumer:
        """The bridge's log consumer: the broker side."""
        return self.bridge.consumer

    @property
    def settings(self) -> Settings:
        """The bridge's settings."""
        return self.bridge.settings

    @property
    def http_url(self) -> str:
        """Base URL for HTTP and Socket.IO."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """Base URL for the native WebSocket."""
        return f"ws://127.0.0.1:{self.port}"


@asynccontextmanager
async def running_bridge(settings: Settings) -> AsyncIterator[RunningBridge]:
    """Start the bridge and uvicorn in this event loop; stop both gracefully afterwards."""
    async with Bridge(settings) as bridge:
        server = bridge.server()
        server.config.log_level = "warning"
        server.capture_signals = _no_signals  # type: ignore[method-assign,assignment]
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        try:
            yield RunningBridge(bridge, server, settings.port)
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 15)


def _no_signals() -> contextlib.AbstractContextManager[None]:
    # The test runner owns the process's signals; the server is stopped with should_exit.
    return contextlib.nullcontext()


@pytest.fixture
def bridge_settings(amqp_url: str, prefix: str) -> Callable[..., Settings]:
    """Build settings for a test bridge: this test's prefix, a free port, overrides allowed."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "amqp_url": amqp_url,
            "prefix": prefix,
            "port": free_port(),
            "startup_timeout": 5.0,
            "auth": "anonymous",
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
async def bridge(bridge_settings: Callable[..., Settings]) -> AsyncIterator[RunningBridge]:
    """A running bridge with default settings."""
    async with running_bridge(bridge_settings()) as running:
        yield running


@pytest.fixture
async def publisher(amqp_url: str, prefix: str) -> AsyncIterator[EventPublisher]:
    """An SDK publisher on this test's exchange."""
    async with EventPublisher(amqp_url, prefix=prefix, source="tests") as events:
        yield events
