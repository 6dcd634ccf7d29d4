"""Real test clients that record what they receive: Socket.IO and native WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import socketio
import websockets

from tests.helpers import wait_for


class SocketIOWatcher:
    """A `socketio.AsyncClient` that records every event it receives, in order."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.received: list[tuple[str, Any]] = []
        self.client.on("*", self._record)

    async def _record(self, event: str, data: Any = None) -> None:
        self.received.append((event, data))

    def events(self) -> list[dict[str, Any]]:
        """The payloads of every bridge event received (envelope plus offset), in order."""
        return [
            data
            for _, data in self.received
            if isinstance(data, dict) and "offset" in data and "id" in data
        ]

    async def call(self, event: str, *payload: Any, timeout: float = 5) -> Any:
        """Emit an event and return the server's acknowledgement."""
        data: Any = payload[0] if len(payload) == 1 else (payload if payload else None)
        if payload:
            return await self.client.call(event, data, timeout=timeout)
        return await self.client.call(event, timeout=timeout)

    async def wait_for_events(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        """Wait until at least `count` bridge events arrived; return them."""
        await wait_for(lambda: len(self.events()) >= count, timeout)
        return self.events()


@asynccontextmanager
async def socketio_client(base_url: str) -> AsyncIterator[SocketIOWatcher]:
    """A connected Socket.IO watcher (WebSocket transport), disconnected afterwards."""
    watcher = SocketIOWatcher()
    await watcher.client.connect(base_url, transports=["websocket"], wait_timeout=5)
    try:
        yield watcher
    finally:
        await watcher.client.disconnect()


class WebSocketWatcher:
    """A `websockets` client that records every frame it receives, in order."""

    def __init__(self, connection: websockets.ClientConnection) -> None:
        self.connection = connection
        self.received: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for frame in self.connection:
                self.received.append(json.loads(frame))

    def events(self) -> list[dict[str, Any]]:
        """Every bridge event received (frames carrying an offset), in order."""
        return [frame for frame in self.received if "offset" in frame and "id" in frame]

    def replies(self, kind: str) -> list[dict[str, Any]]:
        """Every received frame of one reply type (`subscribed`, `request_error`, ...)."""
        return [frame for frame in self.received if frame.get("type") == kind and "id" not in frame]

    async def send(self, message: dict[str, Any] | str) -> None:
        """Send one frame (a dict is sent as JSON)."""
        await self.connection.send(message if isinstance(message, str) else json.dumps(message))

    async def request(
        self, message: dict[str, Any] | str, reply: str, timeout: float = 5
    ) -> dict[str, Any]:
        """Send a frame and wait for the next reply of type `reply` (or a request_error)."""
        before = len(self.replies(reply)) + len(self.replies("request_error"))
        await self.send(message)
        await wait_for(
            lambda: len(self.replies(reply)) + len(self.replies("request_error")) > before, timeout
        )
        answers = [
            frame for frame in self.received if frame.get("type") in (reply, "request_error")
        ]
        return answers[-1]

    async def wait_for_events(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        """Wait until at least `count` bridge events arrived; return them."""
        await wait_for(lambda: len(self.events()) >= count, timeout)
        return self.events()

    async def close(self) -> None:
        """Close the connection and stop reading."""
        await self.connection.close()
        await self._reader


@asynccontextmanager
async def websocket_client(url: str) -> AsyncIterator[WebSocketWatcher]:
    """A connected native WebSocket watcher, closed afterwards."""
    async with websockets.connect(url, compression=None, max_size=2**22) as connection:
        watcher = WebSocketWatcher(connection)
        try:
            yield watcher
        finally:
            await watcher.close()
