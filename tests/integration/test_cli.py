"""The command line as users type it: help, publish, and the README's by-hand publish."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from pathlib import Path

import aio_pika
import pytest

from tests.helpers import wait_for
from tests.integration.clients import websocket_client
from tests.integration.conftest import RunningBridge, free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
EVENTBRIDGE = [sys.executable, "-m", "bridge.cli.main"]


async def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run a command; return its exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_help_lists_every_command_and_each_has_its_own_help() -> None:
    """`eventbridge --help` names serve, publish and demo; each answers --help."""
    code, out, err = await run(*EVENTBRIDGE, "--help")
    assert code == 0, err
    for command in ("serve", "publish", "demo"):
        assert command in out
        code, sub_help, _ = await run(*EVENTBRIDGE, command, "--help")
        assert code == 0
        assert f"eventbridge {command}" in sub_help
        assert "--amqp-url" in sub_help


@pytest.mark.parametrize("command", ["status", "tail", "dead-letters", "replay", "topology"])
async def test_operator_commands_start_without_loading_the_server(command: str) -> None:
    """An operator command imports neither FastAPI nor python-socketio (it starts about three
    times faster than `serve`), and `eventbridge --help` still lists every command."""
    code, _, imports = await run(
        sys.executable, "-X", "importtime", *EVENTBRIDGE[1:], command, "-h"
    )
    assert code == 0
    loaded = {line.rsplit("|", 1)[-1].strip() for line in imports.splitlines()}
    server = {"fastapi", "socketio", "uvicorn"}
    assert not loaded & server, f"{command} loaded {loaded & server}"
    code, out, _ = await run(*EVENTBRIDGE, "--help")
    assert code == 0
    for name in ("serve", "publish", "demo", "dead-letters", "tail", "status", "replay", "token"):
        assert name in out


async def test_publish_prints_id_and_routing_key_and_event_arrives(
    bridge: RunningBridge, amqp_url: str, prefix: str
) -> None:
    """`eventbridge publish` confirms the event, prints id and key, and the room receives it."""
    async with websocket_client(f"{bridge.ws_url}/ws/ai/proj-123") as ws:
        await wait_for(lambda: bool(ws.replies("subscribed")))
        code, out, err = await run(
            *EVENTBRIDGE,
            "publish",
            "progress_update",
            "--project",
            "proj-123",
            "--data",
            '{"agent_id": "agent-1", "progress": 0.5}',
            env={"EVENTBRIDGE_AMQP_URL": amqp_url, "EVENTBRIDGE_PREFIX": prefix},
        )
        assert code == 0, err
        match = re.fullmatch(
            r"published (\S+) with routing key project\.proj-123\.progress_update\n", out
        )
        assert match, out
        [event] = await ws.wait_for_events(1)
    assert event["id"] == match.group(1)
    assert event["data"] == {"agent_id": "agent-1", "progress": 0.5}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "--data is not valid JSON"),
        ("[1, 2]", "--data must be a JSON object"),
        ('{"agent_id": "a", "progress": 3}', "progress"),
    ],
)
async def test_publish_refuses_bad_data_and_sends_nothing(
    bridge: RunningBridge, amqp_url: str, prefix: str, data: str, message: str
) -> None:
    """`eventbridge publish` with bad data exits 2 with a clear message and publishes nothing."""
    code, _, err = await run(
        *EVENTBRIDGE,
        "publish",
        "progress_update",
        "--project",
        "p1",
        "--data",
        data,
        env={"EVENTBRIDGE_AMQP_URL": amqp_url, "EVENTBRIDGE_PREFIX": prefix},
    )
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert bridge.hub.events_routed == 0


def readme_amqp_publish_command() -> str:
    """The README's `amqp-publish` example, exactly as written there."""
    readme = (ROOT / "README.md").read_text()
    blocks: list[str] = re.findall(r"```bash\n(.*?)```", readme, flags=re.DOTALL)
    [block] = [block for block in blocks if block.startswith("amqp-publish")]
    return block


async def test_readme_amqp_publish_example_is_delivered(
    bridge: RunningBridge, amqp_url: str, prefix: str
) -> None:
    """The README's by-hand `amqp-publish` command (no SDK) delivers its event to the room."""
    if shutil.which("amqp-publish") is None:
        pytest.fail(
            "amqp-publish is missing: install Debian's amqp-tools (apt-get install amqp-tools)"
        )
    command = readme_amqp_publish_command()
    # amqp-publish reads a trailing "/" as the empty vhost name: its URL has none.
    command = command.replace("amqp://guest:guest@127.0.0.1:5672", amqp_url.rstrip("/"))
    command = command.replace("eventbridge.events", f"{prefix}.events")
    async with websocket_client(f"{bridge.ws_url}/ws/ai/proj-123") as ws:
        await wait_for(lambda: bool(ws.replies("subscribed")))
        code, _, err = await run("bash", "-c", command)
        assert code == 0, err
        [event] = await ws.wait_for_events(1)
    assert event["id"] == "evt-1"
    assert event["data"] == {"agent_id": "agent-1", "status": "running"}


async def test_demo_serves_and_publishes_a_live_stream(amqp_url: str, prefix: str) -> None:
    """`eventbridge demo` serves the bridge, its agents' events reach a client, and it stops
    cleanly after --duration."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *EVENTBRIDGE,
        "demo",
        "--rate",
        "40",
        "--duration",
        "6",
        "--port",
        str(port),
        "--projects",
        "demo-a,demo-b",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "EVENTBRIDGE_AMQP_URL": amqp_url, "EVENTBRIDGE_PREFIX": prefix},
    )
    try:
        await wait_ready(port)
        async with websocket_client(f"ws://127.0.0.1:{port}/ws/ai/demo-a") as ws:
            events = await ws.wait_for_events(10, timeout=15)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert {event["project_id"] for event in events} == {"demo-a"}
    assert f"ws://127.0.0.1:{port}/ws/ai/demo-a" in stdout.decode()
    assert f"http://127.0.0.1:{port}/?project=demo-a" in stdout.decode()
    published = re.search(r"published (\d+) events", stdout.decode())
    assert published
    assert 100 <= int(published.group(1)) <= 300


async def test_publish_names_the_event_types_plainly_when_the_type_is_unknown() -> None:
    """A misspelt event type is refused (exit 2) with the valid types listed by name, not as
    Python enum members."""
    code, _, err = await run(*EVENTBRIDGE, "publish", "agent_statu", "--data", "{}")
    assert code == 2
    assert "'agent_status', 'deployment_log'" in err
    assert "EventType" not in err


async def test_publish_says_which_event_type_the_data_does_not_fit() -> None:
    """Data that does not fit its type is refused before the broker is contacted, with the
    type named in a grammatical sentence."""
    code, _, err = await run(
        *EVENTBRIDGE,
        "publish",
        "activity_created",
        "--data",
        '{"actor": "alice"}',
        env={"EVENTBRIDGE_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"},
    )
    assert code == 2
    assert "invalid data for the activity_created event: action: Field required" in err


async def exchange_exists(amqp_url: str, name: str) -> bool:
    """Whether the broker has an exchange of this name (looked up, never declared)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection, connection.channel() as channel:
        try:
            await channel.declare_exchange(name, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return False
        return True


async def test_publish_refuses_a_prefix_no_bridge_declared_and_creates_nothing(
    amqp_url: str, prefix: str
) -> None:
    """Publishing to a prefix whose exchange does not exist exits 1 saying no bridge declared
    it and naming --create-exchange, and leaves no exchange behind; with --create-exchange the
    exchange is declared and the event refused as unroutable."""
    command = [
        *EVENTBRIDGE,
        "publish",
        "agent_status",
        "--data",
        '{"agent_id": "a", "status": "running"}',
    ]
    env = {"EVENTBRIDGE_AMQP_URL": amqp_url, "EVENTBRIDGE_PREFIX": prefix}
    code, out, err = await run(*command, env=env)
    assert (code, out) == (1, "")
    assert f"no bridge has declared prefix '{prefix}'" in err
    assert "--create-exchange" in err
    assert not await exchange_exists(amqp_url, f"{prefix}.events")
    code, _, err = await run(*command, "--create-exchange", env=env)
    assert code == 1
    assert "no queue is bound" in err
    assert await exchange_exists(amqp_url, f"{prefix}.events")
