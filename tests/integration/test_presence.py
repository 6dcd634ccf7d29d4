"""Presence across two replicas on one broker, on both transports and over HTTP: members and
their counts, leaving within a second, ephemeral state kept out of the log, refusals, a
replica that starts late, one cut off from the broker, and one killed with 50 members on it."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import httpx
import pytest
from yarl import URL

from bridge.settings import Settings
from producers import EventPublisher
from schemas.presence import SioPresenceAck, SioPresenceUpdateAck, WsPresenceState
from tests import tokens
from tests.helpers import wait_for
from tests.integration.clients import SocketIOWatcher, WebSocketWatcher
from tests.integration.conftest import (
    RunningBridge,
    free_port,
    running_bridge,
    serve_process,
    wait_ready,
)
from tests.integration.presence_clients import (
    check_contract,
    members_seen,
    presence_messages,
    sio_member,
    states_seen,
    token_of,
    ws_member,
)
from tests.integration.test_tail_status import tail
from tests.proxy import TcpProxy

JWT = {
    "auth": "jwt",
    "jwt_secret": tokens.SECRET,
    "jwt_issuer": tokens.ISSUER,
    "presence_heartbeat": 0.5,
    "presence_expiry": 2.0,
}


@pytest.fixture
async def replicas(bridge_settings: Callable[..., Settings]) -> AsyncIterator[list[RunningBridge]]:
    """Two replicas on this test's prefix, requiring tokens."""
    async with (
        running_bridge(bridge_settings(**JWT)) as first,
        running_bridge(bridge_settings(**JWT)) as second,
    ):
        yield [first, second]


async def http_presence(bridge: RunningBridge, project: str, token: str | None) -> httpx.Response:
    """`GET /api/projects/<project>/presence` with a bearer token (or none)."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient() as http:
        return await http.get(f"{bridge.http_url}/api/projects/{project}/presence", headers=headers)


async def test_members_and_counts_across_replicas_and_leaving_within_a_second(
    replicas: list[RunningBridge],
) -> None:
    """alice (two tabs) and bob spread over two replicas and both transports: everyone sees
    {alice: 2, bob: 1}; alice closing one tab leaves her present with one, closing the other
    tells everyone `presence-left` within a second."""
    a, b = replicas
    async with AsyncExitStack() as stack:
        tab1 = await stack.enter_async_context(sio_member(a.http_url, "alice"))
        tab2 = await stack.enter_async_context(ws_member(b.ws_url, "alice"))
        bob = await stack.enter_async_context(sio_member(b.http_url, "bob"))
        carol = await stack.enter_async_context(ws_member(a.ws_url, "carol"))
        watchers: list[SocketIOWatcher | WebSocketWatcher] = [tab1, tab2, bob, carol]
        everyone = {"alice": 2, "bob": 1, "carol": 1}
        await wait_for(lambda: all(members_seen(w) == everyone for w in watchers), 5)
        for bridge in replicas:
            response = await http_presence(bridge, "p1", token_of("dave"))
            assert response.status_code == 200
            listed = {m["user_id"]: m["connections"] for m in response.json()["members"]}
            assert listed == everyone
        ack = await bob.call("presence", {"project_id": "p1"})
        assert ack["ok"]
        assert {m["user_id"] for m in ack["members"]} == set(everyone)
        SioPresenceAck.model_validate(ack)

        await tab1.client.disconnect()
        one_tab = {"alice": 1, "bob": 1, "carol": 1}
        await wait_for(lambda: all(members_seen(w) == one_tab for w in (tab2, bob, carol)), 5)
        await tab2.close()
        closed = time.monotonic()
        await wait_for(lambda: all("alice" not in members_seen(w) for w in (bob, carol)), 1.0)
        print(f"  alice left everywhere {time.monotonic() - closed:.3f} s after her last tab")
        left = [p for w in (bob, carol) for n, p in presence_messages(w) if n == "presence_left"]
        assert [payload["user_id"] for payload in left] == ["alice", "alice"]
        assert all(check_contract(watcher) > 0 for watcher in watchers)


async def test_state_reaches_both_transports_and_stays_out_of_the_log(
    replicas: list[RunningBridge], publisher: EventPublisher, amqp_url: str, prefix: str
) -> None:
    """A state set over Socket.IO reaches a WebSocket member on the other replica and back;
    `eventbridge tail` of the whole log shows none of it."""
    a, b = replicas
    async with sio_member(a.http_url, "alice") as alice, ws_member(b.ws_url, "bob") as bob:
        ack = await alice.call("presence-update", {"project_id": "p1", "state": {"editing": "s3"}})
        assert ack == {"ok": True, "project_id": "p1", "state": {"editing": "s3"}}
        await wait_for(lambda: states_seen(bob).get("alice") == {"editing": "s3"}, 2)
        reply = await bob.request(
            {"type": "presence_update", "project_id": "p1", "state": {"viewing": "log"}},
            "presence_state",
        )
        assert reply == {"type": "presence_state", "project_id": "p1", "state": {"viewing": "log"}}
        WsPresenceState.model_validate(reply)
        SioPresenceUpdateAck.model_validate(ack)
        await wait_for(lambda: states_seen(alice).get("bob") == {"viewing": "log"}, 2)
        assert check_contract(alice) > 0
        assert check_contract(bob) > 0
        await publisher.publish(
            "deployment_log",
            {"deployment_id": "d", "stream": "stdout", "line": "end"},
            project_id="p1",
        )
        async with tail(amqp_url, prefix, "--since", "offset:0", "--json") as running:
            lines = await running.wait_lines(1)
            assert await running.stop() == 0
        assert len(running.lines) == 1
        assert '"deployment_log"' in lines[0]
        assert not any("editing" in line or "presence" in line for line in running.lines)


async def test_refusals_keep_the_connection_open(
    replicas: list[RunningBridge],
) -> None:
    """Presence of a project the token does not grant is `forbidden` (HTTP 403, 401 without a
    token); an over-size state is `too_large`, too frequent ones `rate_limited`, and the
    connection stays open on both transports."""
    a, b = replicas
    async with sio_member(a.http_url, "alice") as alice, ws_member(b.ws_url, "bob") as bob:
        ack = await alice.call("presence", "p2")
        assert ack["error"]["code"] == "forbidden"
        reply = await bob.request({"type": "presence", "project_id": "p2"}, "presence")
        assert reply["type"] == "request_error"
        assert reply["code"] == "forbidden"
        assert (await http_presence(a, "p2", token_of("x"))).status_code == 403
        assert (await http_presence(a, "p1", None)).status_code == 401

        big = {"text": "x" * 1100}
        ack = await alice.call("presence-update", {"project_id": "p1", "state": big})
        assert ack["error"]["code"] == "too_large"
        reply = await bob.request(
            {"type": "presence_update", "project_id": "p1", "state": big}, "presence_state"
        )
        assert reply["code"] == "too_large"
        sio_codes = [
            (await alice.call("presence-update", {"project_id": "p1", "state": {"n": n}}))
            .get("error", {})
            .get("code")
            for n in range(8)
        ]
        assert sio_codes[:5] == [None] * 5
        assert "rate_limited" in sio_codes[5:]
        for n in range(8):
            await bob.send({"type": "presence_update", "project_id": "p1", "state": {"n": n}})
        await wait_for(lambda: bool(bob.replies("request_error")[2:]))
        assert bob.replies("request_error")[-1]["code"] == "rate_limited"
        assert (await alice.call("presence", "p1"))["ok"]
        assert (await bob.request({"type": "ping"}, "pong"))["type"] == "pong"


async def test_the_activity_feed_has_no_presence_and_a_setting_turns_it_off(
    bridge_settings: Callable[..., Settings],
) -> None:
    """Joining the activity feed brings no presence; with presence off, a project join brings
    none, the requests are unknown and the HTTP endpoint answers 404."""
    async with running_bridge(bridge_settings(presence=False)) as off:
        watcher = SocketIOWatcher()
        await watcher.client.connect(off.http_url, transports=["websocket"], wait_timeout=5)
        try:
            assert (await watcher.call("join-project", "p1"))["ok"]
            assert (await watcher.call("presence", "p1"))["error"]["code"] == "unknown_event"
            assert (await http_presence(off, "p1", None)).status_code == 404
            assert presence_messages(watcher) == []
        finally:
            await watcher.client.disconnect()
    async with running_bridge(bridge_settings()) as on:
        watcher = SocketIOWatcher()
        await watcher.client.connect(on.http_url, transports=["websocket"], wait_timeout=5)
        try:
            assert (await watcher.call("join-activity-feed"))["ok"]
            assert (await watcher.call("join-project", "p1"))["ok"]
            await wait_for(lambda: bool(presence_messages(watcher)))
            assert [name for name, _ in presence_messages(watcher)] == ["presence"]
        finally:
            await watcher.client.disconnect()


async def test_a_starting_replica_knows_the_members_before_it_answers(
    bridge_settings: Callable[..., Settings],
) -> None:
    """A replica started while members are on another answers its first presence request
    with them."""
    async with (
        running_bridge(bridge_settings(**JWT)) as a,
        sio_member(a.http_url, "alice"),
        running_bridge(bridge_settings(**JWT)) as b,
    ):
        response = await http_presence(b, "p1", token_of("dave"))
        assert [m["user_id"] for m in response.json()["members"]] == ["alice"]


SUBPROCESS = {
    "EVENTBRIDGE_AUTH": "jwt",
    "EVENTBRIDGE_JWT_SECRET": tokens.SECRET,
    "EVENTBRIDGE_JWT_ISSUER": tokens.ISSUER,
    "EVENTBRIDGE_PRESENCE_HEARTBEAT": "0.5",
    "EVENTBRIDGE_PRESENCE_EXPIRY": "2",
}


async def test_members_of_a_killed_replica_expire_and_come_back(amqp_url: str, prefix: str) -> None:
    """A replica SIGKILLed with 50 members: they leave the other replica's presence within the
    expiry (2 s, checked every 0.5 s), and are present again once their clients reconnect
    there."""
    ports = [free_port(), free_port()]
    async with (
        serve_process(amqp_url, prefix, ports[0], settings=SUBPROCESS) as doomed,
        serve_process(amqp_url, prefix, ports[1], settings=SUBPROCESS),
    ):
        await asyncio.gather(wait_ready(ports[0]), wait_ready(ports[1]))
        urls = [f"ws://127.0.0.1:{port}" for port in ports]
        users = [f"user-{number}" for number in range(50)]
        async with AsyncExitStack() as stack:
            observer = await stack.enter_async_context(ws_member(urls[1], "observer"))
            members = await asyncio.gather(
                *(stack.enter_async_context(ws_member(urls[0], user)) for user in users)
            )
            await wait_for(lambda: len(members_seen(observer)) == 51, 5)
            doomed.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            await wait_for(lambda: members_seen(observer) == {"observer": 1}, 2.0 + 0.5 + 1.0)
            expired_after = time.monotonic() - killed
            print(f"  50 members of the killed replica expired after {expired_after:.2f} s")
            for member in members:
                await member.close()
            async with AsyncExitStack() as again:
                await asyncio.gather(
                    *(again.enter_async_context(ws_member(urls[1], user)) for user in users)
                )
                await wait_for(lambda: len(members_seen(observer)) == 51, 5)


async def test_a_replica_cut_off_from_the_broker_expires_then_comes_back(
    amqp_url: str, bridge_settings: Callable[..., Settings]
) -> None:
    """A replica whose broker link is cut for longer than the expiry: its member leaves the
    other replica's presence, and once the link is back both replicas see each other's members
    again, including one that joined meanwhile."""
    broker = URL(amqp_url)
    async with TcpProxy(broker.host or "127.0.0.1", broker.port or 5672) as proxy:
        via_proxy = str(broker.with_port(proxy.port))
        cut_off = bridge_settings(**JWT, amqp_url=via_proxy, heartbeat_timeout=6)
        async with (
            running_bridge(cut_off) as a,
            running_bridge(bridge_settings(**JWT)) as b,
            ws_member(a.ws_url, "alice") as alice,
            ws_member(b.ws_url, "bob") as bob,
        ):
            await wait_for(lambda: members_seen(bob) == {"alice": 1, "bob": 1}, 5)
            await proxy.cut()
            await wait_for(lambda: members_seen(bob) == {"bob": 1}, 2.0 + 0.5 + 2.0)
            async with ws_member(b.ws_url, "carol"):
                await proxy.restore()
                everyone = {"alice": 1, "bob": 1, "carol": 1}
                await wait_for(lambda: members_seen(alice) == everyone, 15)
                await wait_for(lambda: members_seen(bob) == everyone, 5)
