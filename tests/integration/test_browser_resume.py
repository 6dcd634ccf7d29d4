"""The browser examples of docs/examples in headless Chromium: resume after a page reload.

Each page is served by a small static HTTP server started here, with the client library's bundle
next to it at /eventbridge-client.js (the Socket.IO page also gets the socket.io-client bundle at
/socket.io.min.js), opened in Chromium against a live bridge that
lists the page's origin in `allowed_origins` (it is another port, so another origin), sent
events, and reloaded while more events are published. The page must end with every event of its
rooms exactly once, in order per room, without a resync. A screenshot of each page is saved in
test-artifacts/. One variant runs against a bridge that requires tokens, the token pasted into the
page's Token field. These tests need Chromium (`apt-get install -y chromium`) and, for Socket.IO,
`npm ci --prefix tests/js`; without them they fail, saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web

from bridge.settings import Settings
from producers import EventPublisher, PublishedEvent
from tests import tokens
from tests.browser import Browser, BrowserError, ChromiumMissingError, Page
from tests.helpers import wait_for
from tests.integration.conftest import RunningBridge, free_port, running_bridge
from tests.integration.markers import before_markers, publish_feed_marker, publish_marker

# Under pytest-xdist these tests run on one worker, one after another: one Chromium at a time.
pytestmark = pytest.mark.xdist_group("browser")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
CLIENT_BUNDLE = ROOT / "bridge" / "dashboard" / "eventbridge-client.js"
SOCKETIO_BUNDLE = (
    ROOT / "tests" / "js" / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
)
ARTIFACTS = ROOT / "test-artifacts"
PROJECT = "p1"
OTHER = "p2"
PROJECT_ROOM = f"project:{PROJECT}"
FEED_ROOM = "activity-feed"
PAGE_DELAY = 0.3
"""Seconds the static server pauses in the middle of each page, before its last script, like a
slow network. The browser has already replaced the old page by then (a navigation commits on the
first bytes), so events published meanwhile reach the reloaded page only through its resume."""
BEFORE_RELOAD = 24
DURING_RELOAD = 48
PUBLISH_PAUSE = 0.02
"""Seconds between two events published around the reload (about 1.5 s of publishing)."""
WAIT = 30.0
"""Longest wait for the page to show what was published."""


# -- the static server -------------------------------------------------------------------------


@asynccontextmanager
async def static_server(files: dict[str, Path], port: int) -> AsyncIterator[str]:
    """Serve `files` (URL path → file) on a loopback port; yield the base URL.

    An HTML page is sent in two parts, `PAGE_DELAY` seconds apart, split before its last
    `<script>`. Nothing is cached, so a reload fetches everything again.
    """

    async def handle(request: web.Request) -> web.StreamResponse:
        path = files.get(request.path)
        if path is None:
            raise web.HTTPNotFound
        if path.suffix != ".html":
            return web.FileResponse(path, headers={"Cache-Control": "no-store"})
        body = path.read_bytes()
        split = body.rfind(b"<script>")
        response = web.StreamResponse(
            headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        await response.write(body[:split])
        await asyncio.sleep(PAGE_DELAY)
        await response.write(body[split:])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/{name}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium with a fresh profile (so empty localStorage), closed afterwards.

    Without Chromium the test fails with the driver's sentence saying what to install.
    """
    try:
        launched = await Browser.launch()
    except ChromiumMissingError as exc:
        missing = str(exc)
    else:
        async with launched:
            yield launched
        return
    pytest.fail(missing, pytrace=False)


# -- the events --------------------------------------------------------------------------------


async def publish_one(publisher: EventPublisher, number: int) -> PublishedEvent:
    """The n-th event: p1 state and activities, global and p2 activities (the feed), and a p2
    progress event that is in none of the page's rooms."""
    kind = number % 6
    if kind == 0:
        return await publisher.progress_update(
            PROJECT, agent_id=f"agent-{number // 6 % 3}", progress=(number % 100) / 100
        )
    if kind == 1:
        return await publisher.activity_created(PROJECT, actor="alice", action=f"edited #{number}")
    if kind == 2:
        return await publisher.activity_created(None, actor="system", action=f"announced #{number}")
    if kind == 3:
        return await publisher.activity_created(OTHER, actor="bob", action=f"commented #{number}")
    if kind == 4:
        return await publisher.agent_status(PROJECT, agent_id="agent-1", status="running")
    return await publisher.progress_update(OTHER, agent_id="agent-9", progress=0.5)


async def publish_range(
    publisher: EventPublisher, numbers: range, published: list[PublishedEvent], pause: float
) -> None:
    """Publish events one by one (each confirmed before the next), appending to `published`."""
    for number in numbers:
        published.append(await publish_one(publisher, number))
        await asyncio.sleep(pause)


def counted_room(event: PublishedEvent) -> str | None:
    """The page room an event is counted in (docs/delivery-guarantees.md): the project room for
    every p1 event, the feed for other activities, None for events of neither room."""
    if event.envelope["project_id"] == PROJECT:
        return PROJECT_ROOM
    if event.envelope["type"] == "activity_created":
        return FEED_ROOM
    return None


async def wait_received(page: Page, events: list[PublishedEvent]) -> None:
    """Wait until every one of `events` is in the page's `window.received`; on timeout, fail
    saying how many and which are missing."""
    ids = [event.id for event in events]
    check = f"{json.dumps(ids)}.filter((id) => !window.received.includes(id))"
    try:
        await page.wait_for(f"{check}.length === 0", timeout=WAIT)
    except TimeoutError:
        missing = await page.evaluate(check)
        raise AssertionError(
            f"{len(missing)} of {len(ids)} events never reached the page within {WAIT} s: "
            f"{missing[:5]}..."
        ) from None


async def wait_joined(page: Page) -> list[dict[str, Any]]:
    """Wait until the page has joined both rooms on its current connection; return the joins."""
    joins: list[dict[str, Any]] = await page.wait_for(
        "window.joins && window.joins.length === 2 && window.joins", timeout=15
    )
    assert [join["room"] for join in joins] == [PROJECT_ROOM, FEED_ROOM]
    return joins


# -- the scenario ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the page showed, as read from the page once everything arrived."""

    published: list[PublishedEvent]
    received: list[str]
    shown: list[dict[str, Any]]
    joins: list[dict[str, Any]]
    resyncs: list[dict[str, Any]]


async def enter_token(page: Page, token: str) -> None:
    """Wait until the page says the bridge wants a token, then paste `token` into its Token
    field and submit, as a user would (the page stores it and reloads)."""
    # The refusal comes first (window.authError), the close that shows it in the status line
    # after it: wait for both.
    await page.wait_for(
        "window.authError?.code === 'auth_required'"
        " && document.getElementById('status').textContent.includes('auth_required')",
        timeout=15,
    )
    status = await page.evaluate("document.getElementById('status').textContent")
    assert "auth_required" in status, status
    await page.evaluate("document.getElementById('token-input').focus()")
    await page.call("Input.insertText", {"text": token})
    await page.evaluate("document.getElementById('token-form').requestSubmit()")


async def reload_while_publishing(
    page: Page, bridge: RunningBridge, publisher: EventPublisher, url: str, token: str | None
) -> Outcome:
    """Open the page (giving it `token` if any), show events, reload it while more are
    published, wait for all of them."""
    await page.navigate(url, timeout=15)
    if token is not None:
        await enter_token(page, token)
    first_joins = await wait_joined(page)
    assert all(join["since"] is None for join in first_joins)  # a fresh page: fresh joins

    published: list[PublishedEvent] = []
    await publish_range(publisher, range(BEFORE_RELOAD), published, pause=0)
    await wait_received(page, [e for e in published if counted_room(e)])
    transport = "socketio" if "resume-socketio" in url else "websocket"
    store = f"eventbridge-example:{transport}:{bridge.http_url}:{PROJECT}"
    stored = await page.evaluate(f"JSON.parse(localStorage.getItem('{store}:resume'))")
    assert set(stored["offsets"]) == {PROJECT_ROOM, FEED_ROOM}

    # Publish throughout the reload: start first, reload once a few events are out.
    publishing = asyncio.create_task(
        publish_range(
            publisher, range(BEFORE_RELOAD, BEFORE_RELOAD + DURING_RELOAD), published, PUBLISH_PAUSE
        )
    )
    try:
        await wait_for(lambda: len(published) >= BEFORE_RELOAD + 3, timeout=WAIT)
        at_reload = len(published)
        await page.reload(timeout=15)
        joins = await wait_joined(page)
        at_join = len(published)
        await asyncio.wait_for(publishing, WAIT)
    finally:
        if not publishing.done():
            publishing.cancel()
        await asyncio.gather(publishing, return_exceptions=True)
    assert at_join > at_reload, "no event was published while the page reloaded"

    await wait_received(page, [e for e in published if counted_room(e)])
    # One marker per room, published last: once the page shows both, anything wrongly
    # delivered before them (a late duplicate) is shown too (tests/integration/markers.py).
    markers = [await publish_marker(publisher, PROJECT), await publish_feed_marker(publisher)]
    await wait_received(page, markers)
    received: list[str] = await page.evaluate("window.received")
    last = max(received.index(marker.id) for marker in markers)
    assert received[last + 1 :] == [], "shown after the markers, published last"
    marker_ids = {marker.id for marker in markers}
    shown = await page.evaluate(f"JSON.parse(localStorage.getItem('{store}:events'))")
    return Outcome(
        published=published,
        received=[received[index] for index in before_markers(received, markers)],
        shown=[item for item in shown if item["id"] not in marker_ids],
        joins=joins,
        resyncs=await page.evaluate("window.resyncs"),
    )


def check_exactly_once(outcome: Outcome) -> None:
    """Every event of the page's rooms shown once, in publish order per room, none other; the
    reloaded page resumed (no resync) and got some of them through its catch-up."""
    wanted = [event for event in outcome.published if counted_room(event)]
    received = outcome.received
    duplicates = {event_id: n for event_id, n in Counter(received).items() if n > 1}
    assert not duplicates, f"shown more than once: {duplicates}"
    assert set(received) == {event.id for event in wanted}, "missing or unexpected events"
    for room in (PROJECT_ROOM, FEED_ROOM):
        expected = [event.id for event in wanted if counted_room(event) == room]
        in_room = set(expected)
        assert [event_id for event_id in received if event_id in in_room] == expected, room
    assert not outcome.resyncs, outcome.resyncs
    # Both rooms resumed from the offsets stored before the reload...
    assert all(isinstance(join["since"], int) for join in outcome.joins), outcome.joins
    # ...and events published while the page was away came through the catch-up.
    caught_up = [
        item
        for item in outcome.shown
        for join in outcome.joins
        if item["room"] == join["room"] and join["since"] < item["offset"] <= join["offset"]
    ]
    assert caught_up, "no event reached the reloaded page through its catch-up"


async def run_example(
    bridge_settings: Callable[..., Settings],
    publisher: EventPublisher,
    page_name: str,
    token: str | None = None,
) -> None:
    """Serve an example page, run the reload scenario in Chromium against a bridge that allows
    the page's origin (and, given a `token`, requires tokens), save a screenshot, check."""
    files = {f"/{page_name}": EXAMPLES / page_name, "/eventbridge-client.js": CLIENT_BUNDLE}
    if "socketio" in page_name:
        if not SOCKETIO_BUNDLE.is_file():
            pytest.fail(
                f"{SOCKETIO_BUNDLE.relative_to(ROOT)} is missing: run `npm ci --prefix tests/js`.",
                pytrace=False,
            )
        files["/socket.io.min.js"] = SOCKETIO_BUNDLE
    page_port = free_port()
    auth: dict[str, Any] = {}
    if token is not None:
        auth = {"auth": "jwt", "jwt_secret": tokens.SECRET, "jwt_issuer": tokens.ISSUER}
    settings = bridge_settings(allowed_origins=[f"http://127.0.0.1:{page_port}"], **auth)
    suffix = "-jwt" if token is not None else ""
    screenshot = ARTIFACTS / f"browser-{page_name.removesuffix('.html')}{suffix}.png"
    async with (
        running_bridge(settings) as bridge,
        chromium() as browser,
        static_server(files, page_port) as base,
    ):
        query = urlencode({"bridge": bridge.http_url, "project": PROJECT})
        page = await browser.new_page()
        try:
            outcome = await reload_while_publishing(
                page, bridge, publisher, f"{base}/{page_name}?{query}", token
            )
            if token is not None:
                kept = await page.evaluate(
                    f"[location.href.includes({json.dumps(token)}),"
                    f" Object.values(localStorage).some((v) => v.includes({json.dumps(token)})),"
                    f" Object.values(sessionStorage).includes({json.dumps(token)})]"
                )
                assert kept == [False, False, True], "the token is not in sessionStorage only"
        finally:
            with contextlib.suppress(BrowserError, TimeoutError):
                await page.screenshot(screenshot)
    check_exactly_once(outcome)
    problems = [m for m in page.console if m.level in ("error", "exception")]
    assert not problems, problems


async def test_websocket_page_resumes_after_reload_exactly_once(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """The WebSocket example reloaded mid-stream shows every event of its rooms once, in order."""
    await run_example(bridge_settings, publisher, "resume-websocket.html")


async def test_socketio_page_resumes_after_reload_exactly_once(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """The Socket.IO example reloaded mid-stream shows every event of its rooms once, in order."""
    await run_example(bridge_settings, publisher, "resume-socketio.html")


@pytest.mark.parametrize("page_name", ["resume-websocket.html", "resume-socketio.html"])
async def test_page_with_a_token_resumes_after_reload_on_a_bridge_that_requires_tokens(
    bridge_settings: Callable[..., Settings], publisher: EventPublisher, page_name: str
) -> None:
    """On a jwt bridge, each example takes a pasted token and still resumes exactly once."""
    token = tokens.hs256(projects=[PROJECT], activity_feed=True)
    await run_example(bridge_settings, publisher, page_name, token)
