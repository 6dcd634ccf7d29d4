"""The live dashboard the bridge serves at `/`, in headless Chromium against a real bridge.

The page is read the way a user sees it (badges, progress bars, log lines in the DOM), and through
`window.dashboard` (`received`: the ids of the events it processed, across reloads of the tab).
These tests need Chromium (`apt-get install -y chromium`); without it they fail, saying so.
A screenshot of a realistic demo stream is saved as test-artifacts/dashboard.png. Most tests run
against an anonymous bridge; those under "authentication" against one that requires tokens (the
token form refusing a token is saved as test-artifacts/dashboard-token.png).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.broker.eventlog import REPLAY_OF_HEADER
from bridge.settings import Settings
from producers import EventPublisher, PublishedEvent
from producers.demo import run_demo
from schemas.envelope import Envelope
from tests import tokens
from tests.browser import Browser, ChromiumMissingError, Page
from tests.helpers import wait_for
from tests.integration.clients import websocket_client
from tests.integration.conftest import RunningBridge, running_bridge
from tests.integration.markers import (
    before_markers,
    events_before,
    publish_feed_marker,
    publish_marker,
)

# Under pytest-xdist these tests run on one worker, one after another: one Chromium at a time.
pytestmark = pytest.mark.xdist_group("browser")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
PROJECT = "p1"
OTHER = "p2"
WAIT = 20.0
"""Longest wait for the page to show what was published."""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium with a fresh profile (so empty storage), closed afterwards."""
    try:
        launched = await Browser.launch(window_size=(1440, 1000))
    except ChromiumMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    async with launched:
        yield launched


async def open_dashboard(browser: Browser, bridge: RunningBridge, project: str = PROJECT) -> Page:
    """Open the dashboard for `project` and wait until it is live."""
    page = await browser.new_page()
    await page.navigate(f"{bridge.http_url}/?project={project}", timeout=15)
    await wait_live(page)
    return page


async def wait_live(page: Page) -> None:
    """Wait until the connection pill says the page is live (both rooms joined)."""
    await page.wait_for(
        "document.getElementById('connection').dataset.state === 'live'"
        " && document.getElementById('connection-text').textContent === 'Live'",
        timeout=15,
    )


def assert_no_console_errors(page: Page) -> None:
    """The page logged no error and threw no exception."""
    problems = [m for m in page.console if m.level in ("error", "exception")]
    assert not problems, problems


def all_received_js(events: list[PublishedEvent]) -> str:
    """A JavaScript expression: has the page applied every one of these events?"""
    ids = json.dumps([event.id for event in events])
    return f"{ids}.every((id) => window.dashboard.received.includes(id))"


async def received_before_markers(page: Page, publisher: EventPublisher) -> list[str]:
    """Publish a marker to each of the page's rooms (the project's, the feed) and wait until
    the page has applied both; return the ids the page applied before them (tests/integration/
    markers.py: anything wrongly delivered before the markers has been applied by then). Fails
    if the page applied anything after them."""
    markers = [await publish_marker(publisher, PROJECT), await publish_feed_marker(publisher)]
    await page.wait_for(all_received_js(markers), timeout=WAIT)
    received: list[str] = await page.evaluate("window.dashboard.received")
    before = before_markers(received, markers)
    last = max(received.index(marker.id) for marker in markers)
    assert received[last + 1 :] == [], "applied after the markers, published last"
    return [received[index] for index in before]


AGENT_CARD_JS = """
(() => {
  const card = document.querySelector(`[data-agent="${AGENT}"]`);
  if (!card) return null;
  const text = (selector) => card.querySelector(selector)?.textContent ?? null;
  return {
    status: text(".badge"),
    valuenow: card.querySelector("[role=progressbar]").getAttribute("aria-valuenow"),
    percent: text(".percent"),
    stage: text(".stage"),
    message: text(".message"),
    artifacts: [...card.querySelectorAll(".artifact-name")].map((node) => node.textContent),
    error: text(".error-code"),
  };
})()
"""


async def agent_card(page: Page, agent: str) -> dict[str, Any] | None:
    """What the agent's card shows, or None when there is no card."""
    card: dict[str, Any] | None = await page.evaluate(
        AGENT_CARD_JS.replace("${AGENT}", json.dumps(agent)[1:-1])
    )
    return card


async def wait_agent(page: Page, agent: str, **expected: Any) -> dict[str, Any]:
    """Wait until the agent's card shows every `expected` field; return the card."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    card = None
    while loop.time() < deadline:
        card = await agent_card(page, agent)
        if card is not None and all(card[key] == value for key, value in expected.items()):
            return card
        await asyncio.sleep(0.05)
    raise AssertionError(f"{agent} never showed {expected}; last: {card}")


async def test_agent_events_show_status_progress_and_results(
    browser: Browser, bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """Agent events of the project appear live with their status, progress, artifacts, errors."""
    page = await open_dashboard(browser, bridge)
    assert await page.evaluate("document.title") == f"{PROJECT} · eventbridge"

    await publisher.agent_status(PROJECT, agent_id="agent-1", status="running")
    await publisher.agent_status(OTHER, agent_id="agent-elsewhere", status="running")
    await publisher.progress_update(
        PROJECT, agent_id="agent-1", progress=0.75, stage="generating", message="writing main.tf"
    )
    card = await wait_agent(page, "agent-1", percent="75%")
    assert card["status"] == "running"
    assert card["valuenow"] == "75"
    assert card["stage"] == "generating"
    assert card["message"] == "writing main.tf"

    await publisher.generation_complete(
        PROJECT,
        agent_id="agent-1",
        artifacts=[{"name": "main.tf", "kind": "terraform"}, {"name": "variables.tf"}],
        summary="2 files",
    )
    await publisher.agent_status(PROJECT, agent_id="agent-1", status="succeeded")
    await publisher.agent_status(PROJECT, agent_id="agent-2", status="running")
    await publisher.error(
        PROJECT, agent_id="agent-2", code="RATE_LIMITED", message="slow down", retryable=True
    )
    await publisher.agent_status(PROJECT, agent_id="agent-2", status="failed")

    card = await wait_agent(page, "agent-1", status="succeeded")
    assert card["valuenow"] == "100"
    assert card["artifacts"] == ["main.tf", "variables.tf"]
    failed = await wait_agent(page, "agent-2", status="failed")
    assert failed["error"] == "RATE_LIMITED"
    colors = await page.evaluate(
        "['agent-1', 'agent-2'].map((id) => getComputedStyle(document.querySelector("
        '`[data-agent="${id}"] .badge`)).color)'
    )
    assert colors[0] != colors[1], "succeeded and failed badges must differ in color"
    # Another project's agent is not shown.
    assert await agent_card(page, "agent-elsewhere") is None
    assert_no_console_errors(page)


DEPLOYMENT_JS = """
(() => {
  const card = document.querySelector('[data-deployment="dep-1"]');
  if (!card) return null;
  return {
    status: card.querySelector(".badge").textContent,
    valuenow: card.querySelector("[role=progressbar]").getAttribute("aria-valuenow"),
    lines: [...card.querySelectorAll(".log-line")].map((node) => ({
      text: node.textContent,
      stderr: node.classList.contains("stderr"),
      color: getComputedStyle(node).color,
    })),
  };
})()
"""

FEED_JS = """
[...document.querySelectorAll("#feed .feed-item")].map((item) => ({
  line: item.querySelector(".feed-line").textContent,
  priority: item.querySelector(".badge").textContent,
  meta: item.querySelector(".feed-meta").textContent,
}))
"""


async def test_deployments_logs_and_activity_appear(
    browser: Browser, bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """A deployment shows its status, progress and log lines (stderr in red); activities list
    newest first with actor, action, target and priority, from any project."""
    page = await open_dashboard(browser, bridge)
    published = [
        await publisher.deployment_status(
            PROJECT, deployment_id="dep-1", status="in_progress", progress=0.4, message="apply"
        ),
        await publisher.deployment_log(
            PROJECT, deployment_id="dep-1", stream="stdout", line="aws_vpc.main: Creating..."
        ),
        await publisher.deployment_log(
            PROJECT, deployment_id="dep-1", stream="stderr", line="Error: quota exceeded"
        ),
        await publisher.activity_created(
            PROJECT, actor="alice", action="approved", target="main.tf", priority="high"
        ),
        await publisher.activity_created(
            None, actor="system", action="paused deployments", priority="critical"
        ),
    ]
    await page.wait_for(all_received_js(published), timeout=WAIT)
    await page.wait_for("document.querySelectorAll('#feed .feed-item').length === 2", timeout=5)

    deployment = await page.evaluate(DEPLOYMENT_JS)
    assert deployment["status"] == "in progress"
    assert deployment["valuenow"] == "40"
    lines = deployment["lines"]
    assert [line["text"] for line in lines] == [
        "aws_vpc.main: Creating...",
        "Error: quota exceeded",
    ]
    assert [line["stderr"] for line in lines] == [False, True]
    red, green, blue = (int(part) for part in lines[1]["color"][4:-1].split(","))
    assert red > 150, lines[1]["color"]
    assert max(green, blue) < 80, lines[1]["color"]

    feed = await page.evaluate(FEED_JS)
    assert [item["line"] for item in feed] == [
        "system paused deployments",
        "alice approved main.tf",
    ]
    assert [item["priority"] for item in feed] == ["critical", "high"]
    assert "global" in feed[0]["meta"]
    assert PROJECT in feed[1]["meta"]
    assert_no_console_errors(page)


STEPS_JS = """
[...document.querySelectorAll('[data-workflow="wf-1"] .step')].map((step) => ({
  id: step.dataset.step,
  done: step.classList.contains("done"),
  check: step.querySelector(".check").textContent,
  status: step.querySelector(".badge").textContent,
  changes: step.querySelector(".step-changes")?.textContent ?? "",
}))
"""


async def test_workflow_steps_show_their_latest_status(
    browser: Browser, bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """Workflow steps list in order with their latest status and changes; completed ones are
    checked."""
    page = await open_dashboard(browser, bridge)
    common = {"workflow_id": "wf-1", "user_id": "bob"}
    published = [
        await publisher.step_updated(
            PROJECT, **common, step_id="plan", status="in_progress", changes={"assignee": "bob"}
        ),
        await publisher.step_updated(
            PROJECT, **common, step_id="review", status="in_review", changes={"comment": "ok"}
        ),
        await publisher.step_completed(PROJECT, **common, step_id="plan", result={"ok": True}),
    ]
    await page.wait_for(all_received_js(published), timeout=WAIT)
    await page.wait_for(
        "document.querySelector('[data-step=\"plan\"]')?.classList.contains('done')", timeout=5
    )
    steps = await page.evaluate(STEPS_JS)
    assert [step["id"] for step in steps] == ["plan", "review"]
    assert [step["done"] for step in steps] == [True, False]
    assert steps[0]["check"] == "✓"
    assert [step["status"] for step in steps] == ["completed", "in review"]
    assert steps[0]["changes"] == "assignee: bob · ok: true"
    assert steps[1]["changes"] == "comment: ok"
    assert_no_console_errors(page)


async def test_replayed_events_do_not_roll_the_view_back(
    browser: Browser, bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """Replayed copies of old events (`eventbridge replay`) neither roll an agent's state back
    nor add an activity twice."""
    page = await open_dashboard(browser, bridge)
    queued = await publisher.agent_status(PROJECT, agent_id="agent-1", status="queued")
    early = await publisher.progress_update(PROJECT, agent_id="agent-1", progress=0.3)
    activity = await publisher.activity_created(PROJECT, actor="alice", action="approved")
    await publisher.agent_status(PROJECT, agent_id="agent-1", status="running")
    await publisher.progress_update(PROJECT, agent_id="agent-1", progress=0.9)
    for original in (queued, early, activity):
        await publisher.publish_envelope(
            Envelope.model_validate(original.envelope), headers={REPLAY_OF_HEADER: 0}
        )
    last = await publisher.deployment_log(PROJECT, deployment_id="d", stream="stdout", line="x")
    await page.wait_for(all_received_js([last]), timeout=WAIT)
    replays = await page.evaluate(
        f"window.dashboard.received.filter((id) => id === {json.dumps(activity.id)}).length"
    )
    assert replays == 2  # the original and its replay both arrived
    card = await wait_agent(page, "agent-1", percent="90%")
    assert card["status"] == "running"
    assert await page.evaluate("document.querySelectorAll('#feed .feed-item').length") == 1
    assert_no_console_errors(page)


# -- resume after a reload ---------------------------------------------------------------------


async def publish_one(publisher: EventPublisher, number: int) -> PublishedEvent:
    """The n-th event of a mixed stream: the project's agents, deployment logs and activities
    (an activity is in both of the page's rooms), global and other-project activities (the
    feed), and another project's progress (in none of the page's rooms)."""
    kind = number % 6
    if kind == 0:
        return await publisher.progress_update(
            PROJECT, agent_id=f"agent-{number % 4}", progress=(number % 100) / 100
        )
    if kind == 1:
        return await publisher.activity_created(PROJECT, actor="alice", action=f"edited #{number}")
    if kind == 2:
        return await publisher.deployment_log(
            PROJECT, deployment_id="dep-1", stream="stdout", line=f"line {number}"
        )
    if kind == 3:
        return await publisher.activity_created(None, actor="system", action=f"notice #{number}")
    if kind == 4:
        return await publisher.activity_created(OTHER, actor="bob", action=f"commented #{number}")
    return await publisher.progress_update(OTHER, agent_id="agent-9", progress=0.5)


async def publish_range(
    publisher: EventPublisher, numbers: range, published: list[PublishedEvent], pause: float
) -> None:
    """Publish events one by one (each confirmed before the next), appending to `published`."""
    for number in numbers:
        published.append(await publish_one(publisher, number))
        await asyncio.sleep(pause)


def in_page_rooms(event: PublishedEvent) -> bool:
    """Whether the page gets the event: the project's events and every activity."""
    envelope = event.envelope
    return bool(envelope["project_id"] == PROJECT or envelope["type"] == "activity_created")


async def test_reload_resumes_without_losing_or_repeating_events(
    browser: Browser, bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """Reloaded while events are published, and again at rest, the page resumes from its stored
    offsets and ends with every event of the project (and of the feed) applied exactly once."""
    page = await open_dashboard(browser, bridge)
    assert await page.evaluate("window.dashboard.received.length") == 0
    first_joins = await page.evaluate("window.dashboard.state.joins")
    assert [join["since"] for join in first_joins] == [None, None]

    published: list[PublishedEvent] = []
    await publish_range(publisher, range(24), published, pause=0)  # a burst
    publishing = asyncio.create_task(publish_range(publisher, range(24, 84), published, 0.02))
    try:
        await wait_for(lambda: len(published) >= 30, WAIT)
        at_reload = len(published)
        await page.reload(timeout=15)
        await wait_live(page)
        at_live = len(published)
        joins = await page.evaluate("window.dashboard.state.joins")
        await asyncio.wait_for(publishing, WAIT)
    finally:
        publishing.cancel()
    await publish_range(publisher, range(84, 96), published, pause=0)

    # The reloaded page resumed both rooms from stored offsets, in the same log.
    assert [join["room"] for join in joins] == [f"project:{PROJECT}", "activity-feed"]
    assert all(isinstance(join["since"], int) for join in joins), joins
    assert joins[0]["epoch"] == first_joins[0]["epoch"]
    assert joins[0]["offset"] > joins[0]["since"], "nothing was published during the reload"
    assert at_live > at_reload, "no event was published while the page reloaded"

    # Reloaded at rest right after a feed event and then an activity of the project (which the
    # page counts in the project room): the feed resumes from an older offset, so its catch-up
    # sends that activity again, and the page must recognise it.
    wanted = [event for event in published if in_page_rooms(event)]
    await page.wait_for(all_received_js(wanted), timeout=WAIT)
    published.append(await publisher.activity_created(None, actor="system", action="last notice"))
    published.append(await publisher.activity_created(PROJECT, actor="alice", action="last edit"))
    await page.wait_for(all_received_js(published[-2:]), timeout=WAIT)
    await page.reload(timeout=15)
    await wait_live(page)
    published.append(
        await publisher.deployment_log(PROJECT, deployment_id="dep-1", stream="stderr", line="end")
    )

    wanted = [event for event in published if in_page_rooms(event)]
    await page.wait_for(all_received_js(wanted), timeout=WAIT)
    received = await received_before_markers(page, publisher)  # a late duplicate shows by then
    counts = Counter(received)
    project_ids = [e.id for e in published if e.envelope["project_id"] == PROJECT]
    assert all(counts[event_id] == 1 for event_id in project_ids), {
        event_id: counts[event_id] for event_id in project_ids if counts[event_id] != 1
    }
    assert not [event_id for event_id, n in counts.items() if n > 1], "applied more than once"
    assert set(received) == {event.id for event in wanted}, "missing or unexpected events"
    assert await page.evaluate("window.dashboard.state.resyncs") == []
    # What the page shows survived the reload: the deployment's log holds every line.
    lines = await page.evaluate(
        "[...document.querySelectorAll('[data-deployment=\"dep-1\"] .log-line')]"
        ".map((node) => node.textContent)"
    )
    assert lines == [*(f"line {n}" for n in range(96) if n % 6 == 2), "end"]
    assert_no_console_errors(page)


# -- the screenshot ----------------------------------------------------------------------------


async def test_demo_stream_renders_a_readable_dashboard(
    browser: Browser, bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """A realistic demo stream fills every panel without console errors; the screenshot is kept
    as test-artifacts/dashboard.png."""
    page = await open_dashboard(browser, bridge, "demo-web")
    shown: list[PublishedEvent] = []

    def collect(event: PublishedEvent) -> None:
        envelope = event.envelope
        if envelope["project_id"] == "demo-web" or envelope["type"] == "activity_created":
            shown.append(event)

    await run_demo(
        publisher,
        projects=("demo-web", "demo-data"),
        rate=80,
        duration=3.0,
        seed=262,
        on_event=collect,
    )
    await page.wait_for(all_received_js(shown), timeout=WAIT)
    await asyncio.sleep(0.5)  # the last render and the progress bars' transitions
    counts = await page.evaluate(
        "({agents: document.querySelectorAll('.agent').length,"
        " deployments: document.querySelectorAll('.deployment').length,"
        " logLines: document.querySelectorAll('.log-line').length,"
        " steps: document.querySelectorAll('.step').length,"
        " activities: document.querySelectorAll('.feed-item').length})"
    )
    assert counts["agents"] == 4, counts
    assert all(counts[key] > 0 for key in ("deployments", "logLines", "steps", "activities"))
    ARTIFACTS.mkdir(exist_ok=True)
    path = await page.screenshot(ARTIFACTS / "dashboard.png", full_page=True)
    assert path.stat().st_size > 10_000
    assert_no_console_errors(page)


# -- HTTP --------------------------------------------------------------------------------------


async def raw_get(port: int, target: str) -> int:
    """GET `target` exactly as written (no client normalizes `..`); return the status code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        status_line = await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()
    return int(status_line.split()[1])


async def test_page_files_are_served_and_nothing_else(bridge: RunningBridge) -> None:
    """`/` and its stylesheet and script are served uncached with their content types; any other
    name under /dashboard/, path traversal included, is 404."""
    async with httpx.AsyncClient(base_url=bridge.http_url) as http:
        page = await http.get("/")
        css = await http.get("/dashboard/dashboard.css")
        js = await http.get("/dashboard/dashboard.js")
        assert [r.status_code for r in (page, css, js)] == [200, 200, 200]
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert css.headers["content-type"] == "text/css; charset=utf-8"
        assert js.headers["content-type"] == "text/javascript; charset=utf-8"
        assert {r.headers["cache-control"] for r in (page, css, js)} == {"no-cache"}
        assert 'src="dashboard/dashboard.js"' in page.text
        for target in (
            "/dashboard/index.html",
            "/dashboard/..%2Fsettings.py",
            "/dashboard/%2e%2e%2fdashboard.py",
            "/dashboard/..%2F..%2Fbridge%2Fsettings.py",
            "/dashboard/",
        ):
            assert (await http.get(target)).status_code == 404, target
    for target in ("/dashboard/../settings.py", "/dashboard/../dashboard.py", "/dashboard/./x"):
        assert await raw_get(bridge.port, target) == 404, target


async def test_api_projects_lists_projects_most_recently_active_first(
    bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """`/api/projects` lists every project with history or state, newest activity first, with
    the offset of its newest event; global events name no project."""
    await publisher.agent_status(PROJECT, agent_id="a", status="running")
    await publisher.deployment_status(OTHER, deployment_id="d", status="pending")
    await publisher.activity_created("p3", actor="carol", action="commented")
    await publisher.activity_created(None, actor="system", action="announced")
    await publisher.progress_update(PROJECT, agent_id="a", progress=0.5)

    async with httpx.AsyncClient(base_url=bridge.http_url) as http:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        body: dict[str, Any] = {}
        while loop.time() < deadline:
            body = (await http.get("/api/projects")).json()
            if len(body["projects"]) == 3 and body["projects"][0]["project_id"] == PROJECT:
                break
            await asyncio.sleep(0.05)
        projects = body["projects"]
        assert [item["project_id"] for item in projects] == [PROJECT, "p3", OTHER], body
        offsets = [item["last_offset"] for item in projects]
        assert offsets == sorted(set(offsets), reverse=True)
        assert offsets[0] == bridge.hub.head
        limited = await http.get("/api/projects", params={"limit": 1})
        assert limited.json() == {"projects": projects[:1]}
        assert (await http.get("/api/projects", params={"limit": 0})).status_code == 422


# -- authentication ----------------------------------------------------------------------------

TOKEN_KEY = "eventbridge.dashboard.token"
OTHER_SECRET = "another-secret-" + "y" * 40


@pytest.fixture
async def jwt_bridge(bridge_settings: Callable[..., Settings]) -> AsyncIterator[RunningBridge]:
    """A bridge that requires HS256 tokens of the test issuer (as in test_auth.py)."""
    settings = bridge_settings(
        auth="jwt", jwt_secret=tokens.SECRET, jwt_issuer=tokens.ISSUER, jwt_leeway=1.0
    )
    async with running_bridge(settings) as running:
        yield running


TOKEN_FORM_JS = """
(() => {
  const form = document.getElementById("token-form");
  return {
    shown: !form.hidden && form.getBoundingClientRect().height > 0,
    code: form.dataset.code ?? null,
    title: document.getElementById("token-title").textContent,
    reason: document.getElementById("token-reason").textContent,
    inputType: document.getElementById("token-input").type,
    pill: document.getElementById("connection-text").textContent,
  };
})()
"""


async def token_form(page: Page) -> dict[str, Any]:
    """What the token form shows (`shown` is false when it is hidden)."""
    form: dict[str, Any] = await page.evaluate(TOKEN_FORM_JS)
    return form


async def wait_token_form(page: Page, code: str, timeout: float = 15) -> dict[str, Any]:
    """Wait until the token form is shown for the refusal `code`; return what it shows."""
    await page.wait_for(
        "(() => { const form = document.getElementById('token-form');"
        f" return !form.hidden && form.dataset.code === {json.dumps(code)}; }})()",
        timeout=timeout,
    )
    return await token_form(page)


async def enter_token(page: Page, token: str) -> None:
    """Type `token` into the token field and press Enter, as a user pasting it would."""
    await page.evaluate("document.getElementById('token-input').focus()")
    await page.call("Input.insertText", {"text": token})
    enter = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}
    await page.call("Input.dispatchKeyEvent", {"type": "keyDown", "text": "\r", **enter})
    await page.call("Input.dispatchKeyEvent", {"type": "keyUp", **enter})


async def open_asking_for_token(
    browser: Browser, bridge: RunningBridge, project: str = PROJECT
) -> Page:
    """Open the dashboard of a bridge that requires tokens; wait for the token form."""
    page = await browser.new_page()
    await page.navigate(f"{bridge.http_url}/?project={project}", timeout=15)
    await wait_token_form(page, "auth_required")
    return page


def where_is(token: str) -> str:
    """A JavaScript expression: where the page keeps `token` (storage keys, the address)."""
    return f"""
(() => {{
  const token = {json.dumps(token)};
  const keys = (storage) =>
    Object.keys(storage).filter((key) => storage.getItem(key).includes(token));
  return {{ session: keys(sessionStorage), local: keys(localStorage),
            url: location.href.includes(token) }};
}})()
"""


async def test_a_bridge_that_requires_tokens_asks_for_one_then_shows_events(
    browser: Browser, jwt_bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """A bridge that requires tokens gets a token form; a token for the project shows events."""
    await publisher.agent_status(PROJECT, agent_id="agent-1", status="running")
    await publisher.agent_status(OTHER, agent_id="agent-9", status="running")
    page = await open_asking_for_token(browser, jwt_bridge)
    form = await token_form(page)
    assert form["shown"]
    assert form["title"] == "Token required"
    assert "access token" in form["reason"]
    assert form["inputType"] == "password"
    assert form["pill"] == "Token needed"
    assert await page.evaluate("window.dashboard.received") == []
    assert await agent_card(page, "agent-1") is None

    token = tokens.hs256(projects=[PROJECT], activity_feed=True)
    await enter_token(page, token)
    await wait_live(page)
    assert not (await token_form(page))["shown"]
    joins = await page.evaluate("window.dashboard.state.joins")
    assert [join["room"] for join in joins] == [f"project:{PROJECT}", "activity-feed"]
    grant = await page.evaluate("window.dashboard.state.auth.grant")
    assert (grant["projects"], grant["activity_feed"], grant["anonymous"]) == (
        [PROJECT],
        True,
        False,
    )
    published = [
        await publisher.progress_update(PROJECT, agent_id="agent-1", progress=0.5),
        await publisher.activity_created(None, actor="system", action="announced"),
    ]
    await page.wait_for(all_received_js(published), timeout=WAIT)
    await wait_agent(page, "agent-1", percent="50%")
    # /api/projects was asked with the token: the picker lists the granted project only.
    await page.wait_for(
        f"[...document.getElementById('project-select').options]"
        f".some((option) => option.value === {json.dumps(PROJECT)})",
        timeout=WAIT,
    )
    options = await page.evaluate(
        "[...document.getElementById('project-select').options].map((option) => option.value)"
    )
    assert OTHER not in options, options
    assert await page.evaluate(where_is(token)) == {
        "session": [TOKEN_KEY],
        "local": [],
        "url": False,
    }

    await page.reload(timeout=15)
    await wait_live(page)
    assert not (await token_form(page))["shown"]
    joins = await page.evaluate("window.dashboard.state.joins")
    assert all(isinstance(join["since"], int) for join in joins), joins
    assert_no_console_errors(page)


async def test_a_refused_token_shows_why_and_nothing_else(
    browser: Browser, jwt_bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """A token of another key, then an expired one, show the form with why, and no event."""
    page = await open_asking_for_token(browser, jwt_bridge)
    await enter_token(page, tokens.hs256(secret=OTHER_SECRET, activity_feed=True))
    form = await wait_token_form(page, "invalid_token")
    assert form["shown"]
    assert form["title"] == "Token refused"
    assert form["reason"] == "the token's signature does not verify"
    assert form["pill"] == "Token needed"
    assert await page.evaluate(f"sessionStorage.getItem({json.dumps(TOKEN_KEY)})") is None
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(ARTIFACTS / "dashboard-token.png")

    await enter_token(page, tokens.hs256(exp=int(time.time()) - 120, activity_feed=True))
    form = await wait_token_form(page, "token_expired")
    assert form["title"] == "Token expired"
    assert "expired" in form["reason"]
    # An authorized observer in the project's room: once it has the marker published after the
    # event, the bridge has routed the event to every member of the room, and the observer was
    # the only one. (The page's connection was refused and closed; it does not connect again
    # while it asks for a token.)
    async with websocket_client(f"{jwt_bridge.ws_url}/ws/ai/{PROJECT}") as observer:
        await observer.send({"type": "auth", "token": tokens.hs256(projects=[PROJECT])})
        await wait_for(lambda: bool(observer.replies("subscribed")), 5)
        await publisher.agent_status(PROJECT, agent_id="agent-1", status="running")
        await events_before(observer, await publish_marker(publisher, PROJECT))
        assert jwt_bridge.hub.members(f"project:{PROJECT}") == 1
    assert await page.evaluate("window.dashboard.received") == []
    assert await page.evaluate("window.dashboard.state.joins") == []
    assert_no_console_errors(page)


async def test_an_expired_token_asks_again_and_a_new_one_resumes_without_loss(
    browser: Browser, jwt_bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """When the token expires the form says so; a new token shows every missed event, once."""
    page = await open_asking_for_token(browser, jwt_bridge)
    await enter_token(page, tokens.hs256(exp=int(time.time()) + 2, activity_feed=True))
    await wait_live(page)
    before = await publisher.agent_status(PROJECT, agent_id="agent-1", status="running")
    await page.wait_for(all_received_js([before]), timeout=WAIT)

    form = await wait_token_form(page, "token_expired", timeout=10)
    assert form["title"] == "Token expired"
    assert "resumes where it stopped" in form["reason"]
    assert form["pill"] == "Token needed"
    missed = [
        await publisher.progress_update(PROJECT, agent_id="agent-1", progress=0.6),
        await publisher.activity_created(None, actor="system", action="announced"),
        await publisher.activity_created(PROJECT, actor="alice", action="approved"),
    ]
    await enter_token(page, tokens.hs256(activity_feed=True))
    await wait_live(page)
    joins = await page.evaluate("window.dashboard.state.joins")
    assert [join["room"] for join in joins] == [f"project:{PROJECT}", "activity-feed"]
    assert all(isinstance(join["since"], int) for join in joins), joins
    after = await publisher.progress_update(PROJECT, agent_id="agent-1", progress=0.9)
    await page.wait_for(all_received_js([*missed, after]), timeout=WAIT)
    received = await received_before_markers(page, publisher)  # a late duplicate shows by then
    assert Counter(received) == Counter(event.id for event in [before, *missed, after])
    # The project room resumes first, then the feed: within each room, publish order.
    in_project = [e.id for e in [before, *missed, after] if e.envelope["project_id"] == PROJECT]
    assert [event_id for event_id in received if event_id in in_project] == in_project
    assert await page.evaluate("window.dashboard.state.resyncs") == []
    assert_no_console_errors(page)


async def test_a_token_follows_only_what_it_grants(
    browser: Browser, jwt_bridge: RunningBridge, publisher: EventPublisher
) -> None:
    """A token for p1 without the feed: p2 is not allowed, p1 shows its events, the feed not."""
    page = await open_asking_for_token(browser, jwt_bridge, OTHER)
    await enter_token(page, tokens.hs256(projects=[PROJECT]))
    form = await wait_token_form(page, "forbidden")
    assert form["title"] == "Not allowed"
    assert form["reason"] == f"this token does not grant project {OTHER}"

    await page.evaluate(
        f"document.getElementById('project-input').value = {json.dumps(PROJECT)};"
        "document.getElementById('project-form').requestSubmit()"
    )
    await wait_live(page)
    assert not (await token_form(page))["shown"]
    joins = await page.evaluate("window.dashboard.state.joins")
    assert [join["room"] for join in joins] == [f"project:{PROJECT}"]
    global_activity = await publisher.activity_created(None, actor="system", action="announced")
    mine = await publisher.agent_status(PROJECT, agent_id="agent-1", status="running")
    # The page's one connection is in the project's room only: the global activity, had it
    # been delivered, would have arrived before this later event of that room.
    await page.wait_for(all_received_js([mine]), timeout=WAIT)
    assert global_activity.id not in await page.evaluate("window.dashboard.received")
    feed = await page.evaluate("document.getElementById('feed').textContent")
    assert feed == "Your token does not include the activity feed."
    assert_no_console_errors(page)
