"""Pure logic of the origin policy, the origin setting and the rate limiter."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from bridge.edge.limits import FLOOD_FACTOR, RateLimiter, Verdict
from bridge.edge.origins import OriginPolicy
from bridge.settings import Settings
from schemas.origins import normalize_origin


def scope(host: str = "bridge.example:8000", scheme: str = "ws") -> dict[str, Any]:
    """The ASGI scope of a request to `host`."""
    return {"type": "websocket", "scheme": scheme, "headers": [(b"host", host.encode())]}


@pytest.mark.parametrize(
    ("written", "normalized"),
    [
        ("https://App.Example.com", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("http://app.example.com:80", "http://app.example.com"),
        ("http://localhost:5173", "http://localhost:5173"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        (" https://a.example ", "https://a.example"),
    ],
)
def test_origins_are_normalized_to_the_form_browsers_send(written: str, normalized: str) -> None:
    """A configured origin becomes lower-case scheme://host[:port] without a default port."""
    assert normalize_origin(written) == normalized


@pytest.mark.parametrize(
    "bad",
    [
        "null",
        "app.example.com",
        "ftp://app.example.com",
        "https://app.example.com/",
        "https://app.example.com/path",
        "https://app.example.com?x=1",
        "https://user@app.example.com",
        "https://app.example.com:99999",
        "https://",
    ],
)
def test_what_is_not_an_origin_is_refused(bad: str) -> None:
    """Anything but scheme://host[:port] over http(s) is not an origin."""
    with pytest.raises(ValueError, match="origin"):
        normalize_origin(bad)


def test_allowed_origins_setting_reads_commas_and_json_and_refuses_null() -> None:
    """EVENTBRIDGE_ALLOWED_ORIGINS takes a comma list or a JSON list; `null` stops start-up."""
    assert Settings(allowed_origins="https://a.example, http://b.example:81,").allowed_origins == [
        "https://a.example",
        "http://b.example:81",
    ]
    assert Settings(allowed_origins='["https://A.example:443", "*"]').allowed_origins == [
        "https://a.example",
        "*",
    ]
    with pytest.raises(ValidationError, match="'null' cannot be allowed"):
        Settings(allowed_origins="https://a.example,null")
    with pytest.raises(ValidationError, match="not an origin"):
        Settings(allowed_origins="https://a.example/app")


@pytest.mark.parametrize(
    ("origins", "allowed"),
    [
        ([], True),
        ([""], True),
        (["https://app.example.com"], True),
        (["HTTPS://APP.EXAMPLE.COM"], True),
        (["http://bridge.example:8000"], True),
        (["https://app.example.com", "https://app.example.com"], False),
        (["null"], False),
        (["https://app.example.com.evil.example"], False),
        (["https://evilapp.example.com"], False),
        (["http://app.example.com"], False),
        (["https://app.example.com:8443"], False),
        (["https://app.example.com:443"], False),
        (["https://app.example.com/"], False),
        (["http://bridge.example:8001"], False),
        (["https://bridge.example:8000"], False),
    ],
)
def test_origin_policy(origins: list[str], allowed: bool) -> None:
    """No Origin, the bridge's own origin and exactly a listed one pass; nothing else does."""
    policy = OriginPolicy(["https://app.example.com"])
    assert policy.allows(origins, scope()) is allowed


def test_own_origin_follows_the_scheme_and_default_port() -> None:
    """Behind TLS (scheme wss) the own origin is https, and a default port in Host is dropped."""
    policy = OriginPolicy([])
    assert policy.allows(["https://bridge.example"], scope("bridge.example:443", "wss"))
    assert not policy.allows(["http://bridge.example"], scope("bridge.example:443", "wss"))
    assert not policy.allows(["http://bridge.example"], {"scheme": "ws", "headers": []})


def test_wildcard_allows_any_origin() -> None:
    """`*` in the list accepts every origin, `null` included."""
    assert OriginPolicy(["*"]).allows(["null"], scope())


def test_engineio_form_of_the_check() -> None:
    """Engine.IO's callable form reads the same headers from the ASGI scope in its environ."""
    policy = OriginPolicy(["https://app.example.com"])
    request = scope()
    request["headers"].append((b"origin", b"https://app.example.com"))
    assert policy.allows_engineio("https://app.example.com", {"asgi.scope": request})
    assert not policy.allows_engineio("https://evil.example", {})
    assert not policy.allows_engineio(None, {"asgi.scope": request})


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_allows_a_burst_of_one_second_then_the_rate() -> None:
    """One second's worth passes at once; the next is refused; tokens come back at the rate."""
    clock = Clock()
    limiter = RateLimiter(10, clock=clock)
    assert [limiter.take() for _ in range(10)] == [Verdict.ALLOW] * 10
    assert limiter.take() is Verdict.REFUSE
    clock.now += 0.25
    assert [limiter.take() for _ in range(3)] == [Verdict.ALLOW, Verdict.ALLOW, Verdict.REFUSE]


def test_rate_limiter_tolerates_up_to_the_flood_factor_indefinitely() -> None:
    """Sending at FLOOD_FACTOR times the rate for a minute is refused in part, never closed."""
    clock = Clock()
    limiter = RateLimiter(10, clock=clock)
    verdicts = []
    for _ in range(60 * 10 * FLOOD_FACTOR):
        clock.now += 1 / (10 * FLOOD_FACTOR)
        verdicts.append(limiter.take())
    assert Verdict.CLOSE not in verdicts
    assert 0.15 < verdicts.count(Verdict.ALLOW) / len(verdicts) < 0.25


def test_rate_limiter_closes_a_sustained_flood_and_a_huge_burst() -> None:
    """Six times the rate closes within seconds; more than FLOOD_FACTOR + 1 seconds' worth in
    one burst closes at once."""
    clock = Clock()
    limiter = RateLimiter(10, clock=clock)
    seconds = 0.0
    while limiter.take() is not Verdict.CLOSE:
        clock.now += 1 / 60
        seconds += 1 / 60
        assert seconds < 10
    assert seconds > 3

    burst = RateLimiter(10, clock=Clock())
    verdicts = [burst.take() for _ in range(10 * (FLOOD_FACTOR + 1) + 1)]
    assert Verdict.CLOSE not in verdicts[:-1]
    assert verdicts[-1] is Verdict.CLOSE


def test_rate_below_one_per_second_still_allows_one_message() -> None:
    """A rate under 1/s holds one token, so a client is not refused forever."""
    clock = Clock()
    limiter = RateLimiter(0.5, clock=clock)
    assert limiter.take() is Verdict.ALLOW
    assert limiter.take() is Verdict.REFUSE
    clock.now += 2
    assert limiter.take() is Verdict.ALLOW
