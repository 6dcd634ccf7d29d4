"""Origins and limits (docs/security.md), on a real bridge with real clients.

Socket.IO is driven both through the official `socketio.AsyncClient` and, where the point is what
the server does with one HTTP request or one WebSocket frame, through raw Engine.IO v4 requests
(`httpx` for long-polling, `websockets` for the WebSocket transport).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import socketio
import websockets

from bridge.settings import Settings
from producers import EventPublisher, PublishedEvent
from tests.helpers import wait_for
from tests.integration.clients import (
    SocketIOWatcher,
    WebSocketWatcher,
    socketio_client,
    websocket_client,
)
from tests.integration.conftest import RunningBridge, free_port, running_bridge

APP = "https://app.example.com"
DEV = "http://localhost:5173"
SELF = "<the bridge's own origin>"

ORIGINS: list[tuple[str | None, bool, str]] = [
    (None, True, "no Origin header: a non-browser client"),
    (SELF, True, "the bridge's own origin: the dashboard at /"),
    (APP, True, "listed"),
    (DEV, True, "listed, with a port"),
    ("HTTPS://App.Example.COM", True, "listed, in other letter case"),
    ("https://app.example.com:443", False, "listed, with the default port a browser omits"),
    ("https://evil.example", False, "foreign"),
    ("null", False, "null: a sandboxed frame or a file: page"),
    ("https://app.example.com.evil.com", False, "look-alike: listed host as a prefix"),
    ("https://evil-app.example.com", False, "look-alike: listed host as a suffix"),
    ("https://app.example.co", False, "look-alike: listed host shortened"),
    ("http://app.example.com", False, "listed host, wrong scheme"),
    ("https://app.example.com:8443", False, "listed host, wrong port"),
    ("http://localhost:5174", False, "listed host, neighbouring port"),
    ("https://user@app.example.com", False, "listed host behind user info"),
    ("https://app.example.com/path", False, "not an origin: has a path"),
    ("http://127.0.0.1:1", False, "loopback, but another port than the bridge's"),
]


def origin_header(origin: str | None, bridge: RunningBridge) -> dict[str, str]:
    """The request headers that send `origin` (SELF stands for the bridge's own)."""
    if origin is None:
        return {}
    return {"Origin": bridge.http_url if origin == SELF else origin}


@pytest.fixture
async def guarded(bridge_settings: Callable[..., Settings]) -> AsyncIterator[RunningBridge]:
    """A bridge that allows two listed origins besides its own."""
    async with running_bridge(bridge_settings(allowed_origins=[APP, DEV])) as running:
        yield running


@asynccontextmanager
async def engineio_websocket(
    bridge: RunningBridge, headers: dict[str, str] | None = None
) -> AsyncIterator[websockets.ClientConnection]:
    """A raw Engine.IO v4 WebSocket, opened and connected to namespace `/`."""
    url = f"{bridge.ws_url}/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(url, additional_headers=headers, compression=None) as raw:
        opened = await asyncio.wait_for(raw.recv(), 5)
        assert isinstance(opened, str)
        assert opened.startswith("0{")
        await raw.send("40")
        connected = await asyncio.wait_for(raw.recv(), 5)
        assert isinstance(connected, str)
        assert connected.startswith("40{")
        yield raw


async def closed_with(
    client: websockets.ClientConnection | WebSocketWatcher, timeout: float = 5
) -> int | None:
    """Wait until the server has closed the connection; return its close code."""
    if isinstance(client, WebSocketWatcher):  # its own reader sees the close
        await wait_for(lambda: client.connection.close_code is not None, timeout)
        return client.connection.close_code
    with contextlib.suppress(websockets.ConnectionClosed):
        async with asyncio.timeout(timeout):
            async for _ in client:
                pass
    return client.close_code


async def publish_during(
    publisher: EventPublisher, abuse: Any, count: int = 20
) -> list[PublishedEvent]:
    """Publish `count` events to p1 while `abuse` (a coroutine) runs; return them."""
    published: list[PublishedEvent] = []

    async def publish() -> None:
        for number in range(count):
            published.append(
                await publisher.progress_update("p1", agent_id="a", progress=number / count)
            )

    await asyncio.gather(abuse, publish())
    return published


async def assert_received_everything(
    watcher: SocketIOWatcher | WebSocketWatcher, published: list[PublishedEvent]
) -> None:
    """The watcher got exactly the published events, in order."""
    await watcher.wait_for_events(len(published))
    assert [event["id"] for event in watcher.events()] == [event.id for event in published]


# -- origins -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("origin", "accepted", "case"), ORIGINS, ids=[c for *_, c in ORIGINS])
async def test_native_websocket_origin_matrix(
    guarded: RunningBridge, origin: str | None, accepted: bool, case: str
) -> None:
    """A native WebSocket handshake is accepted or refused with HTTP 403 by its Origin."""
    headers = origin_header(origin, guarded)
    if accepted:
        async with websockets.connect(f"{guarded.ws_url}/ws", additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"type": "pong"}, case
        return
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(f"{guarded.ws_url}/ws/ai/p1", additional_headers=headers):
            pass
    assert refused.value.response.status_code == 403, case
    assert not list(guarded.hub.connections())


@pytest.mark.parametrize(("origin", "accepted", "case"), ORIGINS, ids=[c for *_, c in ORIGINS])
async def test_socketio_origin_matrix_over_polling_and_websocket(
    guarded: RunningBridge, origin: str | None, accepted: bool, case: str
) -> None:
    """A Socket.IO handshake is accepted or refused by its Origin: long-polling with HTTP 400,
    the WebSocket transport with HTTP 403."""
    headers = origin_header(origin, guarded)
    async with httpx.AsyncClient(base_url=guarded.http_url, headers=headers) as http:
        polling = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
    if accepted:
        assert polling.status_code == 200, case
        assert polling.text.startswith("0{")
        async with engineio_websocket(guarded, headers):
            pass
        return
    assert polling.status_code == 400, case
    assert "not an accepted origin" in polling.text
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with engineio_websocket(guarded, headers):
            pass
    assert refused.value.response.status_code == 403, case


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_socketio_client_from_a_foreign_origin_cannot_connect(
    guarded: RunningBridge, transport: str
) -> None:
    """The official Socket.IO client sending a foreign Origin fails to connect on either
    transport, and the bridge registers no connection."""
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            guarded.http_url,
            transports=[transport],
            headers={"Origin": "https://evil.example"},
            wait_timeout=5,
        )
    with contextlib.suppress(Exception):
        await client.eio.http.close()  # the client leaves its HTTP session open on failure
    assert client.connected is False
    assert not list(guarded.hub.connections())


async def test_default_allows_only_the_bridges_own_origin(bridge: RunningBridge) -> None:
    """With no allow-list, a page of the bridge itself connects; a page on another loopback port
    or under another name for the same host does not."""
    own = {"Origin": bridge.http_url}
    async with websockets.connect(f"{bridge.ws_url}/ws", additional_headers=own) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"type": "pong"}
    for foreign in (f"http://127.0.0.1:{free_port()}", f"http://localhost:{bridge.port}"):
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(
                f"{bridge.ws_url}/ws", additional_headers={"Origin": foreign}
            ):
                pass
        async with httpx.AsyncClient(base_url=bridge.http_url) as http:
            response = await http.get(
                "/socket.io/",
                params={"EIO": "4", "transport": "polling"},
                headers={"Origin": foreign},
            )
        assert response.status_code == 400, foreign


# -- frame size ----------------------------------------------------------------------------------

LIMIT = 4096


async def test_oversized_websocket_frame_closes_with_1009_while_others_receive(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """A native WebSocket frame over max_frame_bytes closes that connection with 1009; a frame
    of exactly the limit is answered; another client keeps receiving every event."""
    async with (
        running_bridge(bridge_settings(max_frame_bytes=LIMIT)) as bridge,
        websocket_client(f"{bridge.ws_url}/ws/ai/p1") as watcher,
        websocket_client(f"{bridge.ws_url}/ws") as offender,
    ):
        at_limit = json.dumps({"type": "ping", "pad": ""})
        at_limit = json.dumps({"type": "ping", "pad": "x" * (LIMIT - len(at_limit))})
        assert len(at_limit) == LIMIT
        assert await offender.request(at_limit, "pong") == {"type": "pong"}

        async def abuse() -> None:
            await offender.send(json.dumps({"type": "ping", "pad": "x" * LIMIT}))
            assert await closed_with(offender) == 1009

        published = await publish_during(publisher, abuse())
        await assert_received_everything(watcher, published)


async def test_oversized_socketio_frame_closes_with_1009_while_others_receive(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """A Socket.IO WebSocket frame over max_frame_bytes closes that connection with 1009;
    another Socket.IO client keeps receiving every event."""
    async with (
        running_bridge(bridge_settings(max_frame_bytes=LIMIT)) as bridge,
        socketio_client(bridge.http_url) as watcher,
        engineio_websocket(bridge) as offender,
    ):
        assert (await watcher.call("join-project", "p1"))["ok"]

        async def abuse() -> None:
            await offender.send("42" + json.dumps(["new-activity", {"actor": "x" * LIMIT}]))
            assert await closed_with(offender) == 1009

        published = await publish_during(publisher, abuse())
        await assert_received_everything(watcher, published)


async def test_oversized_socketio_polling_request_disconnects_while_others_receive(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """A long-polling POST over max_frame_bytes ends that Socket.IO session (HTTP 400, server
    disconnect); another client keeps receiving every event."""
    async with (
        running_bridge(bridge_settings(max_frame_bytes=LIMIT)) as bridge,
        socketio_client(bridge.http_url) as watcher,
    ):
        assert (await watcher.call("join-project", "p1"))["ok"]
        offender = socketio.AsyncClient(reconnection=False)
        reasons: list[Any] = []
        offender.on("disconnect", lambda *reason: reasons.append(reason))
        await offender.connect(bridge.http_url, transports=["polling"], wait_timeout=5)
        try:
            assert (await offender.call("join-project", "p1", timeout=5))["ok"]

            async def abuse() -> None:
                await offender.emit("new-activity", {"actor": "x" * LIMIT, "action": "a"})
                await wait_for(lambda: bool(reasons), 10)

            published = await publish_during(publisher, abuse())
        finally:
            await offender.disconnect()
        assert len(reasons) == 1
        await assert_received_everything(watcher, published)
    counts = bridge.hub.counts()
    assert counts["socketio"] == 0


# -- message rate --------------------------------------------------------------------------------

RATE = 10


@pytest.mark.serial  # what refills while the burst is read: run with no other test beside it
async def test_websocket_excess_is_rate_limited_and_the_connection_survives(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """Three seconds' worth of pings at once: one second's worth answered, the rest refused with
    rate_limited; the connection stays open and works again a second later; another client
    receives every event meanwhile."""
    async with (
        running_bridge(bridge_settings(max_messages_per_second=RATE)) as bridge,
        websocket_client(f"{bridge.ws_url}/ws/ai/p1") as watcher,
        websocket_client(f"{bridge.ws_url}/ws") as flooder,
    ):

        async def abuse() -> None:
            for _ in range(3 * RATE):
                await flooder.send({"type": "ping"})
            await wait_for(lambda: len(flooder.received) == 3 * RATE)

        published = await publish_during(publisher, abuse())
        pongs = flooder.replies("pong")
        refused = flooder.replies("request_error")
        # One second's worth, plus what refills while the burst is read (little, unless the
        # machine is very busy): well short of the three seconds' worth sent.
        assert RATE <= len(pongs) <= 2 * RATE
        assert len(pongs) + len(refused) == 3 * RATE
        assert {error["code"] for error in refused} == {"rate_limited"}
        assert all(error["request"] is None and error["message"] for error in refused)
        await asyncio.sleep(1.1)
        assert await flooder.request({"type": "ping"}, "pong") == {"type": "pong"}
        await assert_received_everything(watcher, published)


async def test_websocket_flood_closes_with_1008_while_others_receive(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """Twenty seconds' worth of messages at once closes the connection with 1008 (flooding);
    another client receives every event meanwhile."""
    async with (
        running_bridge(bridge_settings(max_messages_per_second=RATE)) as bridge,
        websocket_client(f"{bridge.ws_url}/ws/ai/p1") as watcher,
        websocket_client(f"{bridge.ws_url}/ws") as flooder,
    ):

        async def abuse() -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                for _ in range(20 * RATE):
                    await flooder.send({"type": "ping"})
            assert await closed_with(flooder) == 1008
            assert (flooder.connection.close_reason or "").startswith("flooding")

        published = await publish_during(publisher, abuse())
        await assert_received_everything(watcher, published)
    assert len(flooder.replies("pong")) < 2 * RATE


@pytest.mark.serial  # what refills while the burst is read: run with no other test beside it
async def test_socketio_excess_is_rate_limited_and_the_connection_survives(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """Three seconds' worth of Socket.IO calls at once: one second's worth succeed, the rest
    ack rate_limited; the client stays connected and is served again a second later; another
    client receives every event meanwhile."""
    async with (
        running_bridge(bridge_settings(max_messages_per_second=RATE)) as bridge,
        socketio_client(bridge.http_url) as watcher,
        socketio_client(bridge.http_url) as flooder,
    ):
        assert (await watcher.call("join-project", "p1"))["ok"]
        await asyncio.sleep(1.1)  # the flooder's bucket is full again after the join above
        acks: list[dict[str, Any]] = []

        async def abuse() -> None:
            calls = [flooder.call("join-project", f"p{n}") for n in range(3 * RATE)]
            acks.extend(await asyncio.gather(*calls))

        published = await publish_during(publisher, abuse())
        succeeded = [ack for ack in acks if ack["ok"]]
        refused = [ack["error"] for ack in acks if not ack["ok"]]
        assert RATE <= len(succeeded) <= 2 * RATE  # as above: well short of what was sent
        assert len(succeeded) + len(refused) == 3 * RATE
        assert {error["code"] for error in refused} == {"rate_limited"}
        assert flooder.client.connected
        await asyncio.sleep(1.1)
        assert (await flooder.call("leave-project", "p0"))["ok"]
        await assert_received_everything(watcher, published)


async def test_socketio_flood_disconnects_with_a_reason_while_others_receive(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """Twenty seconds' worth of Socket.IO emits at once: the client is told bridge-disconnect
    {reason: flooding} and disconnected; another client receives every event meanwhile."""
    async with (
        running_bridge(bridge_settings(max_messages_per_second=RATE)) as bridge,
        socketio_client(bridge.http_url) as watcher,
    ):
        assert (await watcher.call("join-project", "p1"))["ok"]
        flooder = SocketIOWatcher()
        await flooder.client.connect(bridge.http_url, transports=["websocket"], wait_timeout=5)
        try:

            async def abuse() -> None:
                for _ in range(20 * RATE):
                    if not flooder.client.connected:
                        break
                    await flooder.client.emit("join-project", "p1")
                await wait_for(lambda: not flooder.client.connected, 10)

            published = await publish_during(publisher, abuse())
        finally:
            await flooder.client.disconnect()
        assert ("bridge-disconnect", {"reason": "flooding"}) in flooder.received
        await assert_received_everything(watcher, published)
    assert bridge.hub.counts()["socketio"] == 0


# -- rooms ---------------------------------------------------------------------------------------


async def test_too_many_rooms_on_both_transports(
    bridge_settings: Callable[..., Settings],
) -> None:
    """Past max_rooms_per_connection a join gets too_many_rooms; rejoining a room one is in, or
    joining after leaving one, still works."""
    async with (
        running_bridge(bridge_settings(max_rooms_per_connection=3)) as bridge,
        websocket_client(f"{bridge.ws_url}/ws/ai/p1") as ws,
        socketio_client(bridge.http_url) as sio,
    ):
        for project in ("p2", "p3"):
            await ws.request({"type": "subscribe", "project_id": project}, "subscribed")
        refused = await ws.request({"type": "subscribe", "room": "activity-feed"}, "subscribed")
        assert refused["type"] == "request_error"
        assert refused["code"] == "too_many_rooms"
        again = await ws.request({"type": "subscribe", "project_id": "p2"}, "subscribed")
        assert again["type"] == "subscribed"
        await ws.request({"type": "unsubscribe", "project_id": "p2"}, "unsubscribed")
        joined = await ws.request({"type": "subscribe", "project_id": "p4"}, "subscribed")
        assert joined["room"] == "project:p4"

        for project in ("p1", "p2", "p3"):
            assert (await sio.call("join-project", project))["ok"]
        ack = await sio.call("join-activity-feed")
        assert ack["ok"] is False
        assert ack["error"]["code"] == "too_many_rooms"
        assert "3 rooms" in ack["error"]["message"]
        assert (await sio.call("join-project", "p3"))["ok"]
        assert (await sio.call("leave-project", "p3"))["ok"]
        assert (await sio.call("join-activity-feed"))["ok"]


# -- idle and ping timeouts ----------------------------------------------------------------------


async def test_idle_websocket_is_closed_but_busy_ones_stay(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """A native WebSocket in no room that sends nothing for idle_timeout is closed (1000,
    reason idle); one in a room, and one that pings, stay open."""
    async with (
        running_bridge(bridge_settings(idle_timeout=1.0)) as bridge,
        websocket_client(f"{bridge.ws_url}/ws") as idle,
        websocket_client(f"{bridge.ws_url}/ws/ai/p1") as member,
        websocket_client(f"{bridge.ws_url}/ws") as pinger,
    ):

        async def keep_pinging() -> None:
            while True:
                await pinger.request({"type": "ping"}, "pong")
                await asyncio.sleep(0.3)

        pinging = asyncio.create_task(keep_pinging())
        try:
            assert await closed_with(idle) == 1000
            assert (idle.connection.close_reason or "").startswith("idle")
            await asyncio.sleep(1.5)  # more than idle_timeout again
            sent = await publisher.agent_status("p1", agent_id="a", status="running")
            [event] = await member.wait_for_events(1)
            assert event["id"] == sent.id
            assert not pinging.done()
        finally:
            pinging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinging
        assert member.connection.close_code is None
        assert pinger.connection.close_code is None
        assert bridge.hub.counts()["websocket"] == 2


async def test_client_that_stops_answering_pings_is_closed(
    bridge_settings: Callable[..., Settings],
) -> None:
    """A native WebSocket client that no longer answers pings, and a Socket.IO client that no
    longer answers Engine.IO pings, are closed after ping_interval + ping_timeout."""
    settings = bridge_settings(ping_interval=0.5, ping_timeout=0.5)
    async with (
        running_bridge(settings) as bridge,
        websocket_client(f"{bridge.ws_url}/ws/ai/p1") as ws,
        engineio_websocket(bridge) as raw,
    ):
        await wait_for(lambda: bridge.hub.counts() == {"websocket": 1, "socketio": 1})
        ws.connection.transport.pause_reading()  # no more pongs: pings are never read
        # The raw Engine.IO client reads (so WebSocket pings are answered) but never sends "3".
        pings: list[str | bytes] = []

        async def read_without_answering() -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for frame in raw:
                    pings.append(frame)

        await asyncio.wait_for(read_without_answering(), 10)
        assert "2" in pings  # Engine.IO pinged, and closed when no pong came
        await wait_for(lambda: not list(bridge.hub.connections()), 10)
        ws.connection.transport.resume_reading()
