"""The service's log as operators collect it: JSON lines with the ids involved, and never a
token, not even one a client put in a URL's query string; and trace context from producer to
client and log."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Callable

import aio_pika
import pytest
import websockets
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from bridge.settings import Settings
from producers import EventPublisher
from tests import tokens
from tests.helpers import wait_for
from tests.integration.clients import websocket_client
from tests.integration.conftest import free_port, running_bridge, serve_process, wait_ready
from tests.integration.test_dead_letters import INVALID, publish_raw
from tests.unit.test_tracing import SPAN_ID, TRACE_ID, TRACEPARENT

JWT = {
    "EVENTBRIDGE_AUTH": "jwt",
    "EVENTBRIDGE_JWT_SECRET": tokens.SECRET,
    "EVENTBRIDGE_JWT_ISSUER": tokens.ISSUER,
}


async def test_json_logs_carry_ids_and_no_token(
    amqp_url: str, prefix: str, amqp_connection: aio_pika.abc.AbstractConnection
) -> None:
    """With EVENTBRIDGE_LOG_FORMAT=json every line of the log is one JSON object (time, level,
    logger, message) with the ids involved as fields; a token sent in a URL's query string (on
    both transports' handshakes) or in an auth message appears in no line, and query strings
    are dropped from uvicorn's handshake lines."""
    port = free_port()
    valid, refused = tokens.hs256(), tokens.unsigned()
    settings = {**JWT, "EVENTBRIDGE_LOG_FORMAT": "json", "EVENTBRIDGE_LOG_LEVEL": "info"}
    async with serve_process(amqp_url, prefix, port, settings=settings) as process:
        await wait_ready(port)
        base = f"ws://127.0.0.1:{port}"
        async with websockets.connect(f"{base}/ws/ai/p1?token={valid}") as connection:
            await connection.send(json.dumps({"type": "auth", "token": refused}))
            answer = json.loads(await asyncio.wait_for(connection.recv(), 5))
            assert answer["code"] == "invalid_token", answer
        socketio_url = f"{base}/socket.io/?EIO=4&transport=websocket&token={valid}"
        async with websockets.connect(socketio_url) as connection:
            await asyncio.wait_for(connection.recv(), 5)  # Engine.IO's open packet
        await publish_raw(amqp_connection, prefix, *INVALID["invalid_json"])
        await asyncio.sleep(1.0)  # the dead letter is written and logged
        process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        output = (await asyncio.wait_for(process.stderr.read(), 20)).decode()
        await asyncio.wait_for(process.wait(), 20)
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert lines, "the bridge logged nothing"
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
    for secret in (valid, refused, "eyJ", "token="):
        assert secret not in output, f"{secret[:12]}… appears in the log"
    refusals = [line for line in lines if line.get("reason") == "invalid_token"]
    assert refusals, lines
    assert refusals[0]["connection_id"].startswith("ws-"), refusals
    assert refusals[0]["transport"] == "websocket"
    dead = [line for line in lines if line.get("reason") == "invalid_json"]
    assert dead, lines
    assert isinstance(dead[0]["offset"], int), dead
    handshakes = [line for line in lines if '"WebSocket /' in line["message"]]
    assert len(handshakes) >= 2, lines
    assert all("?<query dropped>" in line["message"] for line in handshakes), handshakes


async def test_trace_context_reaches_the_client_and_the_log(
    bridge_settings: Callable[..., Settings],
    publisher: EventPublisher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An event published inside an OpenTelemetry span reaches a client with the
    span's `traceparent`, and the bridge's log line about it names the same trace context."""
    caplog.set_level(logging.DEBUG, logger="bridge.broker.session")
    context = SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_flags=TraceFlags(1))
    async with (
        running_bridge(bridge_settings()) as bridge,
        websocket_client(f"{bridge.ws_url}/ws/ai/p1") as client,
    ):
        await wait_for(lambda: bool(client.replies("subscribed")))
        with trace.use_span(NonRecordingSpan(context)):
            published = await publisher.progress_update("p1", agent_id="a", progress=0.5)
        [event] = await client.wait_for_events(1)
    assert event["id"] == published.id
    assert event["traceparent"] == TRACEPARENT
    routed = [r for r in caplog.records if getattr(r, "event_id", None) == published.id]
    assert routed, "no log line names the event"
    assert routed[0].__dict__["traceparent"] == TRACEPARENT
