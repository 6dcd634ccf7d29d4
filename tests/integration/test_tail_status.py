"""`eventbridge tail` and `eventbridge status` as operators run them, against a real bridge."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest
from yarl import URL

from producers import EventPublisher
from tests.helpers import wait_for
from tests.integration.clients import websocket_client
from tests.integration.conftest import EVENTBRIDGE, RunningBridge, free_port

COLUMNS = re.compile(r"\s{2,}")
INVALID_JSON = b'{"id": "x", not json'


def cli_env(amqp_url: str, prefix: str) -> dict[str, str]:
    """The environment of a command run against this test's broker and prefix."""
    return {**os.environ, "EVENTBRIDGE_AMQP_URL": amqp_url, "EVENTBRIDGE_PREFIX": prefix}


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run `eventbridge <args>` to completion; return its exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        *EVENTBRIDGE,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


class Tail:
    """A running `eventbridge tail`, its output collected line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.errors: list[str] = []
        assert process.stdout is not None
        assert process.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(process.stdout, self.lines)),
            asyncio.create_task(self._read(process.stderr, self.errors)),
        ]

    @staticmethod
    async def _read(stream: asyncio.StreamReader, into: list[str]) -> None:
        while line := await stream.readline():
            into.append(line.decode().rstrip("\n"))

    async def started(self) -> None:
        """Wait until it is attached to the log (it says so on stderr)."""
        await wait_for(lambda: any("following" in line for line in self.errors), 15)

    async def wait_lines(self, count: int, timeout: float = 10) -> list[str]:
        """Wait for `count` lines of output and return them."""
        try:
            await wait_for(lambda: len(self.lines) >= count, timeout)
        except AssertionError:
            raise AssertionError(f"got {self.lines}; stderr {self.errors}") from None
        return self.lines[:count]

    async def stop(self, signum: int = signal.SIGINT) -> int:
        """Send a signal, wait for the process to end and return its exit status."""
        self.process.send_signal(signum)
        code = await asyncio.wait_for(self.process.wait(), 15)
        await asyncio.gather(*self._readers)
        return code


@asynccontextmanager
async def tail(amqp_url: str, prefix: str, *args: str) -> AsyncIterator[Tail]:
    """Run `eventbridge tail <args>`; kill it if the test leaves it running."""
    process = await asyncio.create_subprocess_exec(
        *EVENTBRIDGE,
        "tail",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(amqp_url, prefix),
    )
    try:
        yield Tail(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def columns(line: str) -> list[str]:
    """A tail line's columns: time, offset, project, type, summary."""
    return COLUMNS.split(line.strip(), maxsplit=4)


def local_clock(moment: datetime) -> str:
    """How tail prints a time: local HH:MM:SS.mmm."""
    return moment.astimezone().strftime("%H:%M:%S.%f")[:-3]


async def publish_raw(
    connection: aio_pika.abc.AbstractConnection, prefix: str, key: str, body: bytes
) -> None:
    """Publish bytes to the exchange with a confirm, as any producer could."""
    channel = await connection.channel()
    exchange = await channel.get_exchange(f"{prefix}.events")
    await exchange.publish(aio_pika.Message(body), routing_key=key)
    await channel.close()


async def test_tail_prints_new_events_as_readable_lines(
    bridge: RunningBridge, publisher: EventPublisher, amqp_url: str, prefix: str
) -> None:
    """tail prints one uncolored line per event published after it started: local time, offset,
    project (or global), type and a readable summary."""
    moment = datetime(2026, 11, 26, 12, 0, 0, 123_000, tzinfo=UTC)
    events: list[tuple[str, dict[str, Any], str | None, str]] = [
        ("agent_status", {"agent_id": "agent-1", "status": "running"}, "proj-1", "agent-1 running"),
        (
            "progress_update",
            {"agent_id": "agent-1", "progress": 0.5, "stage": "generating"},
            "proj-1",
            "agent-1 ▓▓▓▓▓░░░░░ 50% generating",
        ),
        (
            "activity_created",
            {"actor": "alice", "action": "approved", "target": "plan.tf"},
            "proj-1",
            "alice approved plan.tf",
        ),
        (
            "deployment_log",
            {"deployment_id": "d1", "stream": "stdout", "line": "Apply complete!"},
            "proj-1",
            "d1 stdout | Apply complete!",
        ),
        (
            "error",
            {"code": "E_QUOTA", "message": "quota exceeded", "retryable": True},
            None,
            "E_QUOTA quota exceeded (retryable)",
        ),
    ]
    async with tail(amqp_url, prefix) as running:
        await running.started()
        for event_type, data, project, _ in events:
            await publisher.publish(event_type, data, project_id=project, occurred_at=moment)
        lines = await running.wait_lines(len(events))
        assert await running.stop() == 0
    rows = [columns(line) for line in lines]
    assert [row[0] for row in rows] == [local_clock(moment)] * len(events)
    offsets = [int(row[1]) for row in rows]
    assert offsets == sorted(set(offsets))
    assert [row[2] for row in rows] == ["proj-1"] * 4 + ["global"]
    assert [row[3] for row in rows] == [event_type for event_type, *_ in events]
    assert [row[4] for row in rows] == [summary for *_, summary in events]
    assert len(running.lines) == len(events)
    assert "\x1b" not in "".join(running.lines)  # stdout is a pipe: no colors


async def test_tail_shows_only_the_projects_and_types_asked_for(
    bridge: RunningBridge, publisher: EventPublisher, amqp_url: str, prefix: str
) -> None:
    """--project and --type (each repeatable) hide every other event, global ones included."""
    filters = ("--project", "p1", "--project", "p2", "--type", "agent_status", "--type", "error")
    error = {"code": "E1", "message": "boom", "retryable": False}
    async with tail(amqp_url, prefix, *filters) as running:
        await running.started()
        await publisher.publish(
            "agent_status", {"agent_id": "a3", "status": "idle"}, project_id="p3"
        )
        await publisher.publish(
            "progress_update", {"agent_id": "a", "progress": 0.1}, project_id="p1"
        )
        await publisher.publish("error", error, project_id=None)
        await publisher.publish(
            "agent_status", {"agent_id": "a1", "status": "queued"}, project_id="p1"
        )
        log_line = {"deployment_id": "d", "stream": "stderr", "line": "x"}
        await publisher.publish("deployment_log", log_line, project_id="p2")
        await publisher.publish("error", error, project_id="p2")  # the last one: all were read
        lines = await running.wait_lines(2)
        assert await running.stop() == 0
    assert running.lines == lines
    assert [columns(line)[2:] for line in lines] == [
        ["p1", "agent_status", "a1 queued"],
        ["p2", "error", "E1 boom (not retryable)"],
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--type", "telepathy"), "'telepathy' is not an event type; the types are: "),
        (("--since", "yesterday"), "'yesterday' is not a start: use next, first, a duration"),
        (("--since", "offset:-1"), "is not offset:<integer ≥ 0>"),
        (("--project", "a.b"), "'a.b' is not a project id"),
    ],
)
async def test_tail_refuses_bad_filters_with_a_sentence(
    amqp_url: str, prefix: str, args: tuple[str, ...], message: str
) -> None:
    """An unknown type, a bad --since or a bad project id exits 2 with a sentence, no traceback."""
    code, out, err = await run_cli("tail", *args, env=cli_env(amqp_url, prefix))
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert out == ""


@pytest.mark.parametrize("since", ["offset:0", "1m"])
async def test_tail_since_prints_past_events_as_json_lines(
    bridge: RunningBridge, publisher: EventPublisher, amqp_url: str, prefix: str, since: str
) -> None:
    """--since offset:0 or a duration with --json prints past events as their delivered payload
    (envelope plus offset), one JSON object a line, skipping the bridge's marker at offset 0."""
    async with websocket_client(f"{bridge.ws_url}/ws/ai/p1") as ws:
        await wait_for(lambda: bool(ws.replies("subscribed")))
        for progress in (0.25, 0.5, 0.75):
            await publisher.publish(
                "progress_update", {"agent_id": "a", "progress": progress}, project_id="p1"
            )
        delivered = await ws.wait_for_events(3)
    async with tail(amqp_url, prefix, "--since", since, "--json") as running:
        lines = await running.wait_lines(3)
        assert await running.stop() == 0
    assert [json.loads(line) for line in lines] == delivered
    assert all(event["offset"] > 0 for event in delivered)


async def test_tail_shows_an_invalid_record_as_a_dead_letter(
    bridge: RunningBridge,
    publisher: EventPublisher,
    amqp_connection: aio_pika.abc.AbstractConnection,
    amqp_url: str,
    prefix: str,
) -> None:
    """An invalid message shows as a `dead letter: <reason>` line (and as a `dead_letter` object
    with --json), between the valid events around it."""
    async with (
        tail(amqp_url, prefix) as text,
        tail(amqp_url, prefix, "--json") as as_json,
    ):
        await text.started()
        await as_json.started()
        await publish_raw(amqp_connection, prefix, "project.p1.progress_update", INVALID_JSON)
        await publisher.publish(
            "agent_status", {"agent_id": "a", "status": "idle"}, project_id="p1"
        )
        text_lines = await text.wait_lines(2)
        json_lines = await as_json.wait_lines(2)
    offset, project, event_type, summary = columns(text_lines[0])
    assert (project, event_type) == ("p1", "progress_update")
    assert summary.startswith("dead letter: invalid_json — the body is not UTF-8 JSON")
    assert columns(text_lines[1])[3:] == ["agent_status", "a idle"]
    refused = json.loads(json_lines[0])
    assert refused["offset"] == int(offset)
    assert refused["dead_letter"]["reason"] == "invalid_json"
    assert refused["dead_letter"]["routing_key"] == "project.p1.progress_update"
    assert json.loads(json_lines[1])["offset"] > int(offset)


async def test_tail_colors_by_type_and_escapes_control_characters(
    bridge: RunningBridge, publisher: EventPublisher, amqp_url: str, prefix: str
) -> None:
    """--color always colors types (errors and failed statuses red) and prints a producer's
    escape sequences as visible text, never raw."""
    async with tail(amqp_url, prefix, "--color", "always") as running:
        await running.started()
        await publisher.publish(
            "agent_status", {"agent_id": "a", "status": "running"}, project_id="p1"
        )
        await publisher.publish(
            "agent_status", {"agent_id": "a", "status": "failed"}, project_id="p1"
        )
        error = {"code": "E", "message": "m", "retryable": True}
        await publisher.publish("error", error, project_id="p1")
        log_line = {"deployment_id": "d", "stream": "stdout", "line": "\x1b[2Jgone\nnext"}
        await publisher.publish("deployment_log", log_line, project_id="p1")
        running_line, failed, error_line, log = await running.wait_lines(4)
    assert "\x1b[36magent_status" in running_line
    assert "\x1b[31magent_status" in failed
    assert "\x1b[31merror" in error_line
    assert "\x1b[33mdeployment_log" in log
    assert "d stdout | \\x1b[2Jgone\\nnext" in log
    assert "\x1b[2J" not in log


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_tail_ends_cleanly_on_ctrl_c_and_sigterm(
    bridge: RunningBridge, amqp_url: str, prefix: str, signum: int
) -> None:
    """SIGINT (Ctrl-C) or SIGTERM ends tail with exit status 0 and no traceback."""
    async with tail(amqp_url, prefix) as running:
        await running.started()
        assert await running.stop(signum) == 0
    assert "Traceback" not in "\n".join(running.errors)
    assert running.lines == []


async def status_json(amqp_url: str, prefix: str, bridge_url: str) -> tuple[int, dict[str, Any]]:
    """Run `eventbridge status --json`; return its exit status and report."""
    code, out, err = await run_cli(
        "status", "--json", "--bridge-url", bridge_url, env=cli_env(amqp_url, prefix)
    )
    assert "Traceback" not in err
    report: dict[str, Any] = json.loads(out)
    return code, report


async def test_status_reports_the_log_offsets_and_record_count(
    bridge: RunningBridge, publisher: EventPublisher, amqp_url: str, prefix: str
) -> None:
    """status reports the log's first and last offsets, records, epoch and configured retention
    right after N events, in JSON and in the table, and exits 0."""
    async with websocket_client(f"{bridge.ws_url}/ws/ai/p1") as ws:
        await wait_for(lambda: bool(ws.replies("subscribed")))
        for index in range(7):
            await publisher.publish(
                "agent_status", {"agent_id": f"a{index}", "status": "running"}, project_id="p1"
            )
        delivered = await ws.wait_for_events(7)
    last = delivered[-1]["offset"]
    code, report = await status_json(amqp_url, prefix, bridge.http_url)
    assert code == 0
    assert report["ok"] is True
    log = report["log"]
    assert log["exists"] is True
    assert (log["first_offset"], log["last_offset"], log["records"]) == (0, last, last + 1)
    assert log["epoch"] == bridge.hub.epoch
    assert report["retention"]["configured_max_age"] == bridge.settings.log_max_age
    code, out, _ = await run_cli(
        "status", "--bridge-url", bridge.http_url, env=cli_env(amqp_url, prefix)
    )
    assert code == 0
    assert re.search(rf"^  offsets +0 … {last}$", out, re.MULTILINE), out
    assert re.search(rf"^  records +{last + 1} ", out, re.MULTILINE), out
    assert "configured (EVENTBRIDGE_LOG_MAX_AGE, EVENTBRIDGE_LOG_MAX_BYTES)" in out


async def test_status_counts_dead_letters_and_says_when_no_bridge_answers(
    bridge: RunningBridge,
    amqp_connection: aio_pika.abc.AbstractConnection,
    amqp_url: str,
    prefix: str,
) -> None:
    """status counts the dead-letter queue's messages after invalid messages are published, and
    says the bridge is not reachable at a URL nobody answers (still exiting 0)."""
    for _ in range(3):
        await publish_raw(amqp_connection, prefix, "project.p1.progress_update", INVALID_JSON)
    channel = await amqp_connection.channel()

    async def dead_letters() -> int:
        queue = await channel.declare_queue(f"{prefix}.dead-letters", passive=True)
        return queue.declaration_result.message_count or 0

    deadline = asyncio.get_running_loop().time() + 10
    while await dead_letters() < 3:
        assert asyncio.get_running_loop().time() < deadline, "the bridge dead-lettered too few"
        await asyncio.sleep(0.05)
    nobody = f"http://127.0.0.1:{free_port()}"
    code, report = await status_json(amqp_url, prefix, nobody)
    assert code == 0
    assert report["dead_letters"] == {
        "name": f"{prefix}.dead-letters",
        "exists": True,
        "messages": 3,
    }
    assert report["bridge"]["reachable"] is False
    code, out, _ = await run_cli("status", "--bridge-url", nobody, env=cli_env(amqp_url, prefix))
    assert code == 0
    assert re.search(rf"^dead letters +3 in {re.escape(prefix)}\.dead-letters$", out, re.MULTILINE)
    assert f"bridge not reachable at {nobody} (" in re.sub(r"\s+", " ", out)


async def test_status_reports_the_bridge_connections_and_log_consumers(
    bridge: RunningBridge, amqp_url: str, prefix: str
) -> None:
    """status shows the bridge's /health (status, broker, connections per transport, offset) and
    the log's consumers: at least the bridge, where rabbitmqctl can count them."""
    async with websocket_client(f"{bridge.ws_url}/ws/ai/p1") as ws:
        await wait_for(lambda: bool(ws.replies("subscribed")))
        code, report = await status_json(amqp_url, prefix, bridge.http_url)
        _, out, _ = await run_cli(
            "status", "--bridge-url", bridge.http_url, env=cli_env(amqp_url, prefix)
        )
    assert code == 0
    health = report["bridge"]["health"]
    assert health["status"] == "ok"
    assert health["services"]["websocket"]["connections"] == 1
    assert health["services"]["socketio"]["connections"] == 0
    assert health["log"]["offset"] == bridge.hub.head
    assert re.search(r"^  websocket +1 connection$", out, re.MULTILINE), out
    assert re.search(r"^  socketio +0 connections$", out, re.MULTILINE), out
    assert re.search(r"^  broker +connected$", out, re.MULTILINE), out
    log = report["log"]
    if shutil.which("rabbitmqctl"):
        assert log["consumers_source"] == "rabbitmqctl"
        assert log["consumers"] >= 1
    else:  # no other way to count a 3.10 stream's consumers: the report says so
        assert log["consumers"] is None
        assert "does not report a stream's consumers" in out


async def test_status_exits_1_with_a_sentence_when_the_broker_is_unreachable(prefix: str) -> None:
    """With nothing listening at the broker URL, status exits 1 with a sentence, keeps the password
    out of its output, and --json still prints a report that parses."""
    url = f"amqp://guest:s3cret@127.0.0.1:{free_port()}/"
    code, out, err = await run_cli("status", env=cli_env(url, prefix))
    assert code == 1
    assert "eventbridge status: cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:" in err
    assert "start the broker or point EVENTBRIDGE_AMQP_URL at a running one." in err
    assert "s3cret" not in out + err
    assert "Traceback" not in err
    code, report = await status_json(url, prefix, f"http://127.0.0.1:{free_port()}")
    assert code == 1
    assert report["ok"] is False
    assert report["broker"]["reachable"] is False


async def test_status_exits_1_when_the_log_does_not_exist(amqp_url: str, prefix: str) -> None:
    """Against a prefix no bridge has served, status exits 1 saying the log does not exist."""
    code, _, err = await run_cli("status", env=cli_env(amqp_url, prefix))
    assert code == 1
    assert f"the log {prefix}.log does not exist: start the bridge" in err


async def test_status_asks_the_bridge_on_the_port_eventbridge_port_names(
    bridge: RunningBridge, amqp_url: str, prefix: str
) -> None:
    """Without --bridge-url, status asks the bridge at EVENTBRIDGE_PORT (not :8000) and reports
    its connections."""
    env = {**cli_env(amqp_url, prefix), "EVENTBRIDGE_PORT": str(bridge.port)}
    env.pop("EVENTBRIDGE_HOST", None)
    code, out, err = await run_cli("status", env=env)
    assert code == 0, err
    assert f"http://127.0.0.1:{bridge.port}: ok" in out, out
    assert re.search(r"^  websocket +0 connections$", out, re.MULTILINE), out


async def test_status_says_once_that_the_login_was_refused(amqp_url: str, prefix: str) -> None:
    """With a wrong password status exits 1 with one sentence saying the login was refused and
    what to check, the advice given once, the password not shown."""
    bad = str(URL(amqp_url).with_password("not-the-password"))
    code, _, err = await run_cli("status", env={**cli_env(bad, prefix)})
    assert code == 1
    [line] = err.strip().splitlines()
    assert "refused the connection" in line
    assert line.count("check the user name") == 1
    assert "not-the-password" not in err
