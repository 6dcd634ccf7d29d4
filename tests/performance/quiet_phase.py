"""Resumes of a quiet project in a long log (part of `bench_resume`'s restart phase).

A quiet project had one event at the start of the log; a million busy records followed. A
client of that project resumes from an old offset: the bridge must answer within 2 s, either
with what it missed (the room index says how far to read) or with `resync-required`
(`too_many`) at once, never after scanning the log.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.performance.processes import http_json
from tests.performance.rawreceiver import RawReceiver

QUIET_PROJECT = "quiet-project"
LISTEN = 3.0
"""Seconds after the reply during which a late event or resync notice would still count."""


async def quiet_resume(port: int, since: int, *, expected: int) -> dict[str, Any]:
    """Resume `QUIET_PROJECT` from `since` on the bridge at `port`; time the answer.

    Args:
        port: the bridge's HTTP port.
        since: the offset the client last saw.
        expected: how many events of the project lie after `since` (0 or 1).
    """
    log = (await http_json(port, "/health"))["log"]
    epoch, head = str(log["epoch"]), int(log["offset"])
    receiver = RawReceiver("websocket")
    await receiver.connect(f"ws://127.0.0.1:{port}/ws")
    try:
        started = time.time()
        await receiver.send(
            {"type": "subscribe", "project_id": QUIET_PROJECT, "since": since, "epoch": epoch}
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if receiver.notices or len(receiver.arrivals) >= max(expected, 1):
                break
            if receiver.subscribed_reply is not None and expected == 0:
                reply_at = float(receiver.subscribed_reply["received_at"])
                if time.time() - reply_at >= LISTEN:
                    break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.2)
    finally:
        await receiver.close()
    reply = receiver.subscribed_reply
    if receiver.notices:
        notice = receiver.notices[0]
        outcome = f"resync-required ({notice.get('reason')})"
        answered: float | None = float(notice.get("received_at", time.time())) - started
    elif receiver.arrivals:
        outcome = f"{len(receiver.arrivals)} event(s)"
        answered = receiver.arrivals[-1].received_at - started
    elif reply is not None:
        outcome = "nothing missed"
        answered = float(reply["received_at"]) - started
    else:
        outcome, answered = "no answer within 60 s", None
    return {
        "since": since,
        "head": head,
        "records_behind": head - since,
        "expected_events": expected,
        "reply_s": None if reply is None else float(reply["received_at"]) - started,
        "answered_s": answered,
        "outcome": outcome,
        "ok": answered is not None
        and answered <= 2.0
        and (
            receiver.notices
            or (len(receiver.arrivals) == expected and receiver.closed_reason is None)
        ),
    }
