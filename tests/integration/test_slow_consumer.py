"""A client that stops reading: the others get everything, and the stuck one is cut off."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Callable

import httpx
import pytest

from bridge.settings import Settings
from producers import EventPublisher
from tests.helpers import wait_for
from tests.integration.abuse_clients import OPCODE_TEXT, client_frame, raw_websocket, read_frame
from tests.integration.clients import SocketIOWatcher, websocket_client
from tests.integration.conftest import running_bridge

# Under pytest-xdist the tests that load the bridge run on one worker, one after another.
pytestmark = pytest.mark.xdist_group("load")

LINE = "x" * 9_000
"""A deployment log line: each event's frame is about 9.3 kB."""
EVENTS = 800
"""7.4 MB in all: more than the kernel buffers (~2.7 MB) and the outbox of the stuck client hold."""


async def stuck_websocket(
    port: int, path: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket on a small receive buffer whose owner never reads it after the handshake."""
    reader, writer = await raw_websocket(port, path)
    raw = writer.get_extra_info("socket")
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer.transport.pause_reading()  # type: ignore[attr-defined]
    return reader, writer


async def stuck_socketio(
    port: int, project: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A Socket.IO session (WebSocket transport) that joins `project`, then never reads."""
    reader, writer = await raw_websocket(port, "/socket.io/?EIO=4&transport=websocket")
    for packet in ("40", f'420["join-project","{project}"]'):
        writer.write(client_frame(OPCODE_TEXT, packet.encode()))
    await writer.drain()
    async with asyncio.timeout(10):  # the join is answered before it stops reading
        while not (answer := (await read_frame(reader))[1]).startswith(b"430["):
            pass
    assert json.loads(answer[3:])[0]["ok"] is True, answer
    raw = writer.get_extra_info("socket")
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer.transport.pause_reading()  # type: ignore[attr-defined]
    return reader, writer


async def drained_until_closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    """Read again until the bridge's end is gone (end of stream or a reset); return the bytes
    read."""
    writer.transport.resume_reading()  # type: ignore[attr-defined]
    received = 0
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(1 << 20):
            received += len(chunk)
    return received


@pytest.mark.parametrize("transport", ["websocket", "socketio"])
async def test_a_stuck_client_is_cut_off_and_the_others_get_everything(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher, transport: str
) -> None:
    """With one client that stops reading in a busy room, a reading client of that room gets
    every event in order; the stuck one is disconnected as slow and, since it never takes the
    close, its connection is aborted: the bridge keeps neither its socket nor its queue."""
    settings = bridge_settings(outbox_max_bytes=256 * 1024)
    async with running_bridge(settings) as bridge:
        if transport == "websocket":
            stuck = await stuck_websocket(bridge.port, "/ws/ai/p1")
        else:
            stuck = await stuck_socketio(bridge.port, "p1")
        async with websocket_client(f"{bridge.ws_url}/ws/ai/p1") as reading:
            await wait_for(lambda: bool(reading.replies("subscribed")), 5)
            watcher = SocketIOWatcher()
            await watcher.client.connect(bridge.http_url, transports=["websocket"])
            assert (await watcher.call("join-project", "p1"))["ok"]
            sent = []
            for number in range(EVENTS):
                published = await publisher.deployment_log(
                    "p1", deployment_id="d", stream="stdout", line=f"{number} {LINE}"
                )
                sent.append(published.id)
            await reading.wait_for_events(EVENTS, timeout=30)
            await watcher.wait_for_events(EVENTS, timeout=30)
            assert [event["id"] for event in reading.events()] == sent
            assert [event["id"] for event in watcher.events()] == sent

            async def counted() -> int:
                async with httpx.AsyncClient() as http:
                    health = (await http.get(f"{bridge.http_url}/health")).json()
                services = health["services"]
                return int(
                    services["websocket"]["connections"] + services["socketio"]["connections"]
                )

            deadline = asyncio.get_running_loop().time() + 15
            while await counted() != 2:  # the reading client and the watcher
                assert asyncio.get_running_loop().time() < deadline, (
                    "the stuck client is still counted"
                )
                await asyncio.sleep(0.2)
            # What it can still read is what its own kernel had received: the bridge's end was
            # reset, dropping the megabytes queued for it instead of trickling them out.
            assert await asyncio.wait_for(drained_until_closed(*stuck), 15) < 1024 * 1024
            await watcher.client.disconnect()
        stuck[1].close()
