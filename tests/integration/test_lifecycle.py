"""Start-up, graceful shutdown and restarts of the real `eventbridge serve` process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable

import aio_pika
import pytest
import websockets

from bridge.settings import Settings
from producers import EventPublisher, PublishedEvent
from tests.helpers import wait_for
from tests.integration.clients import socketio_client, websocket_client
from tests.integration.conftest import (
    EVENTBRIDGE,
    free_port,
    running_bridge,
    serve_process,
    wait_ready,
)


async def test_startup_without_broker_fails_with_one_clear_sentence(prefix: str) -> None:
    """With no broker, serve retries, then exits 1 with one sentence naming the URL, no password."""
    started = time.monotonic()
    async with serve_process(
        "amqp://guest:secret@127.0.0.1:1/", prefix, free_port(), EVENTBRIDGE_STARTUP_TIMEOUT="2"
    ) as process:
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    elapsed = time.monotonic() - started
    assert process.returncode == 1
    lines = stderr.decode().strip().splitlines()
    assert lines[-1].startswith(
        "eventbridge: cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/"
    )
    assert "EVENTBRIDGE_AMQP_URL" in lines[-1]
    assert "secret" not in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert 2 <= elapsed < 20


async def test_each_broker_retry_is_logged_on_one_line(prefix: str) -> None:
    """While the broker does not answer at start-up, each attempt logs exactly one line (no
    second line from the AMQP library), then one sentence ends it."""
    async with serve_process(
        "amqp://guest:guest@127.0.0.1:1/", prefix, free_port(), EVENTBRIDGE_STARTUP_TIMEOUT="2"
    ) as process:
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    *lines, last = stderr.decode().strip().splitlines()
    retries = [line for line in lines if "RabbitMQ is not reachable yet" in line]
    assert len(retries) >= 2, lines
    others = [line for line in lines if line not in retries and "anonymous mode" not in line]
    assert others == []
    assert last.startswith("eventbridge: cannot reach RabbitMQ")


@pytest.mark.parametrize("command", ["serve", "demo"])
async def test_a_port_in_use_is_said_at_once_naming_the_port_setting(
    amqp_url: str, prefix: str, command: str
) -> None:
    """`serve` and `demo` on a port another program listens on exit 1 before announcing the
    bridge ready, with one sentence naming EVENTBRIDGE_PORT and --port."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            *EVENTBRIDGE,
            command,
            "--port",
            str(port),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={
                **os.environ,
                "EVENTBRIDGE_AMQP_URL": amqp_url,
                "EVENTBRIDGE_PREFIX": prefix,
                "EVENTBRIDGE_AUTH": "anonymous",
            },
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    text = stderr.decode()
    assert process.returncode == 1, text
    last = text.strip().splitlines()[-1]
    assert f"port {port} on 127.0.0.1 is in use" in last
    assert "EVENTBRIDGE_PORT" in last
    assert "--port" in last
    assert "ready" not in text
    assert "Traceback" not in text
    assert b"dashboard" not in stdout


async def test_invalid_setting_is_refused_before_connecting(prefix: str) -> None:
    """A bad setting stops serve at once with exit 2 and a line naming the variable."""
    async with serve_process(
        "amqp://guest:guest@127.0.0.1:5672/", prefix, free_port(), EVENTBRIDGE_LOG_MAX_AGE="forever"
    ) as process:
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert "EVENTBRIDGE_LOG_MAX_AGE" in stderr.decode()


async def test_sigterm_shuts_down_gracefully_within_seconds(amqp_url: str, prefix: str) -> None:
    """SIGTERM closes each client with a reason it can read (WebSocket 1012 "restarting",
    Socket.IO `bridge-disconnect`), and the process exits 0 within a few seconds."""
    port = free_port()
    async with serve_process(amqp_url, prefix, port) as process:
        await wait_ready(port)
        async with (
            websockets.connect(f"ws://127.0.0.1:{port}/ws/ai/p1") as ws,
            socketio_client(f"http://127.0.0.1:{port}") as sio,
        ):
            await ws.recv()  # subscribed
            assert (await sio.call("join-project", "p1"))["ok"]
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 10)
            elapsed = time.monotonic() - started
            with contextlib.suppress(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1012
            assert ws.close_reason is not None
            assert "restarting" in ws.close_reason
            notices = [data for name, data in sio.received if name == "bridge-disconnect"]
        stderr = (await process.stderr.read()).decode() if process.stderr else ""
    assert code == 0, stderr
    assert elapsed < 5
    assert notices == [{"reason": "shutdown"}]
    assert "eventbridge stopped" in stderr


async def read_log_ids(
    connection: aio_pika.abc.AbstractConnection, log: str, wanted: set[str], timeout: float = 30
) -> list[str]:
    """Read the log stream from the start until every wanted message id was seen."""
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=500)
    queue = await channel.get_queue(log, ensure=False)
    seen: list[str] = []

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        if message.message_id:
            seen.append(message.message_id)
        await message.ack()

    await queue.consume(on_message, arguments={"x-stream-offset": "first"})
    await wait_for(lambda: wanted <= set(seen), timeout)
    await channel.close()
    return seen


async def test_restart_while_producers_publish_loses_nothing(
    bridge_settings: Callable[..., Settings],
    amqp_url: str,
    amqp_connection: aio_pika.abc.AbstractConnection,
    prefix: str,
) -> None:
    """The bridge stops and starts while a producer keeps publishing: every event is in the log,
    in order, and clients that join again receive live events."""
    settings = bridge_settings()
    published: list[PublishedEvent] = []
    stop = asyncio.Event()

    async def produce(publisher: EventPublisher) -> None:
        number = 0
        while not stop.is_set():
            number += 1
            published.append(
                await publisher.progress_update("p1", agent_id="a", progress=(number % 100) / 100)
            )
            await asyncio.sleep(0.005)

    async with EventPublisher(amqp_url, prefix=prefix) as publisher:
        async with running_bridge(settings) as first:
            producer = asyncio.create_task(produce(publisher))
            async with websocket_client(f"{first.ws_url}/ws/ai/p1") as ws:
                await ws.wait_for_events(20)
        count_at_stop = len(published)
        await wait_for(lambda: len(published) > count_at_stop + 50)  # published while down
        async with running_bridge(settings) as second:
            async with websocket_client(f"{second.ws_url}/ws/ai/p1") as ws:
                await wait_for(lambda: bool(ws.replies("subscribed")))
                live = await ws.wait_for_events(20)
            async with socketio_client(second.http_url) as sio:
                assert (await sio.call("join-project", "p1"))["ok"]
                await sio.wait_for_events(10)
            stop.set()
            await producer

    ids = [event.id for event in published]
    in_log = await read_log_ids(amqp_connection, f"{prefix}.log", set(ids))
    assert [event_id for event_id in in_log if event_id in set(ids)] == ids
    live_ids = [event["id"] for event in live]
    start = ids.index(live_ids[0])
    assert start >= count_at_stop  # published after the first bridge stopped
    assert ids[start : start + len(live_ids)] == live_ids
