"""The per-connection message rate limit, shared by both transports.

Each connection gets a token bucket of `max_messages_per_second` tokens, refilled at that rate:
a client may send one second's worth at once, then that many per second. A message that finds
the bucket empty is refused (`rate_limited`) and the connection stays open.

Refused messages go into a second bucket that drains at `FLOOD_FACTOR - 1` times the rate.
When it holds more than `FLOOD_FACTOR` seconds' worth, the client is flooding and the
connection is closed. In effect a client sending up to `FLOOD_FACTOR` times the limit stays
connected indefinitely (the excess is refused); one sending faster is closed once its unforgiven
excess reaches `FLOOD_FACTOR` seconds' worth (after 5 s at six times the limit, 1 s at ten
times), and one that sends more than `FLOOD_FACTOR + 1` seconds' worth in one burst at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

FLOOD_FACTOR = 5
"""How many times the allowed rate a client may keep sending before it is disconnected."""


class Verdict(StrEnum):
    """What to do with one message from a client."""

    ALLOW = "allow"
    REFUSE = "refuse"
    CLOSE = "close"


class RateLimiter:
    """A token bucket with flood detection for one connection (see the module docstring)."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._capacity = max(rate, 1.0)
        self._tokens = self._capacity
        self._refused = 0.0
        self._last = clock()

    def take(self) -> Verdict:
        """Account for one message and say whether to handle it, refuse it, or close."""
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self._capacity, self._tokens + elapsed * self.rate)
        self._refused = max(0.0, self._refused - elapsed * (FLOOD_FACTOR - 1) * self.rate)
        if self._tokens >= 1:
            self._tokens -= 1
            return Verdict.ALLOW
        self._refused += 1
        if self._refused > FLOOD_FACTOR * self.rate:
            return Verdict.CLOSE
        return Verdict.REFUSE

    def refusal(self) -> str:
        """The message of a `rate_limited` error."""
        return (
            f"more than {self.rate:g} messages per second; this one was dropped, slow down and "
            "send it again"
        )
