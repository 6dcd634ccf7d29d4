"""How long the garbage collector stops the bridge: every collection timed, by generation; and
the collector's thresholds, set so that delivering events does not set off full collections.

A full collection walks every tracked object — about 165 per open connection — so with a
thousand connections it stops the event loop for some 70 ms, which every client then sees as
latency. Delivering one event to a thousand clients allocates a thousand short-lived objects;
with Python's default young-generation threshold (700) they are collected while still alive,
promoted, and soon make the collector run a full collection every few hundred events.
`configure_collector()` raises that threshold so short-lived objects die young; the history
holds events as untracked tuples (`bridge.core.history`); what the bridge loads at start is
frozen (`gc.freeze()`, in `bridge.broker.session`). Full collections then come only with growth
of long-lived objects: new connections, in practice.

`GcPauses` times each collection through `gc.callbacks` (a few hundred nanoseconds each) and
keeps a histogram and the longest pause, which `/metrics` exposes and the benchmarks read.
"""

from __future__ import annotations

import gc
import time
from bisect import bisect_left
from typing import Any

YOUNG_THRESHOLD = 10_000
"""Net allocations of tracked objects between young collections (Python's default: 700)."""

BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)
"""Upper bounds (seconds) of the pause histogram's buckets."""


def configure_collector() -> None:
    """Raise the young generation's threshold (see the module docstring); the older
    generations keep Python's defaults."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


class GcPauses:
    """Times garbage collections while installed (a context manager)."""

    def __init__(self) -> None:
        self.counts = [[0] * (len(BUCKETS) + 1) for _ in range(3)]
        """Per generation, collections per bucket (the last: longer than every bound)."""
        self.sums = [0.0, 0.0, 0.0]
        self.longest = 0.0
        self._started = 0.0

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_: object) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        generation = int(info.get("generation", 0))
        self.counts[generation][bisect_left(BUCKETS, pause)] += 1
        self.sums[generation] += pause
        self.longest = max(self.longest, pause)
