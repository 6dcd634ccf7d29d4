"""JWT authentication and room authorization on both transports, against a real bridge."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
import websockets
from cryptography.hazmat.primitives import serialization
from hypothesis import example, given
from hypothesis import strategies as st

from bridge.core.connection import ClientConnection
from bridge.settings import Settings
from producers import EventPublisher, PublishedEvent
from tests import tokens
from tests.helpers import wait_for
from tests.integration.clients import SocketIOWatcher, WebSocketWatcher
from tests.integration.conftest import EVENTBRIDGE, RunningBridge, running_bridge
from tests.integration.markers import events_before, publish_marker
from tests.integration.test_properties_transports import json_values, properties, ws_frames

RSA = tokens.rsa_pair()
EC = tokens.ec_pair()


def jwt_settings(build: Callable[..., Settings], **overrides: Any) -> Settings:
    """Settings of a bridge that requires HS256 tokens from the test issuer."""
    values: dict[str, Any] = {
        "auth": "jwt",
        "jwt_secret": tokens.SECRET,
        "jwt_issuer": tokens.ISSUER,
        "jwt_leeway": 1.0,
    }
    values.update(overrides)
    return build(**values)


@pytest.fixture
async def hs_bridge(bridge_settings: Callable[..., Settings]) -> AsyncIterator[RunningBridge]:
    """A bridge that requires HS256 tokens."""
    async with running_bridge(jwt_settings(bridge_settings)) as running:
        yield running


@pytest.fixture
async def rs_bridge(
    bridge_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[RunningBridge]:
    """A bridge that requires RS256 tokens (it holds only the RSA public key)."""
    key_file = tmp_path / "rsa.pem"
    key_file.write_bytes(RSA.public_pem)
    settings = jwt_settings(bridge_settings, jwt_secret=None, jwt_public_key_file=str(key_file))
    async with running_bridge(settings) as running:
        yield running


@dataclass
class Attempt:
    """What a client saw when it tried to connect with a token."""

    accepted: bool
    code: str | None = None
    message: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)


def observer_token(bridge: RunningBridge) -> str:
    """A token for every project, signed the way `bridge` verifies tokens."""
    key_file = bridge.settings.jwt_public_key_file
    if key_file is None:
        return tokens.hs256(projects="*")
    pair = RSA if Path(key_file).read_bytes() == RSA.public_pem else EC
    return pair.sign(projects="*")


def members_of_p1(bridge: RunningBridge) -> list[ClientConnection]:
    """The connections in room project:p1, as the bridge's hub holds them."""
    return [c for c in bridge.hub.connections() if "project:p1" in bridge.hub.rooms_of(c)]


@dataclass
class Observer:
    """An authorized WebSocket client in p1, and its connection in the bridge's hub."""

    watcher: WebSocketWatcher
    connection: ClientConnection

    async def publish(self, publisher: EventPublisher) -> tuple[PublishedEvent, PublishedEvent]:
        """Publish an event to p1, then a marker; return both once the observer has the
        marker, that is once the bridge has routed both to every member of p1."""
        sent = await publisher.agent_status("p1", agent_id="a", status="running")
        marker = await publish_marker(publisher, "p1")
        await events_before(self.watcher, marker)
        return sent, marker


@asynccontextmanager
async def observing(bridge: RunningBridge) -> AsyncIterator[Observer]:
    """An `Observer` for one attempt. When the block ends, every connection opened during it
    (the observer's and the attempt's) is gone from the hub, so the next attempt starts clean.
    """
    present = set(bridge.hub.connections())
    async with websockets.connect(f"{bridge.ws_url}/ws/ai/p1") as connection:
        watcher = WebSocketWatcher(connection)
        await watcher.send({"type": "auth", "token": observer_token(bridge)})
        await wait_for(lambda: bool(watcher.replies("subscribed")), 5)
        [own] = set(bridge.hub.connections()) - present
        try:
            yield Observer(watcher, own)
        finally:
            await watcher.close()
    await wait_for(lambda: set(bridge.hub.connections()) <= present, 5)


async def socketio_attempt(
    bridge: RunningBridge, publisher: EventPublisher, token: str | None
) -> Attempt:
    """Connect over Socket.IO with `token`, try to join p1, publish to p1, report what came
    before a marker published after it."""
    async with observing(bridge) as observer:
        watcher = SocketIOWatcher()
        refusals: list[Any] = []
        watcher.client.on("connect_error", refusals.append)
        auth = None if token is None else {"token": token}
        try:
            await watcher.client.connect(
                bridge.http_url, transports=["websocket"], auth=auth, wait_timeout=5
            )
        except socketio.exceptions.ConnectionError:
            # The client closed its connection before connect() raised: nothing can reach it
            # any more, so what it holds is final.
            await observer.publish(publisher)
            [refusal] = refusals
            return Attempt(False, refusal["data"]["code"], refusal["message"], watcher.events())
        try:
            ack = await watcher.call("join-project", "p1")
            sent, marker = await observer.publish(publisher)
            if ack["ok"]:
                events = await events_before(watcher, marker)
                assert [event["id"] for event in events] == [sent.id]
                return Attempt(True, events=events)
            # The hub has routed the event to the members of p1 (the observer has the marker
            # published after it), and the observer was the only one: nothing was queued for
            # this client. (Unlike a WebSocket reply, a Socket.IO acknowledgement is not queued
            # behind the client's events, so a round trip of its own would prove nothing more.)
            assert members_of_p1(bridge) == [observer.connection]
            return Attempt(True, ack["error"]["code"], ack["error"]["message"], watcher.events())
        finally:
            await watcher.client.disconnect()


async def websocket_attempt(
    bridge: RunningBridge, publisher: EventPublisher, token: str | None
) -> Attempt:
    """Open /ws/ai/p1 (which subscribes to p1 once authenticated), send `token`, publish to
    p1, report what came before a marker published after it."""
    async with (
        observing(bridge) as observer,
        websockets.connect(f"{bridge.ws_url}/ws/ai/p1") as connection,
    ):
        watcher = WebSocketWatcher(connection)
        await watcher.send({"type": "auth", "token": token})
        await wait_for(lambda: bool(watcher.received) or connection.close_code is not None, 5)
        first = watcher.received[0]
        accepted = first.get("type") == "authenticated"
        if accepted:  # then the answer to the subscription to p1
            answers = ("subscribed", "request_error")
            await wait_for(lambda: any(watcher.replies(kind) for kind in answers), 5)
        else:  # refused: the bridge closes the connection
            await wait_for(lambda: connection.close_code is not None, 5)
        sent, marker = await observer.publish(publisher)
        if accepted:
            if watcher.replies("subscribed"):
                events = await events_before(watcher, marker)
                assert [event["id"] for event in events] == [sent.id]
                await watcher.close()
                return Attempt(True, events=events, frames=watcher.received)
            # Not a member of p1 when the hub routed the event (the observer, which has the
            # marker, was the only one), and a reply is queued behind every frame queued
            # before it: once the pong is here, nothing more can be on its way.
            assert members_of_p1(bridge) == [observer.connection]
            assert await watcher.request({"type": "ping"}, "pong") == {"type": "pong"}
            [error] = watcher.replies("request_error")
            await watcher.close()
            return Attempt(
                True, error["code"], error["message"], watcher.events(), watcher.received
            )
        # Closed by the bridge: what the client holds is final.
        await watcher.close()
        assert connection.close_code == 4401
        assert connection.close_reason is not None
        assert connection.close_reason.startswith(first["code"])
        return Attempt(False, first["code"], first["message"], watcher.events(), watcher.received)


NOW = tokens.claims()["iat"]
STEP = {"workflow_id": "w1", "step_id": "s1", "changes": {"status": "running"}}
OTHER_SECRET = "another-secret-" + "y" * 40


@dataclass(frozen=True)
class Case:
    """One row of the token matrix: the token, and whether the connection is accepted; the
    error code is the refusal's, or, for an accepted connection, that of joining p1."""

    name: str
    token: Callable[[], str | None]
    accepted: bool
    code: str | None


MATRIX = [
    Case("valid", tokens.hs256, True, None),
    Case("expired", lambda: tokens.hs256(exp=NOW - 120), False, "token_expired"),
    Case("not yet valid", lambda: tokens.hs256(nbf=NOW + 600), False, "invalid_token"),
    Case("no exp", lambda: tokens.hs256(exp=None), False, "invalid_token"),
    Case("no aud", lambda: tokens.hs256(aud=None), False, "invalid_token"),
    Case("wrong aud", lambda: tokens.hs256(aud="another-service"), False, "invalid_token"),
    Case("no iss", lambda: tokens.hs256(iss=None), False, "invalid_token"),
    Case("wrong iss", lambda: tokens.hs256(iss="https://evil.example"), False, "invalid_token"),
    Case("alg none", tokens.unsigned, False, "invalid_token"),
    Case("tampered", lambda: tokens.tampered(tokens.hs256()), False, "invalid_token"),
    Case("other secret", lambda: tokens.hs256(secret=OTHER_SECRET), False, "invalid_token"),
    Case("RS256 on an HS256 bridge", RSA.sign, False, "invalid_token"),
    Case("garbage", lambda: "not.a.jwt", False, "invalid_token"),
    Case("no token", lambda: None, False, "auth_required"),
    Case("another project", lambda: tokens.hs256(projects=["p2"]), True, "forbidden"),
    Case("projects not a list", lambda: tokens.hs256(projects="p1"), False, "invalid_token"),
]


@pytest.mark.parametrize("case", MATRIX, ids=[case.name for case in MATRIX])
@pytest.mark.parametrize("transport", ["socketio", "websocket"])
async def test_token_matrix(
    hs_bridge: RunningBridge, publisher: EventPublisher, transport: str, case: Case
) -> None:
    """Each token is accepted or refused as it should be; a refused one joins no room and gets
    no event, and the reason is readable."""
    attempt = socketio_attempt if transport == "socketio" else websocket_attempt
    result = await attempt(hs_bridge, publisher, case.token())
    assert (result.accepted, result.code) == (case.accepted, case.code), result
    if case.code is not None:
        assert result.events == []
        assert result.message
        joined = [
            c for c in hs_bridge.hub.connections() if "project:p1" in hs_bridge.hub.rooms_of(c)
        ]
        assert joined == []


@pytest.mark.parametrize("transport", ["socketio", "websocket"])
async def test_rs256_bridge_refuses_hs_key_confusion_and_other_keys(
    rs_bridge: RunningBridge, publisher: EventPublisher, transport: str
) -> None:
    """An RS256 bridge accepts its key's tokens and refuses an HS256 token "signed" with its
    public key, an ES256 token and a token of another RSA key."""
    attempt = socketio_attempt if transport == "socketio" else websocket_attempt
    assert (await attempt(rs_bridge, publisher, RSA.sign())).accepted
    forgeries = {
        "hs256 with the public key": tokens.hmac_with(RSA.public_pem),
        "es256": EC.sign(),
        "another rsa key": tokens.rsa_pair().sign(),
        "tampered": tokens.tampered(RSA.sign()),
    }
    for name, token in forgeries.items():
        result = await attempt(rs_bridge, publisher, token)
        assert (result.accepted, result.code) == (False, "invalid_token"), name
        assert result.events == [], name


async def test_es256_bridge_accepts_its_key(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher, tmp_path: Path
) -> None:
    """A bridge given an EC P-256 public key accepts ES256 tokens of that key only."""
    key_file = tmp_path / "ec.pem"
    key_file.write_bytes(EC.public_pem)
    settings = jwt_settings(bridge_settings, jwt_secret=None, jwt_public_key_file=str(key_file))
    async with running_bridge(settings) as bridge:
        assert (await websocket_attempt(bridge, publisher, EC.sign())).accepted
        refused = await websocket_attempt(bridge, publisher, tokens.ec_pair().sign())
        assert (refused.accepted, refused.code) == (False, "invalid_token")


async def test_websocket_authenticated_reply_describes_the_grant(
    hs_bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """The first WebSocket reply says who the client is, what it may join and until when."""
    token = tokens.hs256(projects=["p1", "p2"], activity_feed=True, exp=NOW + 600)
    result = await websocket_attempt(hs_bridge, publisher, token)
    authenticated = result.frames[0]
    assert authenticated == {
        "type": "authenticated",
        "subject": "user-1",
        "projects": ["p1", "p2"],
        "activity_feed": True,
        "expires_at": NOW + 600 + 1.0,
        "anonymous": False,
    }


async def test_a_token_in_the_url_is_not_read(
    hs_bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """A token put in the URL's query instead of the auth payload/message is refused."""
    token = tokens.hs256()
    client = socketio.AsyncClient(reconnection=False)
    refusals: list[Any] = []
    client.on("connect_error", refusals.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            f"{hs_bridge.http_url}?token={token}", transports=["websocket"], wait_timeout=5
        )
    assert refusals[0]["data"]["code"] == "auth_required"
    url = f"{hs_bridge.ws_url}/ws/ai/p1?token={token}&access_token={token}"
    async with websockets.connect(url) as connection:
        await connection.send(json.dumps({"type": "subscribe", "project_id": "p1"}))
        first = json.loads(await connection.recv())
        assert first["code"] == "auth_required"
        with pytest.raises(websockets.ConnectionClosed):
            await connection.recv()
    assert connection.close_code == 4401


async def test_websocket_that_never_authenticates_is_closed(
    bridge_settings: Callable[..., Settings],
) -> None:
    """A WebSocket client that sends nothing is closed with 4401 after auth_timeout."""
    async with running_bridge(jwt_settings(bridge_settings, auth_timeout=0.5)) as bridge:
        async with websockets.connect(f"{bridge.ws_url}/ws") as connection:
            first = json.loads(await asyncio.wait_for(connection.recv(), 5))
            assert first["code"] == "auth_required"
            assert "within 0.5 s" in first["message"]
            with pytest.raises(websockets.ConnectionClosed):
                await connection.recv()
        assert connection.close_code == 4401


@pytest.mark.parametrize("transport", ["socketio", "websocket"])
async def test_rooms_and_client_events_are_authorized_per_room(
    hs_bridge: RunningBridge, publisher: EventPublisher, transport: str
) -> None:
    """A token for p1 (no feed) may join p1 only; the feed and p2 are forbidden, and stay so."""
    token = tokens.hs256(projects=["p1"])
    if transport == "socketio":
        watcher = SocketIOWatcher()
        await watcher.client.connect(
            hs_bridge.http_url, transports=["websocket"], auth={"token": token}
        )
        try:
            assert (await watcher.call("join-project", "p1"))["ok"]
            refused = [
                await watcher.call("join-project", {"project_id": "p2", "since": 0}),
                await watcher.call("join-activity-feed"),
                await watcher.call("step-updated", {"project_id": "p2", **STEP}),
                await watcher.call("new-activity", {"actor": "user-1", "action": "noted"}),
            ]
            assert [ack["error"]["code"] for ack in refused] == ["forbidden"] * 4
            allowed = await watcher.call("step-updated", {"project_id": "p1", **STEP})
            assert allowed["ok"], allowed
            await publisher.agent_status("p2", agent_id="a", status="running")
            # A p2 event, wrongly delivered, would arrive before this later one of p1.
            events = await events_before(watcher, await publish_marker(publisher, "p1"))
            assert [event["project_id"] for event in events] == ["p1"]
        finally:
            await watcher.client.disconnect()
        return
    async with websockets.connect(f"{hs_bridge.ws_url}/ws") as connection:
        ws = WebSocketWatcher(connection)
        assert (await ws.request({"type": "auth", "token": token}, "authenticated"))[
            "type"
        ] == "authenticated"
        everything = tokens.hs256(projects="*")
        answers = [
            await ws.request({"type": "subscribe", "project_id": "p2"}, "subscribed"),
            await ws.request({"type": "subscribe", "room": "activity-feed"}, "subscribed"),
            await ws.request({"type": "auth", "token": everything}, "authenticated"),
            await ws.request({"type": "subscribe", "room": "project:p2"}, "subscribed"),
        ]
        codes = [answer.get("code") for answer in answers]
        assert codes == ["forbidden", "forbidden", "already_authenticated", "forbidden"]
        joined = await ws.request({"type": "subscribe", "project_id": "p1"}, "subscribed")
        assert joined["type"] == "subscribed", joined
        await publisher.agent_status("p2", agent_id="a", status="running")
        # A p2 event, wrongly delivered, would arrive before this later one of p1.
        assert await events_before(ws, await publish_marker(publisher, "p1")) == []
        await ws.close()


@pytest.mark.parametrize("transport", ["socketio", "websocket"])
async def test_a_token_that_expires_ends_the_connection_with_a_reason(
    hs_bridge: RunningBridge, publisher: EventPublisher, transport: str
) -> None:
    """When the token expires (plus the 1 s leeway) the client is disconnected with
    `token_expired`, after receiving the events published before."""
    token = tokens.hs256(exp=unix_in(2))
    if transport == "socketio":
        watcher = SocketIOWatcher()
        await watcher.client.connect(
            hs_bridge.http_url, transports=["websocket"], auth={"token": token}
        )
        assert (await watcher.call("join-project", "p1"))["ok"]
        sent = await publisher.agent_status("p1", agent_id="a", status="running")
        await watcher.wait_for_events(1)
        await wait_for(lambda: not watcher.client.connected, 8)
        assert [event["id"] for event in watcher.events()] == [sent.id]
        assert ("bridge-disconnect", {"reason": "token_expired"}) in watcher.received
        return
    async with websockets.connect(f"{hs_bridge.ws_url}/ws/ai/p1") as connection:
        ws = WebSocketWatcher(connection)
        await ws.send({"type": "auth", "token": token})
        await wait_for(lambda: bool(ws.replies("subscribed")), 5)
        sent = await publisher.agent_status("p1", agent_id="a", status="running")
        await ws.wait_for_events(1)
        await wait_for(lambda: connection.close_code is not None, 8)
        assert connection.close_code == 4401
        assert (connection.close_reason or "").startswith("token_expired")
        assert [event["id"] for event in ws.events()] == [sent.id]


def unix_in(seconds: int) -> int:
    """Unix time `seconds` from now."""
    return int(tokens.claims()["iat"]) + seconds


async def test_project_list_needs_a_token_and_shows_only_granted_projects(
    hs_bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """/api/projects answers 401 without a valid token, and lists only the token's projects."""
    for project in ("p1", "p2", "p3"):
        await publisher.agent_status(project, agent_id="a", status="running")
    await wait_for(lambda: len(hs_bridge.hub.state.newest_offsets()) >= 3, 5)
    async with httpx.AsyncClient(base_url=hs_bridge.http_url) as http:
        anonymous = await http.get("/api/projects")
        assert anonymous.status_code == 401
        assert anonymous.json()["detail"]["code"] == "auth_required"
        forged = await http.get(
            "/api/projects", headers={"Authorization": f"Bearer {tokens.unsigned()}"}
        )
        assert forged.status_code == 401
        granted = await http.get(
            "/api/projects",
            headers={"Authorization": f"Bearer {tokens.hs256(projects=['p1', 'p3'])}"},
        )
    assert granted.status_code == 200
    assert sorted(item["project_id"] for item in granted.json()["projects"]) == ["p1", "p3"]


async def cli_token(*args: str, **env: str) -> tuple[int, str, str]:
    """Run `eventbridge token`; return its exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        *EVENTBRIDGE,
        "token",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "EVENTBRIDGE_JWT_ISSUER": tokens.ISSUER, **env},
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, out.decode().strip(), err.decode().strip()


async def test_tokens_signed_by_the_cli_are_accepted(
    hs_bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """`eventbridge token --project p1` (HS256 secret) opens p1, and only p1, on a real bridge."""
    status, token, _ = await cli_token("--project", "p1", EVENTBRIDGE_JWT_SECRET=tokens.SECRET)
    assert status == 0
    assert (await websocket_attempt(hs_bridge, publisher, token)).accepted
    status, other, _ = await cli_token("--project", "p2", EVENTBRIDGE_JWT_SECRET=tokens.SECRET)
    assert (await socketio_attempt(hs_bridge, publisher, other)).code == "forbidden"


async def test_cli_signs_with_a_private_key_for_an_rs256_bridge(
    rs_bridge: RunningBridge, publisher: EventPublisher, tmp_path: Path
) -> None:
    """`eventbridge token --private-key-file` signs RS256 tokens the RS256 bridge accepts."""
    key_file = tmp_path / "private.pem"
    key_file.write_bytes(
        RSA.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    status, token, _ = await cli_token("--all-projects", "--private-key-file", str(key_file))
    assert status == 0
    assert (await socketio_attempt(rs_bridge, publisher, token)).accepted


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--project", "p1"], {}, "no signing key: set EVENTBRIDGE_JWT_SECRET"),
        ([], {"EVENTBRIDGE_JWT_SECRET": tokens.SECRET}, "the token would grant nothing"),
        (["--project", "a b"], {"EVENTBRIDGE_JWT_SECRET": tokens.SECRET}, "invalid project id"),
        (["--project", "p", "--ttl", "0"], {"EVENTBRIDGE_JWT_SECRET": tokens.SECRET}, "--ttl"),
        (["--project", "p", "--private-key-file", "/nonexistent.pem"], {}, "cannot read"),
    ],
)
async def test_cli_token_errors_say_what_is_missing(
    args: list[str], env: dict[str, str], message: str
) -> None:
    """A token that cannot be signed as asked gets one line saying why, and exit status 2."""
    environment = {"EVENTBRIDGE_JWT_SECRET": "", **env}
    status, out, err = await cli_token(*args, **environment)
    assert (status, out) == (2, "")
    assert message in err


REFUSAL_CODES = {"auth_required", "invalid_token", "token_expired"}
token_values = st.one_of(
    st.text(max_size=120),
    json_values,
    st.sampled_from([tokens.unsigned(), tokens.tampered(tokens.hs256()), RSA.sign()]),
    st.lists(st.text(alphabet=tokens.BASE64URL, max_size=40), min_size=2, max_size=4).map(".".join),
)
first_frames = st.one_of(
    ws_frames,
    token_values.map(lambda token: json.dumps({"type": "auth", "token": token})),
)


@properties(max_examples=120)
@given(frame=first_frames)
async def test_any_first_websocket_frame_without_a_valid_token_is_refused(
    hs_bridge: RunningBridge, frame: str | bytes
) -> None:
    """Whatever a client sends first, unless it is a valid token, it gets one request_error
    (request "auth", a refusal code) and the close code 4401, and joins no room."""
    async with websockets.connect(f"{hs_bridge.ws_url}/ws/ai/p1") as connection:
        await connection.send(frame)
        answer = json.loads(await asyncio.wait_for(connection.recv(), 5))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(connection.recv(), 5)
    assert answer["type"] == "request_error", answer
    assert answer["code"] in REFUSAL_CODES, answer
    assert answer["request"] == "auth"
    assert connection.close_code == 4401
    assert not [c for c in hs_bridge.hub.connections() if hs_bridge.hub.rooms_of(c)]


@properties(max_examples=80)
@given(auth=st.one_of(json_values, token_values.map(lambda token: {"token": token})))
@example(auth=1.5)  # python-socketio's client encodes this CONNECT so no server can decode it
@example(auth=7)  # and this one as a CONNECT with no auth and an ack id of 7
async def test_any_socketio_auth_payload_without_a_valid_token_is_refused(
    hs_bridge: RunningBridge, auth: Any
) -> None:
    """Any Socket.IO auth payload but a valid token is refused with a readable code."""
    client = socketio.AsyncClient(reconnection=False)
    refusals: list[Any] = []
    client.on("connect_error", refusals.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            hs_bridge.http_url, transports=["websocket"], auth=auth, wait_timeout=5
        )
    assert refusals, auth
    assert refusals[0]["data"]["code"] in REFUSAL_CODES
    assert refusals[0]["message"]
