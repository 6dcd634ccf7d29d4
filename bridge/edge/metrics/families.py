"""Metric families built from plain counts: counters by one label, and histograms from bucket
counts (`bridge.core.tally.Buckets`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from bridge.core.tally import Buckets


def counter(
    name: str, documentation: str, label: str, counts: Mapping[str, int], *, always: Iterable[str]
) -> CounterMetricFamily:
    """A counter by one label: every value in `always` (at 0 until it happens), then any other
    value counted."""
    family = CounterMetricFamily(name, documentation, labels=[label])
    values = dict.fromkeys(always, 0)
    values.update(counts)
    for value, count in values.items():
        family.add_metric([value], count)
    return family


def histogram_buckets(bounds: Sequence[float], counts: Sequence[int]) -> list[tuple[str, float]]:
    """Cumulative `(le, count)` pairs, `+Inf` last, from counts per bucket."""
    cumulative, buckets = 0, []
    for bound, count in zip((*bounds, float("inf")), counts, strict=True):
        cumulative += count
        buckets.append((bound_text(bound), float(cumulative)))
    return buckets


def add_histogram(family: HistogramMetricFamily, labels: list[str], histogram: Buckets) -> None:
    """Add one labelled histogram to `family`."""
    family.add_metric(
        labels, histogram_buckets(histogram.bounds, list(histogram.counts)), histogram.sum
    )


def bound_text(bound: float) -> str:
    """A bucket bound as Prometheus writes it."""
    return "+Inf" if bound == float("inf") else repr(bound)
