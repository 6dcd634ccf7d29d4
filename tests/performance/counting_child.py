"""The child of `bench_counting`: time the delivery core's live path in this process.

Run as a script with `PYTHONPATH` pointing at one tree of the project (it imports only the
delivery core and the wire contract, whose interfaces both trees share). It builds a hub with
one room of C connections that always take a frame at once (`write_now` → True: the fast path,
no socket), hands it E events in batches of 64 as the log consumer does, and, where the tree
has it, times each event as the consumer does (`bridge.broker.timing.observe_delivery`). It
prints one JSON line: CPU seconds per delivery, best of R repetitions.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from bridge.core.connection import ClientConnection, Frame
from bridge.core.events import Event, decode
from bridge.core.hub import Hub
from bridge.core.subscription import HubLimits
from schemas.codes import CloseReason

try:  # only in trees that count for /metrics
    from bridge.broker.timing import observe_delivery
except ImportError:
    observe_delivery = None  # type: ignore[assignment]


class FastConnection(ClientConnection):
    """A client whose socket always takes the frame at once (and drops it)."""

    transport = "websocket"

    def frame(self, event: Event) -> Frame:
        return event.payload

    def notice(self, name: str, payload: dict[str, Any]) -> Frame:
        return json.dumps({"notice": name, **payload}).encode()

    def write_now(self, frame: Frame) -> bool:
        del frame
        return True

    async def write(self, frame: Frame) -> None:
        del frame

    async def disconnect(self, reason: CloseReason) -> None:
        del reason


class Message:
    """What the consumer's timing reads of an AMQP message: its headers."""

    headers: dict[str, Any] = {}  # noqa: RUF012 - a stand-in, never changed


class NoLog:
    """A log nobody reads (no join here resumes)."""

    async def read(self, room: str, after: int, upto: int) -> Any:  # pragma: no cover
        raise AssertionError((room, after, upto))


def body(offset: int) -> bytes:
    """A progress update of project p1, as a producer sends it (~300 bytes)."""
    return json.dumps(
        {
            "id": f"e-{offset}",
            "type": "progress_update",
            "schema_version": 1,
            "project_id": "p1",
            "source": "bench",
            "occurred_at": "2026-12-06T12:00:00.000Z",
            "data": {"agent_id": "a", "progress": 0.5, "stage": "x" * 150},
        }
    ).encode()


async def measure(clients: int, events: int, repetitions: int) -> dict[str, Any]:
    """Best CPU time per delivery over `repetitions` runs of `events` events."""
    hub = Hub(HubLimits(), NoLog())  # type: ignore[arg-type]
    hub.set_epoch("e")
    hub.start_at(0)
    for number in range(clients):
        connection = FastConnection(f"c{number}", limit=1000)
        hub.add(connection)
        joined = await hub.join(connection, "project:p1")
        joined.then()
    offset = 0
    best = float("inf")
    message = Message()
    for _ in range(repetitions):
        decoded = []
        for _ in range(events):
            offset += 1
            result = decode(body(offset), "project.p1.progress_update", offset, max_bytes=65_536)
            assert isinstance(result, Event), result
            decoded.append(result)
        started = time.process_time()
        for start in range(0, events, 64):
            with hub.batch():
                for event in decoded[start : start + 64]:
                    hub.publish(event)
                    if observe_delivery is not None:
                        observe_delivery(hub.tally, event, message)  # type: ignore[arg-type]
        best = min(best, time.process_time() - started)
    return {
        "counting": observe_delivery is not None,
        "ns_per_delivery": best / (events * clients) * 1e9,
        "us_per_event": best / events * 1e6,
    }


if __name__ == "__main__":
    clients, events, repetitions = (int(arg) for arg in sys.argv[1:4])
    print(json.dumps(asyncio.run(measure(clients, events, repetitions))))
