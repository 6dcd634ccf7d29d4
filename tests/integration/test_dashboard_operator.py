"""The live dashboard's operator panel, in headless Chromium against a real bridge: this
replica's connections, events/s, lag, latency and dead letters, updating live from the same
numbers `/metrics` serves. A screenshot is saved as test-artifacts/dashboard-operator.png."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from bridge.settings import Settings
from producers import EventPublisher
from tests.browser import Browser, ChromiumMissingError
from tests.integration.clients import websocket_client
from tests.integration.conftest import running_bridge
from tests.integration.metrics_scrape import scrape, value
from tests.integration.test_dead_letters import INVALID, publish_raw

pytestmark = pytest.mark.xdist_group("browser")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PANEL_JS = """
(() => {
  const text = (id) => document.getElementById(id).textContent;
  return {polls: window.operatorPanel.polls, last: window.operatorPanel.last,
          websocket: text('op-websocket'), dead: text('op-dead'), p50: text('op-p50'),
          events: text('op-events')};
})()
"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium with a fresh profile, closed afterwards."""
    try:
        launched = await Browser.launch(window_size=(1440, 900))
    except ChromiumMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    async with launched:
        yield launched


async def test_the_operator_panel_shows_the_bridges_numbers_live(
    browser: Browser,
    bridge_settings: Callable[..., Settings],
    publisher: EventPublisher,
    amqp_connection: aio_pika.abc.AbstractConnection,
    prefix: str,
) -> None:
    """With a client connected, events flowing and two invalid messages, the panel shows the
    connection, a non-zero events/s, a latency p50, and the two dead letters, the same as a
    scrape of /metrics says."""
    async with (
        running_bridge(bridge_settings()) as bridge,
        websocket_client(f"{bridge.ws_url}/ws/ai/p1"),
    ):
        page = await browser.new_page()
        await page.navigate(f"{bridge.http_url}/", timeout=15)
        await page.wait_for("window.operatorPanel && window.operatorPanel.polls >= 1", timeout=10)
        for reason in ("invalid_json", "unknown_type"):
            await publish_raw(amqp_connection, prefix, *INVALID[reason])

        async def keep_publishing() -> None:
            while True:
                await publisher.progress_update("p1", agent_id="a", progress=0.5)
                await asyncio.sleep(0.05)

        flowing = asyncio.create_task(keep_publishing())
        try:
            await page.wait_for(
                "(() => { const last = window.operatorPanel.last;"
                " return last && last.eventsPerSecond > 0 && last.p50 !== null"
                " && last.deadLetters === 2 && last.websocket >= 1; })()",
                timeout=20,
            )
            shown: dict[str, Any] = await page.evaluate(PANEL_JS)
            ARTIFACTS.mkdir(exist_ok=True)
            path = await page.screenshot(ARTIFACTS / "dashboard-operator.png")
        finally:
            flowing.cancel()
        samples = await scrape(f"{bridge.http_url}/metrics")
    assert shown["dead"] == "2"
    assert int(shown["websocket"]) >= 1
    assert shown["p50"].endswith("ms") or shown["p50"].endswith(" s"), shown
    assert float(shown["events"]) > 0, shown
    dead = sum(value(samples, "eventbridge_dead_letters_total", reason=r) for r in INVALID)
    assert dead == 2
    assert path.stat().st_size > 10_000
    problems = [m for m in page.console if m.level in ("error", "exception")]
    assert not problems, problems


async def test_no_operator_numbers_where_metrics_are_not_served(
    bridge_settings: Callable[..., Settings],
) -> None:
    """With the metrics on an internal port, the main port serves neither /metrics nor the
    panel's /api/operator."""
    async with (
        running_bridge(bridge_settings(metrics_port=1)) as bridge,
        httpx.AsyncClient() as http,
    ):
        for path in ("/metrics", "/api/operator"):
            assert (await http.get(f"{bridge.http_url}{path}")).status_code == 404, path
