"""Properties of both client transports: whatever a client sends, it gets a defined answer.

Each test runs one real bridge and reuses one client connection across its examples (reopened
only if an example closed it, so every example starts from a working connection and a failure
reproduces on its own). After every example the connection must still be open and still
receive a freshly published event of a control room, so "no crash" is proved live, not assumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import socketio
import websockets
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from bridge.settings import Settings
from producers import EventPublisher
from tests.helpers import wait_for
from tests.integration.clients import SocketIOWatcher, WebSocketWatcher, socketio_client
from tests.integration.conftest import RunningBridge, running_bridge

# Hypothesis keeps caches in `.hypothesis/` under the working directory even without an example
# database; in the repository root that directory makes every later pytest run fail collection
# (this project replaces `norecursedirs` and turns warnings into errors). Keep it in /tmp.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "eventbridge-hypothesis")
)

CONTROL = "control-7f3a"
"""The project whose room each test's clients stay in; no strategy below generates this id."""

FRAME_LIMIT = 60_000
"""Generated frames stay under the bridge's `max_frame_bytes` (64 KiB): a larger one closes
the connection by design (1009), which is not what these properties are about."""


def properties(max_examples: int) -> Callable[[Any], Any]:
    """Hypothesis settings for a property run against one live bridge."""
    return settings(
        max_examples=max_examples,
        deadline=None,  # each example does network round trips
        database=None,  # no example database written into the repository
        suppress_health_check=[
            # One bridge and one connection serve every example on purpose (see the module).
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
        ],
    )


# -- strategies ------------------------------------------------------------------------------

texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", ".", "*", "#", "a.b", "ä", "☃", "\u202e", "\x00", "null", "[]"]),
    # A long text cheaply: a short unit repeated (hypothesis caps what it draws directly).
    st.builds(
        lambda unit, times: unit * times, st.text(min_size=1, max_size=3), st.integers(1, 1000)
    ),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),  # Python's json sends NaN and Infinity
    texts,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
nested = st.one_of(  # deep, but well within what a JSON parser follows
    st.integers(1, 200).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 200).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
)
extras = st.dictionaries(st.text(max_size=8), json_values, max_size=3)

project_ids = st.one_of(
    st.sampled_from(["p1", "p-2", "bad id!", "a.b", "a*", "#", "", "x" * 65, "project:p1", "ä"]),
    st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    texts,
    json_values,
)
rooms = st.one_of(
    st.sampled_from(
        ["activity-feed", "project:p1", "project:", "project:a.b", "activity_feed", "Activity-Feed"]
    ),
    texts,
    json_values,
)
resume = {
    "since": st.integers(-3, 1000) | st.integers() | json_values,
    "epoch": texts | json_values,
}


def merged(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the required fields, some optional ones, and random extra fields."""
    return st.builds(
        lambda fields, more: {**more, **fields},
        st.fixed_dictionaries(required, optional=optional),
        extras,
    )


# Native WebSocket: requests of real and fake types with real and random fields.
ws_types = st.one_of(
    st.sampled_from(["ping", "subscribe", "unsubscribe"]),
    st.sampled_from(
        ["pong", "subscribed", "request_error", "resync_required", "join-project", "PING"]
    ),
    texts,
    json_values,
)
ws_fields = {"project_id": project_ids, "room": rooms, **resume}
ws_requests = merged({"type": ws_types}, ws_fields) | merged({}, {"type": ws_types, **ws_fields})
ws_frames: st.SearchStrategy[str | bytes] = st.one_of(
    ws_requests.map(json.dumps),
    ws_requests.map(lambda request: json.dumps(request, ensure_ascii=False)),
    json_values.map(json.dumps),
    st.text(max_size=60),  # mostly not JSON at all
    nested,
    st.builds(
        lambda depth: json.dumps({"type": "subscribe", "project_id": [[[0]]] * depth}),
        st.integers(1, 50),
    ),
    st.binary(max_size=100),
).filter(lambda frame: len(frame if isinstance(frame, bytes) else frame.encode()) <= FRAME_LIMIT)

# Socket.IO: payloads for each contract event, built from its valid shape, plus anything.
field_values = st.text(min_size=1, max_size=20) | json_values
project_payloads = project_ids | merged({"project_id": project_ids}, resume) | json_values
feed_payloads = st.none() | merged({}, resume) | json_values
activity = merged(
    {"actor": field_values, "action": field_values},
    {
        "target": field_values,
        "activity_type": field_values,
        "priority": st.sampled_from(["low", "normal", "high", "critical"]) | json_values,
        "summary": field_values,
        "project_id": project_ids,
    },
)
step_updated = merged(
    {"project_id": project_ids, "workflow_id": field_values, "step_id": field_values},
    {"changes": extras | json_values, "user_id": field_values, "status": field_values},
)
step_completed = merged(
    {"project_id": project_ids, "workflow_id": field_values, "step_id": field_values},
    {"user_id": field_values, "result": json_values},
)
SOCKETIO_PAYLOADS: dict[str, st.SearchStrategy[Any]] = {
    "join-project": project_payloads,
    "leave-project": project_payloads,
    "join-activity-feed": feed_payloads,
    "leave-activity-feed": feed_payloads,
    "new-activity": activity | json_values,
    "step-updated": step_updated | json_values,
    "step-completed": step_completed | json_values,
}
"""Every client → server event of docs/clients.md ("Socket.IO"), with its payload strategy."""

RESERVED = {"connect", "disconnect", "*"}
"""Names python-socketio gives a meaning of its own; see the reserved-names test below."""

unknown_names = st.one_of(
    st.sampled_from(
        ["join_project", "JOIN-PROJECT", "join-project ", "message", "subscribe", "ping", ""]
    ),
    st.sampled_from(["activity-created", "resync-required", "bridge-disconnect", "agent_status"]),
    st.text(max_size=30),
).filter(lambda name: name not in SOCKETIO_PAYLOADS and name not in RESERVED)


@st.composite
def socketio_calls(draw: st.DrawFn) -> tuple[str, list[Any]]:
    """An event name (a contract one or an unknown one) and its arguments: usually one
    payload, sometimes none, sometimes several."""
    name = draw(st.sampled_from(sorted(SOCKETIO_PAYLOADS)) | unknown_names)
    payload = SOCKETIO_PAYLOADS.get(name, json_values)
    count = draw(st.sampled_from([1, 1, 1, 0, 2, 3]))
    args = [draw(payload) for _ in range(count)]
    # python-socketio sends the event as `42<id>[name, *args]`, JSON with ASCII escapes.
    assume(len(json.dumps([name, *args], separators=(",", ":"))) < FRAME_LIMIT)
    return name, args


# Raw Engine.IO / Socket.IO packets, after a valid handshake.
raw_packets: st.SearchStrategy[str | bytes] = st.one_of(
    st.builds(
        lambda digits, rest: digits + rest,
        st.text("0123456789", min_size=1, max_size=4),
        st.text(max_size=40),
    ),
    st.text(max_size=40).map(lambda rest: "42" + rest),
    json_values.map(lambda value: "42" + json.dumps(value)),
    st.builds(
        lambda ack_id, name, args: f"42{ack_id}{json.dumps([name, *args])}",
        st.integers(0, 10**12).map(str) | st.just(""),
        st.sampled_from(sorted(SOCKETIO_PAYLOADS)) | st.text(max_size=10),
        st.lists(json_values, max_size=3),
    ),
    st.integers(1, 30_000).map(lambda depth: "42" + "[" * depth),  # past the parser's depth
    st.builds(
        lambda kind, count, body: f"{kind}{count}-{body}",
        st.sampled_from(["45", "46"]),
        st.integers(0, 10**10),
        st.just('["x",{"_placeholder":true,"num":0}]') | st.text(max_size=20),
    ),
    st.just('451-["x",{"_placeholder":true,"num":0}]'),
    st.sampled_from(["0", "1", "2", "3", "4", "5", "6", "2probe", "40", "41", "40/admin,", "44"]),
    st.sampled_from(['42/nope,["join-project","p1"]', '43["x"]', '431["x"]', "42[]", "42{}"]),
    st.builds(lambda size: '42["join-project","' + "a" * size + '"]', st.integers(60_000, 80_000)),
    st.binary(max_size=100),
)


# -- sessions: one reused connection per test ------------------------------------------------


async def publish_and_receive(
    publisher: EventPublisher, received: Callable[[], list[dict[str, Any]]]
) -> None:
    """Publish a control event and wait until `received()` holds it."""
    sent = await publisher.agent_status(CONTROL, agent_id="probe", status="running")
    await wait_for(lambda: any(event["id"] == sent.id for event in received()), 5)


async def acknowledgement(
    client: SocketIOWatcher, name: str, args: list[Any], timeout: float = 5.0
) -> Any:
    """The server's acknowledgement of one event; fails the test, naming the event, if none
    comes within `timeout` seconds."""
    try:
        return await client.call(name, *args, timeout=timeout)
    except socketio.exceptions.TimeoutError:
        raise AssertionError(
            f"no acknowledgement within {timeout} s for {name!r} with {args!r:.300}"
        ) from None


class WebSocketSession:
    """One native WebSocket connection in the control room, reopened if an example closed it."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._watcher: WebSocketWatcher | None = None
        self._sentinels = itertools.count(1)

    async def open(self) -> WebSocketWatcher:
        """The connection, (re)opened and subscribed to the control room if needed."""
        if self._watcher is not None and self._watcher.connection.close_code is None:
            return self._watcher
        await self.close()
        connection = await websockets.connect(self._url, compression=None, max_size=2**22)
        self._watcher = WebSocketWatcher(connection)
        await self._watcher.request({"type": "subscribe", "project_id": CONTROL}, "subscribed")
        return self._watcher

    async def answers_to(self, frame: str | bytes) -> list[dict[str, Any]]:
        """Send `frame`, then a sentinel request whose answer is unique; return every answer
        that arrived between the two (events and notices are not answers)."""
        ws = await self.open()
        sentinel = f"project:sentinel-{next(self._sentinels)}"
        start = len(ws.received)
        await ws.connection.send(frame)
        await ws.send({"type": "unsubscribe", "room": sentinel})

        def sentinel_index() -> int | None:
            for index, answer in enumerate(ws.received[start:], start):
                if answer.get("type") == "unsubscribed" and answer.get("room") == sentinel:
                    return index
            return None

        await wait_for(
            lambda: sentinel_index() is not None or ws.connection.close_code is not None, 5
        )
        end = sentinel_index()
        assert end is not None, (
            f"the connection closed ({ws.connection.close_code} {ws.connection.close_reason!r}) "
            f"after the frame {frame!r:.200}"
        )
        answers: list[dict[str, Any]] = []
        for received in ws.received[start:end]:
            if not is_answer(received):
                continue
            previous = answers[-1] if answers else {}
            after_join = previous.get("type") == "subscribed" and previous.get("room") == (
                f"project:{received.get('project_id')}"
            )
            if received.get("type") == "presence" and after_join:
                continue  # the member list that follows a join is a notice (docs/clients.md)
            answers.append(received)
        return answers

    async def close(self) -> None:
        """Close the current connection, if any."""
        if self._watcher is not None:
            await self._watcher.close()
            self._watcher = None


class SocketIOSession:
    """One Socket.IO client in the control room, reconnected if an example disconnected it."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url
        self._watcher: SocketIOWatcher | None = None

    async def open(self) -> SocketIOWatcher:
        """The client, (re)connected and in the control room if needed."""
        if self._watcher is not None and self._watcher.client.connected:
            return self._watcher
        await self.close()
        self._watcher = SocketIOWatcher()
        await self._watcher.client.connect(self._base_url, transports=["websocket"], wait_timeout=5)
        assert (await self._watcher.call("join-project", CONTROL))["ok"] is True
        return self._watcher

    async def close(self) -> None:
        """Disconnect the current client, if any."""
        if self._watcher is not None:
            await self._watcher.client.disconnect()
            self._watcher = None


class RawSocketIOSession:
    """A raw WebSocket speaking Engine.IO v4 by hand, connected to namespace `/`; reopened if
    the bridge closed it (as it does, by design, for binary attachments)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._connection: websockets.ClientConnection | None = None
        self._drain: asyncio.Task[None] | None = None

    async def open(self) -> websockets.ClientConnection:
        """The connection, (re)opened after the Engine.IO and Socket.IO handshakes if needed."""
        if self._connection is not None and self._connection.close_code is None:
            return self._connection
        await self.close()
        connection = await websockets.connect(self._url, compression=None, max_size=2**22)
        opened = await asyncio.wait_for(connection.recv(), 5)
        assert isinstance(opened, str)
        assert opened.startswith("0{")
        await connection.send("40")
        connected = await asyncio.wait_for(connection.recv(), 5)
        assert isinstance(connected, str)
        assert connected.startswith("40{")
        self._connection = connection
        self._drain = asyncio.create_task(self._answer_pings(connection))
        return connection

    @staticmethod
    async def _answer_pings(connection: websockets.ClientConnection) -> None:
        # Read everything the bridge sends (so its writes never back up) and answer its pings.
        with contextlib.suppress(websockets.ConnectionClosed):
            async for packet in connection:
                if packet == "2":
                    await connection.send("3")

    async def close(self) -> None:
        """Close the current connection, if any."""
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
        if self._drain is not None:
            await self._drain
            self._drain = None


# -- what every answer must look like --------------------------------------------------------

ANSWER_TYPES = {"pong", "subscribed", "unsubscribed", "request_error"}


NOTICES = {"resync_required", "presence_joined", "presence_updated", "presence_left"}
"""Native WebSocket notices: never answers (the member list a join brings, type `presence` as
the answer to a `presence` request, is told apart in `answers_to`)."""


def is_answer(frame: dict[str, Any]) -> bool:
    """Whether a frame answers a request (events carry `id` and `offset`; notices are not
    answers)."""
    return not ("id" in frame and "offset" in frame) and frame.get("type") not in NOTICES


def parsed_request(frame: str | bytes) -> dict[str, Any] | None:
    """The request a text frame holds if it is a JSON object, else None."""
    if isinstance(frame, bytes):
        return None
    try:
        request = json.loads(frame)
    except (ValueError, RecursionError):  # json raises RecursionError for very deep nesting
        return None
    return request if isinstance(request, dict) else None


def check_websocket_answer(answer: dict[str, Any], frame: str | bytes) -> None:
    """A reply the request's type asks for, or a request_error of the contract's shape."""
    request = parsed_request(frame)
    request_type = request.get("type") if request is not None else None
    assert answer.get("type") in ANSWER_TYPES, answer
    if answer["type"] == "request_error":
        assert set(answer) == {"type", "code", "message", "request"}, answer
        assert isinstance(answer["code"], str)
        assert answer["code"]
        assert isinstance(answer["message"], str)
        assert answer["message"]
        assert answer["request"] == (request_type if isinstance(request_type, str) else None)
        return
    assert request_type == {"pong": "ping", "subscribed": "subscribe"}.get(
        answer["type"], "unsubscribe"
    ), (answer, frame)
    if answer["type"] == "pong":
        assert answer == {"type": "pong"}
    elif answer["type"] == "subscribed":
        assert set(answer) == {"type", "room", "epoch", "offset"}, answer
        assert isinstance(answer["room"], str)
        assert isinstance(answer["epoch"], str)
        assert isinstance(answer["offset"], int)
    else:
        assert set(answer) == {"type", "room"}, answer
        assert isinstance(answer["room"], str)


def check_socketio_ack(name: str, args: list[Any], ack: Any) -> None:
    """`{"ok": true, ...}` with the contract's fields for that event, or
    `{"ok": false, "error": {"code", "message"}}`; unknown events are never ok."""
    assert isinstance(ack, dict), ack
    if ack.get("ok") is False:
        assert set(ack) == {"ok", "error"}, ack
        assert isinstance(ack["error"], dict)
        assert set(ack["error"]) == {"code", "message"}, ack
        assert isinstance(ack["error"]["code"], str)
        assert ack["error"]["code"]
        assert isinstance(ack["error"]["message"], str)
        assert ack["error"]["message"]
        if name not in SOCKETIO_PAYLOADS:
            assert ack["error"]["code"] == "unknown_event", ack
        return
    assert ack.get("ok") is True, ack
    assert name in SOCKETIO_PAYLOADS, (name, ack)
    assert len(args) <= 1, (name, args, ack)
    if name.startswith("join-"):
        assert set(ack) == {"ok", "room", "epoch", "offset"}, ack
        assert isinstance(ack["epoch"], str)
        assert isinstance(ack["offset"], int)
    elif name.startswith("leave-"):
        assert set(ack) == {"ok", "room"}, ack
    else:
        assert set(ack) == {"ok", "id"}, ack
        assert isinstance(ack["id"], str)
        assert ack["id"]
    if "room" in ack:
        assert ack["room"] == "activity-feed" or ack["room"].startswith("project:"), ack


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
async def fast_bridge(bridge_settings: Callable[..., Settings]) -> AsyncIterator[RunningBridge]:
    """A bridge whose per-connection rate limit is far above what hypothesis sends (hundreds of
    frames a second on one connection, which the default limit rightly refuses)."""
    async with running_bridge(bridge_settings(max_messages_per_second=100_000.0)) as running:
        yield running


@pytest.fixture
async def ws_session(fast_bridge: RunningBridge) -> AsyncIterator[WebSocketSession]:
    """The native WebSocket connection the examples share."""
    session = WebSocketSession(f"{fast_bridge.ws_url}/ws")
    try:
        yield session
    finally:
        await session.close()


@pytest.fixture
async def sio_session(fast_bridge: RunningBridge) -> AsyncIterator[SocketIOSession]:
    """The Socket.IO client the examples share."""
    session = SocketIOSession(fast_bridge.http_url)
    try:
        yield session
    finally:
        await session.close()


@pytest.fixture
async def raw_session(fast_bridge: RunningBridge) -> AsyncIterator[RawSocketIOSession]:
    """The raw Engine.IO connection the examples share."""
    session = RawSocketIOSession(f"{fast_bridge.ws_url}/socket.io/?EIO=4&transport=websocket")
    try:
        yield session
    finally:
        await session.close()


# -- properties ------------------------------------------------------------------------------


@properties(max_examples=150)
@given(frame=ws_frames)
@example(frame='{"project_id": "p", "type": "subscribe"}')  # answered, then told the members
async def test_every_websocket_frame_gets_exactly_one_defined_answer(
    ws_session: WebSocketSession, publisher: EventPublisher, frame: str | bytes
) -> None:
    """Any text or binary frame gets exactly one answer (a reply or a request_error of the
    contract's shape); the connection stays open and still receives published events."""
    answers = await ws_session.answers_to(frame)
    assert len(answers) == 1, (frame, answers)
    check_websocket_answer(answers[0], frame)
    ws = await ws_session.open()
    if answers[0]["type"] == "subscribed" and answers[0]["room"] != f"project:{CONTROL}":
        # Leave again, so that examples never add up to the per-connection room limit.
        await ws.request({"type": "unsubscribe", "room": answers[0]["room"]}, "unsubscribed")
    await publish_and_receive(publisher, ws.events)


@properties(max_examples=200)
@given(call=socketio_calls())
async def test_every_socketio_event_is_acknowledged_in_the_contract_shape(
    sio_session: SocketIOSession, publisher: EventPublisher, call: tuple[str, list[Any]]
) -> None:
    """Any payload for any contract event, and any unknown event, is acked {ok: true, ...} or
    {ok: false, error: {code, message}}; the client stays connected and keeps receiving events."""
    name, args = call
    client = await sio_session.open()
    ack = await acknowledgement(client, name, args)
    check_socketio_ack(name, args, ack)
    assert client.client.connected
    if ack["ok"] and ack.get("room") not in (None, f"project:{CONTROL}"):
        # Leave again, so that examples never add up to the per-connection room limit.
        if ack["room"] == "activity-feed":
            await client.call("leave-activity-feed")
        else:
            await client.call("leave-project", ack["room"].removeprefix("project:"))
    await publish_and_receive(publisher, client.events)


@properties(max_examples=100)
@given(packets=st.lists(raw_packets, min_size=1, max_size=3))
async def test_malformed_socketio_packets_do_not_hurt_the_server(
    fast_bridge: RunningBridge,
    sio_session: SocketIOSession,
    raw_session: RawSocketIOSession,
    publisher: EventPublisher,
    packets: list[str | bytes],
) -> None:
    """Malformed Engine.IO/Socket.IO packets (bad JSON, unknown types, attachments, binary,
    oversized) never take the server down: /health answers and other clients get events."""
    other = await sio_session.open()
    raw = await raw_session.open()
    for packet in packets:
        try:
            await raw.send(packet)
        except websockets.ConnectionClosed:
            break  # the bridge closed it (attachments, oversized frames): a defined response
    async with httpx.AsyncClient() as http:
        health = await http.get(f"{fast_bridge.http_url}/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert other.client.connected
    await publish_and_receive(publisher, other.events)


# -- the bugs the properties found, each as its smallest example -------------------------------


async def test_websocket_deeply_nested_frame_gets_a_request_error(
    fast_bridge: RunningBridge, ws_session: WebSocketSession
) -> None:
    """A text frame nested deeper than the JSON parser follows gets a request_error; the
    connection stays open."""
    frame = "[" * 50_000  # 50 kB, within the frame limit
    answers = await ws_session.answers_to(frame)
    assert len(answers) == 1, answers
    check_websocket_answer(answers[0], frame)


async def test_a_project_id_with_a_trailing_newline_is_refused_on_both_transports(
    fast_bridge: RunningBridge, ws_session: WebSocketSession
) -> None:
    """`"p1\\n"` is not a contract project id (1-64 of [A-Za-z0-9_-]): both transports refuse
    it with invalid_project_id instead of joining room "project:p1\\n"."""
    frame = json.dumps({"type": "subscribe", "project_id": "p1\n"})
    [answer] = await ws_session.answers_to(frame)
    assert answer["type"] == "request_error", answer
    assert answer["code"] == "invalid_project_id"
    async with socketio_client(fast_bridge.http_url) as client:
        ack = await client.call("join-project", "p1\n")
    assert ack["ok"] is False, ack
    assert ack["error"]["code"] == "invalid_project_id"


@pytest.mark.parametrize(
    ("name", "args"),
    [("connect", [{}]), ("connect", []), ("disconnect", []), ("*", [])],
)
async def test_socketio_reserved_event_names_are_unknown_events(
    fast_bridge: RunningBridge, publisher: EventPublisher, name: str, args: list[Any]
) -> None:
    """A client event named connect, disconnect or * is acked unknown_event like any other
    unknown name: it neither re-runs the connection's lifecycle nor leaks a connection."""
    async with socketio_client(fast_bridge.http_url) as client:
        assert (await client.call("join-project", CONTROL))["ok"] is True
        ack = await acknowledgement(client, name, args, timeout=3)
        check_socketio_ack(name, args, ack)
        await publish_and_receive(publisher, client.events)
        assert (await client.call("join-project", "p1"))["ok"] is True
        assert fast_bridge.hub.counts()["socketio"] == 1
    await wait_for(lambda: fast_bridge.hub.counts()["socketio"] == 0, 5)


async def test_a_client_event_with_a_lone_surrogate_is_acknowledged(
    fast_bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """new-activity whose extra field holds a lone surrogate (JSON "\\ud800", which browsers'
    JSON.stringify emits) is acked, ok or not, instead of never."""
    async with socketio_client(fast_bridge.http_url) as client:
        payload = {"actor": "a", "action": "b", "note": "\ud800"}
        ack = await acknowledgement(client, "new-activity", [payload], timeout=3)
        check_socketio_ack("new-activity", [payload], ack)
