"""compose/nginx.conf, run by a real nginx in front of two bridge replicas on the real broker.

The checked-in file is rendered for this machine by tests/nginx.py (upstream servers pointed at
the replicas' local ports, a free listening port, files under the test's directory) and run with
Debian's nginx; the replicas are `eventbridge serve` child processes sharing one prefix, as the
Compose stack's bridge-1 and bridge-2 share the broker. Clients then connect through nginx only.
Socket.IO sessions come from several loopback addresses (127.0.0.2, ...), as from several
machines, so the sticky upstream has something to spread. Needs nginx (`apt-get install nginx`)
and, for the official client, Node.js with `npm ci --prefix tests/js`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import warnings
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import socketio
import websockets

from producers import EventPublisher, PublishedEvent
from tests.helpers import wait_for
from tests.integration.clients import SocketIOWatcher, WebSocketWatcher
from tests.integration.conftest import free_port, serve_process, wait_ready
from tests.integration.test_js_clients import (
    assert_rising_offsets,
    assert_socketio_events,
    is_feed_join_reply,
    is_presence,
    node_script,
    publish_mix,
)
from tests.nginx import (
    NGINX_CONF,
    NginxMissingError,
    Request,
    local_config,
    nginx_executable,
    read_access_log,
    running_nginx,
    upstream_hosts,
)

REPLICAS = ("bridge-1", "bridge-2")


@dataclass
class Replica:
    """One bridge replica: the Compose service it stands for, its port and its process."""

    service: str
    port: int
    process: asyncio.subprocess.Process

    @property
    def address(self) -> str:
        """How nginx's access log names this replica."""
        return f"127.0.0.1:{self.port}"

    async def connections(self) -> dict[str, int]:
        """Its open client connections by transport, from its own /health (not through nginx)."""
        async with httpx.AsyncClient() as http:
            report = (await http.get(f"http://127.0.0.1:{self.port}/health", timeout=5)).json()
        services = report["services"]
        return {name: services[name]["connections"] for name in ("socketio", "websocket")}

    async def stop(self) -> None:
        """SIGTERM, as Compose stops a service; returns once the process has exited."""
        self.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.process.wait(), 20)


@dataclass
class FrontDoor:
    """nginx on a local port in front of the replicas."""

    port: int
    directory: Path
    replicas: list[Replica]

    @property
    def http_url(self) -> str:
        """Base URL for HTTP and Socket.IO, through nginx."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """The native WebSocket endpoint, through nginx."""
        return f"ws://127.0.0.1:{self.port}/ws"

    def requests(self) -> list[Request]:
        """Every request nginx has logged so far (a request is logged when it ends)."""
        return read_access_log(self.directory)

    def replica_at(self, address: str) -> Replica:
        """The replica that nginx's access log calls `address`."""
        return next(replica for replica in self.replicas if replica.address == address)

    def sessions(self) -> dict[str, set[str]]:
        """Engine.IO session id → every replica address that served one of its requests."""
        served: dict[str, set[str]] = defaultdict(set)
        for request in self.requests():
            if request.path == "/socket.io/" and request.sid is not None:
                served[request.sid].add(request.upstream)
        return dict(served)


@pytest.fixture
async def front_door(amqp_url: str, prefix: str, tmp_path: Path) -> AsyncIterator[FrontDoor]:
    """Two replicas of this test's prefix (one writing dead letters, as in Compose), and nginx
    running compose/nginx.conf in front of them."""
    try:
        nginx = nginx_executable()
    except NginxMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    async with AsyncExitStack() as stack:
        replicas = []
        for service, writes_dead_letters in zip(REPLICAS, ("true", "false"), strict=True):
            port = free_port()
            process = await stack.enter_async_context(
                serve_process(
                    amqp_url,
                    prefix,
                    port,
                    log=tmp_path / f"{service}.log",
                    settings={"EVENTBRIDGE_DEAD_LETTER_WRITER": writes_dead_letters},
                )
            )
            replicas.append(Replica(service, port, process))
        await asyncio.gather(*(wait_ready(replica.port, 30) for replica in replicas))
        port = free_port()
        config = tmp_path / "nginx.conf"
        config.write_text(
            local_config(
                NGINX_CONF.read_text(encoding="utf-8"),
                upstream_ports={replica.service: replica.port for replica in replicas},
                listen_port=port,
                directory=tmp_path,
                # As root, nginx's workers would run as nobody, who cannot enter tmp_path.
                user="root" if os.geteuid() == 0 else None,
            ),
            encoding="utf-8",
        )
        await stack.enter_async_context(running_nginx(nginx, config, tmp_path, port))
        yield FrontDoor(port, tmp_path, replicas)


# --- clients ------------------------------------------------------------------------------------


class PollingWatcher(SocketIOWatcher):
    """A recording Socket.IO client whose HTTP requests go through the given aiohttp session."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        super().__init__()
        # Engine.IO's `http_session` option: the designed way to bring one's own session.
        self.client = socketio.AsyncClient(reconnection=False, http_session=http)
        self.client.on("*", self._record)


@asynccontextmanager
async def polling_session(
    door: FrontDoor, source: str, project: str
) -> AsyncIterator[SocketIOWatcher]:
    """A Socket.IO client on HTTP long-polling only, from the loopback address `source`,
    joined to `project`'s room through nginx."""
    posts: list[str] = []

    async def on_request_end(
        session: aiohttp.ClientSession,
        context: object,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        if params.method == "POST":
            posts.append(str(params.url))

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as http:
        watcher = PollingWatcher(http)
        await watcher.client.connect(door.http_url, transports=["polling"], wait_timeout=10)
        try:
            assert watcher.client.transport() == "polling"
            ack = await watcher.call("join-project", {"project_id": project}, timeout=10)
            assert ack["ok"], ack
            yield watcher
        finally:
            # After a client's CLOSE, python-engineio's server leaves the pending long-poll GET
            # open until its next ping (25 s), and its client waits for that GET. A browser's
            # client aborts its request instead: so does this one, once the CLOSE is posted.
            sent = len(posts)
            leaving = asyncio.create_task(watcher.client.disconnect())
            await wait_for(lambda: len(posts) > sent or leaving.done(), 10)
            # Its pending GET ends with the closed session: how the client's read loop takes
            # that (quietly, or as a timeout when the machine is busy) is the client's business.
            # On a busy machine that loop can drop the aborted response unreleased, and aiohttp
            # warns when it is freed: a leak of this test's client, not of the bridge.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Unclosed connection", ResourceWarning)
                await http.close()
                with contextlib.suppress(TimeoutError, aiohttp.ClientError):
                    await leaving
                gc.collect()


def session_id(watcher: SocketIOWatcher) -> str:
    """The Engine.IO session id of a connected client, as nginx logs it (`sid`)."""
    sid = watcher.client.eio.sid
    assert isinstance(sid, str)
    return sid


async def replica_of(door: FrontDoor, sid: str) -> str:
    """The one replica address that served the session `sid`, once nginx has logged it."""
    await wait_for(lambda: sid in door.sessions(), 10)
    (address,) = door.sessions()[sid]
    return address


@asynccontextmanager
async def subscribed_websocket(door: FrontDoor, project: str) -> AsyncIterator[WebSocketWatcher]:
    """A native WebSocket client subscribed to `project`'s room through nginx."""
    async with websockets.connect(door.ws_url, compression=None) as connection:
        watcher = WebSocketWatcher(connection)
        try:
            reply = await watcher.request(
                {"type": "subscribe", "project_id": project}, "subscribed"
            )
            assert reply["type"] == "subscribed", reply
            yield watcher
        finally:
            await watcher.close()


def sources(count: int, first: int = 2) -> list[str]:
    """`count` loopback addresses to connect from, as if from that many machines."""
    return [f"127.0.0.{host}" for host in range(first, first + count)]


async def publish_progress(publisher: EventPublisher, project: str, count: int) -> list[str]:
    """Publish `count` progress updates for `project`; their ids, in order."""
    published: list[PublishedEvent] = [
        await publisher.progress_update(project, agent_id="a", progress=step / count)
        for step in range(1, count + 1)
    ]
    return [event.id for event in published]


async def received_ids(watcher: SocketIOWatcher | WebSocketWatcher, count: int) -> list[str]:
    """The ids of the first `count` events a client received, in order, once they are there."""
    return [str(event["id"]) for event in await watcher.wait_for_events(count, timeout=15)]


async def wait_until(probe: Callable[[], Any], good: Callable[[Any], bool]) -> Any:
    """Ask the coroutine function `probe` until `good(answer)`, for 10 s at most."""
    answers: list[Any] = []

    async def ask() -> None:
        while True:
            answers.append(await probe())
            if good(answers[-1]):
                return
            await asyncio.sleep(0.1)

    try:
        await asyncio.wait_for(ask(), 10)
    except TimeoutError:
        raise AssertionError(f"still {answers[-1:]} after 10 s") from None
    return answers[-1]


# --- tests --------------------------------------------------------------------------------------


def test_the_upstreams_are_the_compose_replicas() -> None:
    """The file under test names exactly the replicas this module starts."""
    assert upstream_hosts(NGINX_CONF.read_text(encoding="utf-8")) == set(REPLICAS)


async def test_plain_http_reaches_a_replica(front_door: FrontDoor) -> None:
    """/ready, /health and the dashboard answer through nginx, from one of the two replicas."""
    async with httpx.AsyncClient(base_url=front_door.http_url, timeout=5) as http:
        ready = await http.get("/ready")
        health = await http.get("/health")
        dashboard = await http.get("/")
    assert ready.status_code == 200
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert dashboard.status_code == 200
    assert "text/html" in dashboard.headers["content-type"]
    replicas = {replica.address for replica in front_door.replicas}
    await wait_for(lambda: len(front_door.requests()) >= 3, 5)
    assert {request.upstream for request in front_door.requests()} <= replicas


async def test_official_socketio_client_gets_events_in_order_once_through_nginx(
    front_door: FrontDoor, publisher: EventPublisher
) -> None:
    """socket.io-client (polling, then the upgrade to WebSocket) joins through nginx and gets
    every event of its rooms once, in order; its whole session stays on one replica."""
    async with node_script("socketio_client.mjs", front_door.http_url, "p1", "11") as script:
        await script.wait_for_line(is_feed_join_reply, "joining")
        await script.wait_for_line(lambda line: "upgrade" in line, "upgrading")
        expected = await publish_mix(publisher, "p1")
        lines = await script.finish()
    assert [line for line in lines if "transport" in line or "upgrade" in line] == [
        {"transport": "polling"},
        {"upgrade": "websocket"},
    ]
    assert_socketio_events(lines, expected)
    acks = {line["ack"]: line["payload"] for line in lines if "ack" in line}
    assert_rising_offsets(
        [line["payload"] for line in lines if "event" in line and not is_presence(line)],
        acks["join-project"]["offset"],
    )
    # The upgrade request is logged when the WebSocket closes: wait for it.
    await wait_for(lambda: any(r.transport == "websocket" for r in front_door.requests()), 10)
    sessions = front_door.sessions()
    assert len(sessions) == 1, sessions
    assert [len(replicas) for replicas in sessions.values()] == [1]


async def test_native_websocket_clients_are_balanced_and_get_events_in_order(
    front_door: FrontDoor, publisher: EventPublisher
) -> None:
    """Native WebSocket connections through nginx spread over both replicas (no stickiness),
    and each subscriber gets every event of its room once, in order."""
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(subscribed_websocket(front_door, "p1"))
            for _ in range(4)
        ]
        counts = [await replica.connections() for replica in front_door.replicas]
        assert [count["websocket"] for count in counts] == [2, 2]
        ids = await publish_progress(publisher, "p1", 5)
        for client in clients:
            assert await received_ids(client, 5) == ids
            events = client.events()
            assert len(events) == 5
            assert_rising_offsets(events, -1)


async def test_long_polling_sessions_stay_on_their_replica(
    front_door: FrontDoor, publisher: EventPublisher
) -> None:
    """Socket.IO long-polling sessions from many addresses spread over both replicas, every
    request of a session reaches its replica (else: "Session ID unknown"), and all get events."""
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(polling_session(front_door, source, "p1"))
            for source in sources(16)
        ]
        ids = await publish_progress(publisher, "p1", 3)
        for client in clients:
            assert await received_ids(client, 3) == ids
            assert client.client.transport() == "polling"
        sids = {session_id(client) for client in clients}
    sessions = front_door.sessions()
    assert sids <= sessions.keys()
    assert {sid: len(sessions[sid]) for sid in sids} == dict.fromkeys(sids, 1)
    used = {address for sid in sids for address in sessions[sid]}
    assert used == {replica.address for replica in front_door.replicas}


@pytest.mark.serial  # stops a replica and waits on failover: run with no other test beside it
async def test_with_one_replica_stopped_new_connections_go_to_the_other(
    front_door: FrontDoor, publisher: EventPublisher
) -> None:
    """With one replica stopped, new Socket.IO sessions (even those that hashed to it) and new
    WebSocket connections all reach the other replica through nginx and get their events."""
    # Find addresses whose sessions the sticky upstream sends to the replica about to stop.
    before: dict[str, str] = {}
    for source in sources(8):
        async with polling_session(front_door, source, "p1") as client:
            sid = session_id(client)
        before[source] = await replica_of(front_door, sid)
    stopped, survivor = front_door.replicas
    moved = [source for source, address in before.items() if address == stopped.address]
    assert moved, f"no session went to {stopped.service}: {before}"
    await stopped.stop()

    async with AsyncExitStack() as stack:
        sessions = [
            await stack.enter_async_context(polling_session(front_door, source, "p1"))
            for source in before
        ]
        sockets = [
            await stack.enter_async_context(subscribed_websocket(front_door, "p1"))
            for _ in range(3)
        ]
        expected = {"socketio": len(sessions), "websocket": len(sockets)}
        await wait_until(survivor.connections, lambda counts: counts == expected)
        ids = await publish_progress(publisher, "p1", 3)
        receivers: list[SocketIOWatcher | WebSocketWatcher] = [*sessions, *sockets]
        for receiver in receivers:
            assert await received_ids(receiver, 3) == ids
        sids = [session_id(session) for session in sessions]
    served = front_door.sessions()
    assert {sid: served[sid] for sid in sids} == {sid: {survivor.address} for sid in sids}
