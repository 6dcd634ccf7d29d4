"""The dashboard's Present strip, in headless Chromium: who is in the selected project, across
two replicas, as users come and go and set their state."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import pytest

from bridge.settings import Settings
from tests import tokens
from tests.browser import Browser, ChromiumMissingError
from tests.integration.conftest import running_bridge
from tests.integration.presence_clients import sio_member, ws_member

pytestmark = pytest.mark.xdist_group("browser")

JWT = {"auth": "jwt", "jwt_secret": tokens.SECRET, "jwt_issuer": tokens.ISSUER}


def present(*users: str) -> str:
    """A JavaScript expression: does the strip list exactly these users?"""
    shown = "JSON.stringify((window.dashboard.presence || []).slice().sort())"
    return f"{shown} === {json.dumps(json.dumps(sorted(users), separators=(',', ':')))}"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium with a fresh profile, closed afterwards."""
    try:
        launched = await Browser.launch(window_size=(1280, 900))
    except ChromiumMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    async with launched:
        yield launched


async def test_the_dashboard_shows_who_is_present_across_replicas(
    browser: Browser, bridge_settings: Callable[..., Settings]
) -> None:
    """With a token, the page opened on one replica lists the users of the project on both
    replicas with their connections and state, and drops a user who leaves."""
    async with (
        running_bridge(bridge_settings(**JWT)) as a,
        running_bridge(bridge_settings(**JWT)) as b,
        sio_member(b.http_url, "alice") as alice,
        ws_member(a.ws_url, "alice"),
    ):
        page = await browser.new_page()
        await page.navigate(f"{a.http_url}/?project=p1", timeout=15)
        token = tokens.hs256(sub="operator", name="The operator", projects=["p1"])
        await page.evaluate(
            "(() => { const input = document.getElementById('token-input');"
            f" input.value = {json.dumps(token)};"
            " document.getElementById('token-form').requestSubmit(); })()"
        )
        await page.wait_for(present("alice", "operator"), timeout=15)
        await alice.call("presence-update", {"project_id": "p1", "state": {"editing": "s3"}})
        text = await page.wait_for(
            "(() => { const item = document.querySelector('[data-user=\"alice\"]');"
            " const text = item ? item.textContent : '';"
            " return text.includes('editing: s3') && text.includes('\\u00d72') ? text : null; })()",
            timeout=10,
        )
        assert "alice" in text
        operator = await page.evaluate(
            "document.querySelector('[data-user=\"operator\"]').textContent"
        )
        assert operator == "The operator"
        async with sio_member(b.http_url, "bob"):
            await page.wait_for(present("alice", "bob", "operator"), timeout=10)
        await page.wait_for(present("alice", "operator"), timeout=10)
