"""`/metrics`: what operators graph and alert on rises with what happens, scraped and parsed
as Prometheus does."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable

import aio_pika
import httpx
import pytest
import websockets

from bridge.edge.metrics.collector import ROUTING_RECENT_SECONDS
from bridge.settings import Settings
from producers import EventPublisher
from tests import tokens
from tests.integration.clients import websocket_client
from tests.integration.conftest import free_port, running_bridge, serve_process, wait_ready
from tests.integration.metrics_scrape import parse, scrape, value, wait_for_sample
from tests.integration.test_dead_letters import INVALID, publish_raw
from tests.integration.test_slow_consumer import LINE, stuck_websocket

WAITED = 0.2
"""Seconds between the last event published while the bridge is stopped and SIGCONT."""


async def test_valid_events_and_invalid_messages_are_counted(
    bridge_settings: Callable[..., Settings],
    publisher: EventPublisher,
    amqp_connection: aio_pika.abc.AbstractConnection,
    prefix: str,
) -> None:
    """After N valid events the events counter rose by N (by type) and the latency histogram
    counted them; after 3 invalid messages the dead-letter counter rose by 3 with their
    reasons."""
    async with running_bridge(bridge_settings()) as bridge:
        url = f"{bridge.http_url}/metrics"
        before = await scrape(url)
        events = 7
        async with websocket_client(f"{bridge.ws_url}/ws/ai/p1") as client:
            for number in range(events):
                await publisher.progress_update("p1", agent_id="a", progress=number / 10)
            await client.wait_for_events(events, timeout=10)
        after = await wait_for_sample(
            url,
            lambda s: (
                value(s, "eventbridge_events_read_total", type="progress_update")
                >= value(before, "eventbridge_events_read_total", type="progress_update") + events
            ),
        )
        read = "eventbridge_events_read_total"
        assert (
            value(after, read, type="progress_update") - value(before, read, type="progress_update")
            == events
        )
        assert value(after, "eventbridge_deliveries_total", transport="websocket") >= events
        assert value(after, "eventbridge_delivered_bytes_total", transport="websocket") > 0
        assert value(after, "eventbridge_delivery_latency_seconds_count", clock="producer") >= (
            events
        )
        assert value(after, "eventbridge_connections_opened_total", transport="websocket") == 1
        reasons = ("invalid_json", "unknown_type", "too_large")
        for reason in reasons:
            await publish_raw(amqp_connection, prefix, *INVALID[reason])
        dead = "eventbridge_dead_letters_total"
        after = await wait_for_sample(
            url, lambda s: sum(value(s, dead, reason=r) for r in reasons) >= 3
        )
        for reason in reasons:
            assert value(after, dead, reason=reason) - value(before, dead, reason=reason) == 1
        assert value(after, dead, reason="invalid_data") == 0
        assert (
            value(after, read, type="progress_update") - value(before, read, type="progress_update")
            == events
        )


@pytest.mark.xdist_group("load")
async def test_a_client_cut_as_slow_is_counted(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """A client that stops reading in a busy room is disconnected as slow, and the closed
    counter says so (reason `slow_consumer`)."""
    settings = bridge_settings(outbox_max_bytes=256 * 1024)
    async with running_bridge(settings) as bridge:
        url = f"{bridge.http_url}/metrics"
        closed = "eventbridge_connections_closed_total"
        stuck = await stuck_websocket(bridge.port, "/ws/ai/p1")
        for number in range(800):
            await publisher.deployment_log(
                "p1", deployment_id="d", stream="stdout", line=f"{number} {LINE}"
            )
        after = await wait_for_sample(
            url,
            lambda s: value(s, closed, transport="websocket", reason="slow_consumer") >= 1,
            timeout=20,
        )
        assert value(after, closed, transport="websocket", reason="slow_consumer") == 1
        assert value(after, "eventbridge_outbox_high_water_frames", transport="websocket") > 0
        stuck[1].close()


async def test_a_refused_token_is_counted(bridge_settings: Callable[..., Settings]) -> None:
    """A native WebSocket client with an invalid token is refused, the auth refusal counter
    rises under its code, and its connection counts as closed for that (`auth_refused`)."""
    settings = bridge_settings(auth="jwt", jwt_secret=tokens.SECRET, jwt_issuer=tokens.ISSUER)
    async with running_bridge(settings) as bridge:
        url = f"{bridge.http_url}/metrics"
        async with websockets.connect(f"{bridge.ws_url}/ws/ai/p1") as connection:
            await connection.send(json.dumps({"type": "auth", "token": tokens.unsigned()}))
            answer = json.loads(await asyncio.wait_for(connection.recv(), 5))
        assert answer["code"] == "invalid_token", answer
        after = await wait_for_sample(
            url, lambda s: value(s, "eventbridge_auth_refusals_total", code="invalid_token") >= 1
        )
        assert value(after, "eventbridge_auth_refusals_total", code="invalid_token") == 1
        assert value(after, "eventbridge_auth_refusals_total", code="token_expired") == 0
        closed = "eventbridge_connections_closed_total"
        after = await wait_for_sample(
            url, lambda s: value(s, closed, transport="websocket", reason="auth_refused") >= 1
        )
        assert value(after, closed, transport="websocket", reason="client") == 0


@pytest.mark.serial  # the lag depends on how fast the bridge catches up: nothing else beside it
async def test_lag_rises_while_the_bridge_is_stopped_and_falls_after(
    amqp_url: str, prefix: str, publisher: EventPublisher
) -> None:
    """With the bridge stopped (SIGSTOP) while events are published, the lag in seconds is up in
    scrapes while it catches up (what it routes is old), and back to 0 once it has, with no
    record waiting."""
    port = free_port()
    settings = {"EVENTBRIDGE_CONSUMER_PREFETCH": "100"}
    async with serve_process(amqp_url, prefix, port, settings=settings) as process:
        await wait_ready(port)
        url = f"http://127.0.0.1:{port}/metrics"
        await publisher.progress_update("p1", agent_id="a", progress=0.0)
        await wait_for_sample(url, lambda s: value(s, "eventbridge_events_read_total",
                                                   type="progress_update") >= 1)  # fmt: skip
        process.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(1.5)  # the newest routed event ages while the bridge is stopped
            for number in range(3000):
                await publisher.progress_update("p1", agent_id=f"a{number % 50}", progress=0.5)
            # Scraped from the moment it runs again until it has caught up. Every event it
            # routes meanwhile was published before SIGCONT, at least `WAITED` seconds earlier.
            async with httpx.AsyncClient() as http:
                first = asyncio.create_task(http.get(url, timeout=20))
                await asyncio.sleep(WAITED)  # sent while it is stopped: answered once it runs
                process.send_signal(signal.SIGCONT)
                scrapes = [parse((await first).text)]
                while value(scrapes[-1], "eventbridge_events_read_total",
                            type="progress_update") < 3001:  # fmt: skip
                    scrapes.append(parse((await http.get(url, timeout=20)).text))
        finally:
            process.send_signal(signal.SIGCONT)
        lagging = [s for s in scrapes if value(s, "eventbridge_log_lag_seconds") >= WAITED]
        assert lagging, f"none of {len(scrapes)} scrapes during the catch-up showed the lag"
        assert all(value(s, "eventbridge_log_lag_records") <= 100 for s in scrapes)  # ≤ prefetch
        await asyncio.sleep(ROUTING_RECENT_SECONDS + 0.5)  # caught up, and nothing routed since
        caught_up = await scrape(url)
        assert value(caught_up, "eventbridge_events_read_total", type="progress_update") == 3001
        assert value(caught_up, "eventbridge_log_lag_records") == 0
        assert value(caught_up, "eventbridge_log_lag_seconds") == 0


async def test_metrics_can_move_to_another_port_or_be_turned_off(
    amqp_url: str, prefix: str
) -> None:
    """With EVENTBRIDGE_METRICS_PORT the metrics are served there and not on the main port;
    with EVENTBRIDGE_METRICS=false they are served nowhere."""
    port, metrics_port = free_port(), free_port()
    settings = {"EVENTBRIDGE_METRICS_PORT": str(metrics_port)}
    async with serve_process(amqp_url, prefix, port, settings=settings):
        await wait_ready(port)
        samples = await scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        assert value(samples, "eventbridge_broker_connected") == 1
        assert value(samples, "process_cpu_seconds_total") > 0
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/metrics")).status_code == 404
    port = free_port()
    async with serve_process(amqp_url, prefix, port, settings={"EVENTBRIDGE_METRICS": "false"}):
        await wait_ready(port)
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/metrics")).status_code == 404
