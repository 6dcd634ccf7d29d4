"""`eventbridge replay` against the real broker and bridge: what it selects, where it goes,
what a dry run leaves alone, how it refuses bad arguments, its rate limit and its resume."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from bridge.broker.eventlog import REPLAY_OF_HEADER
from producers import EventPublisher, PublishedEvent
from tests.helpers import make_envelope, wait_for
from tests.integration.clients import WebSocketWatcher, websocket_client
from tests.integration.conftest import EVENTBRIDGE, RunningBridge


async def replay(
    amqp_url: str, prefix: str, *args: str, timeout: float = 60
) -> tuple[int, str, str]:
    """Run `eventbridge replay` with this test's broker and prefix; return status and output."""
    process = await asyncio.create_subprocess_exec(
        *EVENTBRIDGE,
        "replay",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "EVENTBRIDGE_AMQP_URL": amqp_url, "EVENTBRIDGE_PREFIX": prefix},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@dataclass
class BoundQueue:
    """A plain consumer of the exchange, as any other service would bind one."""

    received: list[tuple[AbstractIncomingMessage, float]] = field(default_factory=list)

    def messages(self) -> list[AbstractIncomingMessage]:
        """What arrived, in order."""
        return [message for message, _ in self.received]

    def ids(self) -> list[str]:
        """The envelope ids of what arrived, in order."""
        return [json.loads(message.body)["id"] for message in self.messages()]


@asynccontextmanager
async def bound_queue(
    connection: AbstractRobustConnection, prefix: str
) -> AsyncIterator[BoundQueue]:
    """An exclusive queue bound to `<prefix>.events` with `#`, recording arrivals and times."""
    bound = BoundQueue()
    loop = asyncio.get_running_loop()
    channel = await connection.channel()
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(f"{prefix}.events", routing_key="#")

    async def record(message: AbstractIncomingMessage) -> None:
        bound.received.append((message, loop.time()))

    await queue.consume(record, no_ack=True)
    try:
        yield bound
    finally:
        await channel.close()


async def subscribe(ws: WebSocketWatcher, *projects: str) -> None:
    """Subscribe the watcher (already subscribed to its URL's project) to more projects."""
    await wait_for(lambda: bool(ws.replies("subscribed")))
    for project in projects:
        reply = await ws.request({"type": "subscribe", "project_id": project}, "subscribed")
        assert reply["type"] == "subscribed", reply


async def progress(
    publisher: EventPublisher, project: str, agent: str, *, ago: timedelta | None = None
) -> PublishedEvent:
    """Publish one progress update, optionally dated `ago` in the past."""
    occurred_at = datetime.now(UTC) - ago if ago is not None else None
    return await publisher.publish(
        "progress_update",
        {"agent_id": agent, "progress": 0.5},
        project_id=project,
        occurred_at=occurred_at,
    )


def replayed(ws: WebSocketWatcher) -> list[dict[str, Any]]:
    """The replayed events the watcher received, in order."""
    return [event for event in ws.events() if event.get("replayed")]


async def test_offset_range_to_exchange_reaches_plain_consumers_then_rooms(
    bridge: RunningBridge,
    publisher: EventPublisher,
    amqp_connection: AbstractRobustConnection,
    amqp_url: str,
    prefix: str,
) -> None:
    """An offset range replayed --to exchange reaches a bound queue exactly as selected (ids,
    order, routing keys, replay header) and then the rooms marked replayed."""
    async with websocket_client(f"{bridge.ws_url}/ws/ai/proj-r1") as ws:
        await subscribe(ws, "proj-r2")
        originals = [
            await progress(publisher, f"proj-r{1 + i % 2}", f"agent-{i}") for i in range(6)
        ]
        live = await ws.wait_for_events(6)
        assert [event["id"] for event in live] == [event.id for event in originals]
        selected = live[1:5]
        async with bound_queue(amqp_connection, prefix) as queue:
            code, out, err = await replay(
                amqp_url,
                prefix,
                "--from-offset",
                str(selected[0]["offset"]),
                "--to-offset",
                str(selected[-1]["offset"]),
                "--to",
                "exchange",
            )
            assert code == 0, err
            assert "selected:    4 events" in out
            sentinel = await progress(publisher, "proj-r1", "sentinel")
            await wait_for(lambda: sentinel.id in queue.ids())
        messages = queue.messages()[:-1]
        assert [json.loads(m.body)["id"] for m in messages] == [e["id"] for e in selected]
        assert [m.headers[REPLAY_OF_HEADER] for m in messages] == [e["offset"] for e in selected]
        by_id = {event.id: event for event in originals}
        for message in messages:
            original = by_id[json.loads(message.body)["id"]]
            assert message.routing_key == original.routing_key
            assert message.message_id == original.id
            assert message.content_type == "application/json"
            assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
            assert json.loads(message.body) == original.envelope
        await wait_for(lambda: any(event["id"] == sentinel.id for event in ws.events()))
    again = replayed(ws)
    assert [event["id"] for event in again] == [event["id"] for event in selected]
    assert [event["replay_of"] for event in again] == [event["offset"] for event in selected]
    assert all(event["offset"] > selected[-1]["offset"] for event in again)


async def test_time_window_with_filters_to_rooms_reaches_rooms_only(
    bridge: RunningBridge,
    publisher: EventPublisher,
    amqp_connection: AbstractRobustConnection,
    amqp_url: str,
    prefix: str,
) -> None:
    """--since/--until with --project and --type, --to rooms, delivers exactly the matching
    events to the rooms marked replayed, skips an invalid record, and plain exchange consumers
    see nothing."""
    async with websocket_client(f"{bridge.ws_url}/ws/ai/proj-t1") as ws:
        await subscribe(ws, "proj-t2")
        await progress(publisher, "proj-t1", "a1", ago=timedelta(hours=3))  # too old
        wanted_1 = await progress(publisher, "proj-t1", "a1", ago=timedelta(minutes=50))
        await progress(publisher, "proj-t2", "a2", ago=timedelta(minutes=40))  # other project
        await publisher.publish(  # another type
            "agent_status",
            {"agent_id": "a1", "status": "running"},
            project_id="proj-t1",
            occurred_at=datetime.now(UTC) - timedelta(minutes=30),
        )
        async with amqp_connection.channel() as channel:
            exchange = await channel.get_exchange(f"{prefix}.events")
            await exchange.publish(
                aio_pika.Message(b"not json"), routing_key="project.proj-t1.progress_update"
            )
        wanted_2 = await progress(publisher, "proj-t1", "a3", ago=timedelta(minutes=20))
        await progress(publisher, "proj-t1", "a1")  # too new
        live = await ws.wait_for_events(6)
        offsets = {event["id"]: event["offset"] for event in live}
        assert len(offsets) == 6
        async with bound_queue(amqp_connection, prefix) as queue:
            code, out, err = await replay(
                amqp_url,
                prefix,
                "--since",
                "1h",
                "--until",
                "10m",
                "--project",
                "proj-t1",
                "--project",
                "proj-t3",
                "--type",
                "progress_update",
                "--type",
                "deployment_status",
                "--to",
                "rooms",
            )
            assert code == 0, err
            assert "selected:    2 events" in out
            assert "skipped:     1 invalid" in out
            sentinel = await progress(publisher, "proj-t1", "sentinel")
            await wait_for(lambda: any(event["id"] == sentinel.id for event in ws.events()))
            await wait_for(lambda: sentinel.id in queue.ids())
            assert queue.ids() == [sentinel.id]
    again = replayed(ws)
    assert [event["id"] for event in again] == [wanted_1.id, wanted_2.id]
    assert [event["replay_of"] for event in again] == [offsets[wanted_1.id], offsets[wanted_2.id]]
    assert [event["data"] for event in again] == [
        wanted_1.envelope["data"],
        wanted_2.envelope["data"],
    ]


async def test_dry_run_prints_count_and_sample_and_changes_nothing(
    bridge: RunningBridge,
    publisher: EventPublisher,
    amqp_connection: AbstractRobustConnection,
    amqp_url: str,
    prefix: str,
) -> None:
    """--dry-run prints the count and the first five events and appends nothing to the log
    (the next event gets the next offset) and sends nothing to the exchange."""
    async with websocket_client(f"{bridge.ws_url}/ws/ai/proj-d") as ws:
        await wait_for(lambda: bool(ws.replies("subscribed")))
        originals = [await progress(publisher, "proj-d", f"agent-{i}") for i in range(7)]
        live = await ws.wait_for_events(7)
        async with bound_queue(amqp_connection, prefix) as queue:
            code, out, err = await replay(amqp_url, prefix, "--since", "30m", "--dry-run")
            assert code == 0, err
            sentinel = await progress(publisher, "proj-d", "sentinel")
            await wait_for(lambda: sentinel.id in queue.ids())
            assert queue.ids() == [sentinel.id]
        events = await ws.wait_for_events(8)
    assert events[-1]["id"] == sentinel.id
    assert events[-1]["offset"] == live[-1]["offset"] + 1
    assert f"dry run: 7 events selected (original offsets {live[0]['offset']} to " in out
    ids = tuple(event.id for event in originals)
    rows = [line.split() for line in out.splitlines() if line.endswith(ids)]
    assert [row[-1] for row in rows] == [event.id for event in originals[:5]]
    assert [int(row[0]) for row in rows] == [event["offset"] for event in live[:5]]
    assert all(row[2:4] == ["progress_update", "proj-d"] for row in rows)


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--since", "3x", "--dry-run"], "'3x' is neither a duration (30m, 2h, 1d) nor an ISO"),
        (["--since", "2026-11-26T10:00", "--dry-run"], "has no time zone: add Z (UTC)"),
        (["--since", "1h", "--from-offset", "0"], "argument --from-offset: not allowed with"),
        (["--since", "1h", "--type", "nope"], "argument --type: invalid choice: 'nope'"),
        (["--from-offset", "9", "--to-offset", "3", "--dry-run"], "--to-offset 3 is before"),
        (["--from-offset", "0"], "say where to: --to exchange or --to rooms"),
    ],
)
async def test_bad_arguments_exit_2_with_a_sentence(
    amqp_url: str, prefix: str, args: list[str], sentence: str
) -> None:
    """Malformed or contradictory options exit 2 with a sentence saying what is wrong."""
    code, out, err = await replay(amqp_url, prefix, *args)
    assert code == 2
    assert sentence in err
    assert "Traceback" not in err
    assert out == ""


async def test_missing_log_exits_1_with_a_sentence(amqp_url: str, prefix: str) -> None:
    """Under a prefix whose log was never created, replay exits 1 saying to start the bridge."""
    code, _, err = await replay(amqp_url, prefix, "--since", "1h", "--dry-run")
    assert code == 1
    assert f"no event log {prefix}.log: start the bridge once (eventbridge serve)" in err
    assert "Traceback" not in err


@pytest.mark.serial  # a spread in time, measured: run with no other test beside it
async def test_rate_limits_how_fast_events_go_out(
    bridge: RunningBridge,
    publisher: EventPublisher,
    amqp_connection: AbstractRobustConnection,
    amqp_url: str,
    prefix: str,
) -> None:
    """--rate 100 spreads 50 replayed events over about half a second, where unlimited they
    arrive within a few milliseconds."""
    await publisher.publish_batch(
        [
            make_envelope("progress_update", "proj-rate", {"agent_id": "a", "progress": 0.1})
            for _ in range(50)
        ]
    )
    async with bound_queue(amqp_connection, prefix) as queue:
        code, _, err = await replay(
            amqp_url, prefix, "--from-offset", "0", "--to", "exchange", "--rate", "100"
        )
        assert code == 0, err
        await wait_for(lambda: len(queue.received) == 50)
    times = [arrived for _, arrived in queue.received]
    # The sender's schedule spans 0.49 s; seen at the receiving end the span is shorter by as
    # much as the first event was held up more than the last (a loaded machine: ~0.1 s).
    assert 0.3 <= times[-1] - times[0] < 5, times[-1] - times[0]


async def test_sigterm_stops_cleanly_and_the_printed_resume_completes_the_replay(
    bridge: RunningBridge,
    publisher: EventPublisher,
    amqp_connection: AbstractRobustConnection,
    amqp_url: str,
    prefix: str,
) -> None:
    """SIGTERM mid-replay stops after the confirms in flight with everything before the printed
    --from-offset delivered; running the printed resume delivers the rest, each event once."""
    envelopes = [
        make_envelope("progress_update", "proj-k", {"agent_id": f"a{i}", "progress": 0.1})
        for i in range(60)
    ]
    await publisher.publish_batch(envelopes)
    ids = [envelope.id for envelope in envelopes]
    async with bound_queue(amqp_connection, prefix) as queue:
        process = await asyncio.create_subprocess_exec(
            *EVENTBRIDGE,
            "replay",
            "--from-offset",
            "0",
            "--project",
            "proj-k",
            "--to",
            "exchange",
            "--rate",
            "20",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "EVENTBRIDGE_AMQP_URL": amqp_url, "EVENTBRIDGE_PREFIX": prefix},
        )
        await wait_for(lambda: len(queue.received) >= 10, timeout=20)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
        out = stdout.decode()
        assert process.returncode == 128 + signal.SIGTERM, stderr.decode()
        assert "stopped by SIGTERM after the confirms in flight" in out
        match = re.search(r"resume with (--from-offset (\d+) .*--to exchange .*)", out)
        assert match, out
        first_pass = queue.ids()
        assert 10 <= len(first_pass) < 60
        assert first_pass == ids[: len(first_pass)]
        next_offset = int(match.group(2))
        assert queue.messages()[-1].headers[REPLAY_OF_HEADER] == next_offset - 1
        code, _, err = await replay(amqp_url, prefix, *match.group(1).split(), "--rate", "1000")
        assert code == 0, err
        await wait_for(lambda: len(queue.received) >= 60)
        sentinel = await progress(publisher, "proj-k", "sentinel")
        await wait_for(lambda: sentinel.id in queue.ids())
    assert queue.ids() == [*ids, sentinel.id]
