"""Scraping a bridge's `/metrics` the way Prometheus does, parsed by the client library's own
parser (`prometheus_client.parser.text_string_to_metric_families`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""Every sample of a scrape: (sample name, sorted labels) → value."""


def parse(text: str) -> Samples:
    """Every sample of a text exposition, keyed by name and sorted labels."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def scrape(url: str) -> Samples:
    """GET `url` (a `/metrics` endpoint) and parse it."""
    async with httpx.AsyncClient() as http:
        response = await http.get(url, timeout=10)
    response.raise_for_status()
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 if the scrape does not have it)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def wait_for_sample(
    url: str, check: Callable[[Samples], bool], timeout: float = 10.0
) -> Samples:
    """Scrape until `check` holds of a scrape; return that scrape."""
    deadline = time.monotonic() + timeout
    while True:
        samples = await scrape(url)
        if check(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"no scrape of {url} satisfied the check within {timeout} s")
        await asyncio.sleep(0.05)
