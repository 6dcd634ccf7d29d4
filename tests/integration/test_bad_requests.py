"""Bad client requests get the contract's error shape, and the connection keeps working."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import websockets

from producers import EventPublisher
from tests.integration.clients import socketio_client, websocket_client
from tests.integration.conftest import RunningBridge

SOCKETIO_CASES: list[tuple[str, tuple[Any, ...], str]] = [
    ("join-project", ("bad id!",), "invalid_project_id"),
    ("join-project", ({"project_id": "a.b"},), "invalid_project_id"),
    ("join-project", ({"project_id": "x" * 65},), "invalid_project_id"),
    ("join-project", ({"room": "p1"},), "invalid_payload"),
    ("join-project", (42,), "invalid_payload"),
    ("join-project", (), "invalid_payload"),
    ("join-project", ({"project_id": "p1", "since": "yesterday"},), "invalid_payload"),
    ("leave-project", ([1, 2],), "invalid_payload"),
    ("join-activity-feed", ("please",), "invalid_payload"),
    ("subscribe-everything", ({"room": "all"},), "unknown_event"),
]


@pytest.mark.parametrize(("event", "payload", "code"), SOCKETIO_CASES)
async def test_socketio_bad_request_gets_error_ack_and_connection_survives(
    bridge: RunningBridge,
    publisher: EventPublisher,
    event: str,
    payload: tuple[Any, ...],
    code: str,
) -> None:
    """A bad Socket.IO request acks {ok: false, error: {code, message}}; the client still works."""
    async with socketio_client(bridge.http_url) as client:
        ack = await client.call(event, *payload)
        assert ack["ok"] is False
        assert ack["error"]["code"] == code
        assert isinstance(ack["error"]["message"], str)
        assert ack["error"]["message"]
        assert (await client.call("join-project", "p1"))["ok"] is True
        sent = await publisher.agent_status("p1", agent_id="a", status="running")
        [event_received] = await client.wait_for_events(1)
    assert event_received["id"] == sent.id


WEBSOCKET_CASES: list[tuple[str | dict[str, Any], str, str | None]] = [
    ("not json at all", "invalid_json", None),
    ('["a", "list"]', "invalid_payload", None),
    ({"type": "subscribe", "project_id": "bad id!"}, "invalid_project_id", "subscribe"),
    ({"type": "subscribe", "room": "secret-room"}, "unknown_room", "subscribe"),
    ({"type": "subscribe"}, "invalid_payload", "subscribe"),
    ({"type": "subscribe", "project_id": "p1", "since": -5}, "invalid_payload", "subscribe"),
    ({"type": "unsubscribe", "room": 7}, "unknown_room", "unsubscribe"),
    ({"type": "teleport", "project_id": "p1"}, "unknown_type", "teleport"),
    ({"no_type": True}, "unknown_type", None),
]


@pytest.mark.parametrize(("message", "code", "request_type"), WEBSOCKET_CASES)
async def test_websocket_bad_request_gets_request_error_and_connection_survives(
    bridge: RunningBridge,
    publisher: EventPublisher,
    message: str | dict[str, Any],
    code: str,
    request_type: str | None,
) -> None:
    """A bad WebSocket message gets request_error {code, message, request}; the socket lives."""
    async with websocket_client(f"{bridge.ws_url}/ws") as ws:
        answer = await ws.request(message, "request_error")
        assert answer["type"] == "request_error"
        assert answer["code"] == code
        assert answer["request"] == request_type
        assert answer["message"]
        assert await ws.request({"type": "ping"}, "pong") == {"type": "pong"}
        await ws.request({"type": "subscribe", "project_id": "p1"}, "subscribed")
        sent = await publisher.agent_status("p1", agent_id="a", status="running")
        [event] = await ws.wait_for_events(1)
    assert event["id"] == sent.id


async def test_websocket_binary_frame_is_refused_politely(bridge: RunningBridge) -> None:
    """A binary frame gets a request_error and the connection keeps answering."""
    async with websocket_client(f"{bridge.ws_url}/ws") as ws:
        await ws.connection.send(b"\x00\x01binary")
        answer = await ws.request({"type": "ping"}, "pong")
        assert answer == {"type": "pong"}
        [error] = ws.replies("request_error")
    assert error["code"] == "invalid_payload"


async def test_leave_stops_delivery_on_both_transports(
    bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """After leave-project / unsubscribe, the room's events no longer arrive."""
    async with (
        socketio_client(bridge.http_url) as sio,
        websocket_client(f"{bridge.ws_url}/ws/ai/p1") as ws,
    ):
        assert (await sio.call("join-project", "p1"))["ok"]
        assert (await sio.call("join-activity-feed"))["ok"]
        await ws.request({"type": "subscribe", "room": "activity-feed"}, "subscribed")
        first = await publisher.agent_status("p1", agent_id="a", status="running")
        await sio.wait_for_events(1)
        await ws.wait_for_events(1)
        assert await sio.call("leave-project", {"project_id": "p1"}) == {
            "ok": True,
            "room": "project:p1",
        }
        left = await ws.request({"type": "unsubscribe", "project_id": "p1"}, "unsubscribed")
        assert left == {"type": "unsubscribed", "room": "project:p1"}
        await publisher.agent_status("p1", agent_id="a", status="succeeded")
        feed_event = await publisher.activity_created(None, actor="x", action="y")
        await ws.wait_for_events(2)
        await sio.wait_for_events(2)
    # The feed event was published last: once it is in, the left room's event would be too.
    assert [event["id"] for event in ws.events()] == [first.id, feed_event.id]
    assert [event["id"] for event in sio.events()] == [first.id, feed_event.id]


async def test_engineio_close_packet_ends_the_websocket_at_once(
    bridge: RunningBridge, caplog: pytest.LogCaptureFixture
) -> None:
    """Engine.IO's CLOSE packet closes the WebSocket at once; what follows it is dropped quietly."""
    url = f"{bridge.ws_url}/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(url) as ws:
        assert str(await ws.recv()).startswith("0{")
        await ws.send("40")
        assert str(await ws.recv()).startswith("40{")
        await ws.send("1")
        await ws.send("40")  # after the CLOSE: must not reach python-socketio
        async with asyncio.timeout(2):
            await ws.wait_closed()
    await asyncio.sleep(0.1)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert not list(bridge.hub.connections())


WEBSOCKET_HANDSHAKE = (
    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


@pytest.mark.parametrize(
    ("path", "handshake"),
    [
        ("/ws", WEBSOCKET_HANDSHAKE),
        ("/socket.io/?EIO=4&transport=websocket", WEBSOCKET_HANDSHAKE),
        ("/socket.io/?EIO=4&transport=polling", ""),
    ],
    ids=["native", "socketio-websocket", "socketio-polling"],
)
async def test_two_origin_headers_are_refused_with_400(
    bridge: RunningBridge, path: str, handshake: str
) -> None:
    """A request carrying two Origin headers (even both the bridge's own) is refused with HTTP
    400 on every transport, as docs/security.md says."""
    reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
    own = f"Origin: {bridge.http_url}\r\n"
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{bridge.port}\r\n{handshake}{own}{own}\r\n"
    writer.write(head.encode())
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    await writer.wait_closed()
    assert status.startswith(b"HTTP/1.1 400 "), status
    assert not list(bridge.hub.connections())
