"""A time limit on each publish, kept by one timer for every publish in flight.

`asyncio.timeout` per publish schedules and cancels a timer on every event, a few microseconds
each: a measurable share of a publish that takes a few hundred (`tests/performance/README.md`,
bench_publish). `Deadlines` keeps one timer per publisher instead, and only while something is in
flight: it ticks every `tick` seconds and cancels the tasks whose time is up, which then raise
`TimeoutError`. A publish therefore times out between `seconds` and `seconds + tick` after it
started.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class Deadlines:
    """Bounds each `with deadlines:` block, entered in a task, to `seconds` (plus up to `tick`).

    A block whose time is up raises `TimeoutError` (the task's cancellation is taken back, as
    `asyncio.timeout` does); a cancellation from elsewhere stays a `CancelledError`. A task must
    not enter a second block while in one.
    """

    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("a deadline must be positive")
        self.seconds = seconds
        self.tick = min(0.25, seconds / 4)
        # task -> (its deadline, how many cancellations it had pending when it entered)
        self._running: dict[asyncio.Task[object], tuple[float, int]] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def __enter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a publish deadline must be entered inside a task")
        loop = task.get_loop()
        self._running[task] = (loop.time() + self.seconds, task.cancelling())
        if self._timer is None:
            self._timer = loop.call_later(self.tick, self._check, loop)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        _, cancelling = self._running.pop(task)
        if task in self._expired:
            self._expired.discard(task)
            if task.uncancel() <= cancelling and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel every block whose time is up; tick again while any is running."""
        now = loop.time()
        for task, (deadline, _) in self._running.items():
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._timer = loop.call_later(self.tick, self._check, loop) if self._running else None
