"""The official JavaScript clients against a live bridge: `socket.io-client` and `WebSocket`.

The scripts in tests/js are also the examples of docs/clients.md. These tests run them with
`node`, publish events once the script has joined, and check that the script printed exactly
those events, in order, under the contract's names; against a bridge that requires tokens, the
scripts get theirs from EVENTBRIDGE_TOKEN. They need Node.js 20+ and `npm ci --prefix tests/js`;
without them they fail, saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bridge.settings import Settings
from producers import EventPublisher, PublishedEvent
from tests import tokens
from tests.helpers import wait_for
from tests.integration.conftest import RunningBridge, running_bridge

JS_DIR = Path(__file__).resolve().parents[1] / "js"
INSTALL_COMMAND = "npm ci --prefix tests/js"
SCRIPT_TIMEOUT_MS = 15_000
"""How long a script waits for its events before it gives up and exits 1."""
WAIT_SECONDS = 25.0
"""How long a test waits on a script: longer than its default limit, so the script says why."""
RESTART_TIMEOUT_MS = 60_000
"""A script's limit when the bridge restarts under it: reconnecting takes a few backoff rounds."""

Line = dict[str, Any]


def node_executable() -> str:
    """The `node` to run, failing the test with what to do when Node or the packages are missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            f"node is not on PATH: install Node.js 20 or later, then run `{INSTALL_COMMAND}`.",
            pytrace=False,
        )
    if not (JS_DIR / "node_modules" / "socket.io-client" / "package.json").is_file():
        pytest.fail(
            f"tests/js/node_modules is missing socket.io-client: run `{INSTALL_COMMAND}`.",
            pytrace=False,
        )
    return node


async def websocket_flags(node: str) -> list[str]:
    """The flag Node 20 and 21 need for a global `WebSocket`; later versions have it built in."""
    probe = await asyncio.create_subprocess_exec(
        node, "-p", "process.versions.node", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(probe.communicate(), 10)
    major = int(out.decode().split(".")[0])
    return ["--experimental-websocket"] if major < 22 else []


class NodeScript:
    """A running client script; its stdout JSON lines are collected as they arrive."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name
        self.lines: list[Line] = []
        self.stderr = ""
        self._readers = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]

    async def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            text = raw.decode().strip()
            try:
                self.lines.append(json.loads(text))
            except ValueError as exc:
                raise AssertionError(
                    f"{self.name} printed a line that is not JSON: {text}"
                ) from exc

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self.stderr = (await self.process.stderr.read()).decode()

    def _describe(self) -> str:
        return f"{self.name} printed {self.lines} and wrote to stderr: {self.stderr!r}"

    async def wait_for_line(self, wanted: Callable[[Line], bool], what: str) -> Line:
        """Wait until the script printed a line that `wanted` accepts; fail if it exits first."""
        return (await self.wait_for_lines(wanted, what, 1))[0]

    async def wait_for_lines(
        self, wanted: Callable[[Line], bool], what: str, count: int
    ) -> list[Line]:
        """Wait for `count` lines that `wanted` accepts; fail if the script exits first."""
        found: list[Line] = []

        def seen() -> bool:
            found[:] = [line for line in self.lines if wanted(line)]
            return len(found) >= count or self.process.returncode is not None

        await wait_for(seen, WAIT_SECONDS)
        if len(found) < count:
            await self.stop()
            raise AssertionError(f"{self.name} exited before {what}: {self._describe()}")
        return found

    async def finish(self, returncode: int = 0) -> list[Line]:
        """Wait for the script to exit on its own with `returncode` (success unless told
        otherwise); return every line."""
        try:
            await asyncio.wait_for(self.process.wait(), WAIT_SECONDS)
        except TimeoutError as exc:
            await self.stop()
            raise AssertionError(f"{self.name} did not exit: {self._describe()}") from exc
        await asyncio.gather(*self._readers)
        assert self.process.returncode == returncode, (
            f"{self.name} exited {self.process.returncode}: {self._describe()}"
        )
        return self.lines

    async def stop(self) -> None:
        """Kill the script if it still runs, and collect its output."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()
        await asyncio.gather(*self._readers, return_exceptions=True)


async def start_script(
    script: str, *args: str, timeout_ms: int = SCRIPT_TIMEOUT_MS, token: str | None = None
) -> NodeScript:
    """Start `node tests/js/<script> <args> --timeout <timeout_ms>`, with EVENTBRIDGE_TOKEN set
    to `token` (unset without one)."""
    node = node_executable()
    flags = await websocket_flags(node) if script == "websocket_client.mjs" else []
    env = {name: value for name, value in os.environ.items() if name != "EVENTBRIDGE_TOKEN"}
    if token is not None:
        env["EVENTBRIDGE_TOKEN"] = token
    process = await asyncio.create_subprocess_exec(
        node,
        *flags,
        script,
        *args,
        "--timeout",
        str(timeout_ms),
        cwd=JS_DIR,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return NodeScript(process, script)


@asynccontextmanager
async def node_script(
    script: str, *args: str, token: str | None = None
) -> AsyncIterator[NodeScript]:
    """Run a client script (with EVENTBRIDGE_TOKEN=`token`, if given); kill it on the way out if
    it is still running."""
    running = await start_script(script, *args, token=token)
    try:
        yield running
    finally:
        await running.stop()


async def publish_mix(events: EventPublisher, project: str) -> list[tuple[str, PublishedEvent]]:
    """Publish every v1 type for `project`, amid events of other rooms.

    Returns the events a client in `project:<project>` and `activity-feed` must receive, in
    publish order, each with its Socket.IO event name as the contract spells it. The others'
    events that must not arrive are published between them, so their absence is checked.
    """
    other = f"{project}-other"
    expected = [
        ("agent_status", await events.agent_status(project, agent_id="a1", status="running")),
        ("progress_update", await events.progress_update(project, agent_id="a1", progress=0.5)),
    ]
    await events.agent_status(other, agent_id="a1", status="queued")  # another project's room
    expected += [
        (
            "generation_complete",
            await events.generation_complete(
                project, agent_id="a1", artifacts=[{"name": "main.tf", "kind": "terraform"}]
            ),
        ),
        ("error", await events.error(project, code="E_QUOTA", message="quota", retryable=True)),
        (
            "activity-created",
            await events.activity_created(project, actor="alice", action="approved"),
        ),
        ("activity-created", await events.activity_created(None, actor="ops", action="paged")),
        ("activity-created", await events.activity_created(other, actor="bob", action="viewed")),
        (
            "step-updated",
            await events.step_updated(project, workflow_id="w", step_id="s", changes={"a": 1}),
        ),
        ("step-completed", await events.step_completed(project, workflow_id="w", step_id="s")),
        (
            "deployment_status",
            await events.deployment_status(project, deployment_id="d1", status="running"),
        ),
    ]
    await events.deployment_log(other, deployment_id="d9", stream="stderr", line="not yours")
    expected.append(
        (
            "deployment_log",
            await events.deployment_log(project, deployment_id="d1", stream="stdout", line="ok"),
        )
    )
    return expected


def without_offset(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload minus the `offset` the bridge adds: what the producer sent."""
    return {key: value for key, value in payload.items() if key != "offset"}


def assert_rising_offsets(payloads: list[dict[str, Any]], after: int) -> None:
    """Every payload has an integer offset above `after`, strictly rising."""
    offsets = [payload["offset"] for payload in payloads]
    assert all(isinstance(offset, int) for offset in offsets), offsets
    assert all(a < b for a, b in itertools.pairwise([after, *offsets])), offsets


def socketio_acks(lines: list[Line], bridge: RunningBridge, project: str) -> int:
    """Check the two join acks the script printed; return the offset they report."""
    acks = {line["ack"]: line["payload"] for line in lines if "ack" in line}
    project_ack, feed_ack = acks["join-project"], acks["join-activity-feed"]
    assert project_ack == {
        "ok": True,
        "room": f"project:{project}",
        "epoch": bridge.hub.epoch,
        "offset": project_ack["offset"],
    }
    assert feed_ack == {
        "ok": True,
        "room": "activity-feed",
        "epoch": bridge.hub.epoch,
        "offset": feed_ack["offset"],
    }
    offset: int = project_ack["offset"]
    return offset


def is_presence(line: Line) -> bool:
    """A presence message either script printed (docs/clients.md, "Presence")."""
    return str(line.get("event", line.get("type", ""))).startswith("presence")


def assert_presence_listed(lines: list[Line], project: str) -> None:
    """The script got the project's presence list after joining its room."""
    listed = [
        line.get("payload", line)
        for line in lines
        if line.get("event", line.get("type")) == "presence"
    ]
    assert listed, lines
    assert listed[0]["project_id"] == project


def assert_socketio_events(lines: list[Line], expected: list[tuple[str, PublishedEvent]]) -> None:
    """The script printed exactly the expected events: names, envelopes, rising offsets."""
    assert_presence_listed(lines, "p1")
    received = [
        (line["event"], line["payload"])
        for line in lines
        if "event" in line and not is_presence(line)
    ]
    assert [name for name, _ in received] == [name for name, _ in expected]
    assert [without_offset(payload) for _, payload in received] == [
        event.envelope for _, event in expected
    ]


async def run_socketio_scenario(
    bridge: RunningBridge,
    publisher: EventPublisher,
    transport_flags: list[str],
    token: str | None = None,
) -> list[Line]:
    """Run the Socket.IO script, publish the mix once it joined, return its output lines."""
    async with node_script(
        "socketio_client.mjs", bridge.http_url, "p1", "11", *transport_flags, token=token
    ) as script:
        await script.wait_for_line(lambda line: line.get("ack") == "join-activity-feed", "joining")
        if not transport_flags:
            await script.wait_for_line(lambda line: "upgrade" in line, "upgrading")
        expected = await publish_mix(publisher, "p1")
        assert len(expected) == 11
        lines = await script.finish()
    joined_at = socketio_acks(lines, bridge, "p1")
    assert_socketio_events(lines, expected)
    events = [line["payload"] for line in lines if "event" in line and not is_presence(line)]
    assert_rising_offsets(events, joined_at)
    return lines


async def test_socketio_client_default_transports_polling_then_upgrade(
    bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """socket.io-client with default transports starts on polling, upgrades, gets every event."""
    lines = await run_socketio_scenario(bridge, publisher, [])
    transports = [line for line in lines if "transport" in line or "upgrade" in line]
    assert transports == [{"transport": "polling"}, {"upgrade": "websocket"}]


async def test_socketio_client_websocket_only(
    bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """socket.io-client over WebSocket only joins, and gets exactly its rooms' events in order."""
    lines = await run_socketio_scenario(bridge, publisher, ["--websocket-only"])
    transports = [line for line in lines if "transport" in line or "upgrade" in line]
    assert transports == [{"transport": "websocket"}]


async def test_socketio_client_long_polling_only(
    bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """socket.io-client that never upgrades receives every event over HTTP long-polling."""
    lines = await run_socketio_scenario(bridge, publisher, ["--polling-only"])
    transports = [line for line in lines if "transport" in line or "upgrade" in line]
    assert transports == [{"transport": "polling"}]


async def test_native_websocket_client(bridge: RunningBridge, publisher: EventPublisher) -> None:
    """The standard WebSocket class subscribes, gets pong, and exactly its rooms' events."""
    async with node_script("websocket_client.mjs", bridge.ws_url, "p1", "11") as script:
        await script.wait_for_line(lambda line: line.get("type") == "pong", "the first pong")
        expected = await publish_mix(publisher, "p1")
        lines = await script.finish()

    assert_presence_listed(lines, "p1")
    replies = [line for line in lines if "id" not in line and not is_presence(line)]
    subscribed = [line for line in replies if line["type"] == "subscribed"]
    assert subscribed == [
        {
            "type": "subscribed",
            "room": "project:p1",
            "epoch": bridge.hub.epoch,
            "offset": subscribed[0]["offset"],
        },
        {
            "type": "subscribed",
            "room": "activity-feed",
            "epoch": bridge.hub.epoch,
            "offset": subscribed[1]["offset"],
        },
    ]
    assert {"type": "pong"} in replies
    assert all(line["type"] in ("subscribed", "pong") for line in replies), replies
    frames = [line for line in lines if "id" in line]
    assert [without_offset(frame) for frame in frames] == [event.envelope for _, event in expected]
    assert_rising_offsets(frames, subscribed[0]["offset"])


async def test_socketio_client_emits_come_back_through_the_room(bridge: RunningBridge) -> None:
    """new-activity, step-updated, step-completed from socket.io-client are acked and come back."""
    async with node_script("socketio_client.mjs", bridge.http_url, "p1", "3", "--emit") as script:
        lines = await script.finish()

    joined_at = socketio_acks(lines, bridge, "p1")
    emits = [line for line in lines if "ack" in line and "sent" in line]
    assert [line["ack"] for line in emits] == ["new-activity", "step-updated", "step-completed"]
    for line in emits:
        assert line["payload"] == {"ok": True, "id": line["payload"]["id"]}, line
    received = [
        (line["event"], line["payload"])
        for line in lines
        if "event" in line and not is_presence(line)
    ]
    assert [name for name, _ in received] == ["activity-created", "step-updated", "step-completed"]
    assert [payload["id"] for _, payload in received] == [line["payload"]["id"] for line in emits]
    for (_, payload), line in zip(received, emits, strict=True):
        sent = {key: value for key, value in line["sent"].items() if key != "project_id"}
        assert payload["project_id"] == line["sent"]["project_id"]
        if payload["type"] == "activity_created":
            sent.setdefault("priority", "normal")  # the contract's default for activities
        assert payload["data"] == sent
    assert_rising_offsets([payload for _, payload in received], joined_at)


def event_of(line: Line) -> dict[str, Any] | None:
    """The event an output line of either script carries, or None for replies and notices."""
    if "event" in line:
        payload = line["payload"]
        return payload if isinstance(payload, dict) and "id" in payload else None
    return line if "id" in line and "offset" in line else None


def is_feed_join_reply(line: Line) -> bool:
    """The reply to the scripts' last join, printed once per (re)connect by either script."""
    if line.get("ack") == "join-activity-feed":
        return True
    return line.get("type") == "subscribed" and line.get("room") == "activity-feed"


def is_event_line(event_id: str) -> Callable[[Line], bool]:
    """A predicate for the output line of either script that carries the event `event_id`."""

    def wanted(line: Line) -> bool:
        event = event_of(line)
        return event is not None and event["id"] == event_id

    return wanted


def assert_rising_per_room(events: list[dict[str, Any]], project: str) -> None:
    """Counted in one room each (the project's if it is the project's), offsets rise per room."""
    in_project = [event for event in events if event["project_id"] == project]
    in_feed = [event for event in events if event["project_id"] != project]
    assert_rising_offsets(in_project, -1)
    assert_rising_offsets(in_feed, -1)


@pytest.mark.parametrize("script", ["socketio_client.mjs", "websocket_client.mjs"])
async def test_js_client_resumes_each_room_from_its_own_offset(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher, script: str
) -> None:
    """Each room resumes from its own offset after a restart: none lost, the repeat not counted."""
    settings = bridge_settings()
    scheme = "http" if script == "socketio_client.mjs" else "ws"
    url = f"{scheme}://127.0.0.1:{settings.port}"
    client: NodeScript | None = None
    try:
        async with running_bridge(settings):
            client = await start_script(script, url, "p1", "6", timeout_ms=RESTART_TIMEOUT_MS)
            await client.wait_for_line(is_feed_join_reply, "joining")
            # p1's activity belongs to both rooms: it comes through the project room (joined
            # first) and counts there, so the feed's offset stays at its join.
            status = await publisher.agent_status("p1", agent_id="a", status="running")
            activity = await publisher.activity_created("p1", actor="alice", action="approved")
            await client.wait_for_lines(lambda line: event_of(line) is not None, "2 events", 2)
        # The bridge is down: these wait in the log. The feed's event is the older one, but the
        # project room resumes first, so it arrives after the newer progress update.
        missed_feed = await publisher.activity_created(None, actor="ops", action="restarted")
        missed_project = await publisher.progress_update("p1", agent_id="a", progress=0.5)
        async with running_bridge(settings):
            await client.wait_for_lines(is_feed_join_reply, "rejoining", 2)
            await client.wait_for_line(is_event_line(missed_feed.id), "the feed's catch-up")
            live = [
                await publisher.progress_update("p1", agent_id="a", progress=0.75),
                await publisher.agent_status("p1", agent_id="a", status="succeeded"),
            ]
            lines = await client.finish()
    finally:
        if client is not None:
            await client.stop()

    events = [event for line in lines if (event := event_of(line)) is not None]
    # The feed resumed from its own, older offset, so its catch-up repeats p1's activity (after
    # the project's newer catch-up). The script skipped it uncounted, or it would have stopped
    # at 6 events before the last one arrived.
    assert [without_offset(event) for event in events] == [
        event.envelope for event in [status, activity, missed_project, activity, missed_feed, *live]
    ]
    processed = events[:3] + events[4:]  # without the repeat, as the script skipped it
    assert_rising_per_room(processed, "p1")
    notices = [line for line in lines if line.get("event") == "resync-required"]
    notices += [line for line in lines if line.get("type") == "resync_required"]
    assert notices == []


# -- authentication ----------------------------------------------------------------------------

OTHER_SECRET = "another-secret-" + "y" * 40


@pytest.fixture
async def jwt_bridge(bridge_settings: Callable[..., Settings]) -> AsyncIterator[RunningBridge]:
    """A bridge that requires HS256 tokens of the test issuer (as in test_auth.py)."""
    settings = bridge_settings(auth="jwt", jwt_secret=tokens.SECRET, jwt_issuer=tokens.ISSUER)
    async with running_bridge(settings) as running:
        yield running


async def test_socketio_client_with_a_token_receives_its_rooms_events(
    jwt_bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """socket.io-client sending its token as `auth: {token}` joins and gets its rooms' events."""
    token = tokens.hs256(projects=["p1"], activity_feed=True)
    lines = await run_socketio_scenario(jwt_bridge, publisher, [], token)
    assert not [line for line in lines if "connect_error" in line]


async def test_socketio_client_with_a_bad_token_gets_connect_error(
    jwt_bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """socket.io-client with a token of another key gets connect_error code invalid_token."""
    token = tokens.hs256(secret=OTHER_SECRET, projects=["p1"], activity_feed=True)
    async with node_script("socketio_client.mjs", jwt_bridge.http_url, "p1", "1", token=token) as (
        script
    ):
        await publisher.agent_status("p1", agent_id="a", status="running")
        lines = await script.finish(returncode=1)
    # Besides the refusal, only Engine.IO's transport lines (the upgrade may beat the refusal).
    assert [line for line in lines if "transport" not in line and "upgrade" not in line] == [
        {
            "connect_error": {
                "message": "the token's signature does not verify",
                "data": {"code": "invalid_token"},
            }
        },
    ]


async def test_native_websocket_client_authenticates_first_and_receives_events(
    jwt_bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """The WebSocket client sends its token first, is authenticated, and gets its events."""
    token = tokens.hs256(projects=["p1"], activity_feed=True)
    async with node_script(
        "websocket_client.mjs", jwt_bridge.ws_url, "p1", "11", token=token
    ) as script:
        await script.wait_for_line(lambda line: line.get("type") == "pong", "the first pong")
        expected = await publish_mix(publisher, "p1")
        lines = await script.finish()

    authenticated, *rest = [line for line in lines if not is_presence(line)]
    assert_presence_listed(lines, "p1")
    assert authenticated == {
        "type": "authenticated",
        "subject": "user-1",
        "projects": ["p1"],
        "activity_feed": True,
        "expires_at": authenticated["expires_at"],
        "anonymous": False,
    }
    assert [line["type"] for line in rest[:3]] == ["subscribed", "subscribed", "pong"]
    assert [line["room"] for line in rest[:2]] == ["project:p1", "activity-feed"]
    frames = [line for line in lines if "id" in line]
    assert [without_offset(frame) for frame in frames] == [event.envelope for _, event in expected]


async def test_native_websocket_client_with_a_refused_token_stops(
    jwt_bridge: RunningBridge,
) -> None:
    """The WebSocket client whose token has expired is told why and closed with 4401."""
    token = tokens.hs256(exp=int(tokens.claims()["iat"]) - 120)
    async with node_script(
        "websocket_client.mjs", jwt_bridge.ws_url, "p1", "1", token=token
    ) as script:
        lines = await script.finish(returncode=1)
    assert lines == [
        {
            "type": "request_error",
            "code": "token_expired",
            "message": "the token has expired",
            "request": "auth",
        }
    ]
