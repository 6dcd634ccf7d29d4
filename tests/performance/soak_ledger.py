"""The soak benchmark's bookkeeping: what the publisher confirmed, and the raw baseline consumer."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import Any

import aio_pika

SENT_AT = re.compile(rb'"sent_at":([0-9.eE+-]+)')


@dataclass
class Ledger:
    """What the publisher reported: per project, the seq below which every publish settled, and
    the seqs whose publish raised (in doubt); every other settled seq was confirmed."""

    projects: list[str]
    next_seq: dict[str, int] = field(default_factory=dict)
    in_doubt: dict[str, set[int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for project in self.projects:
            self.next_seq[project], self.in_doubt[project] = 0, set()

    def update(self, line: dict[str, Any]) -> None:
        """Take one line of the publisher's progress."""
        self.next_seq.update(line["next_seq"])
        for project, seq in line["in_doubt"]:
            self.in_doubt[project].add(seq)
        if line["error"]:
            self.errors.append(line["error"])

    def confirmed(self, project: str, seq: int) -> bool:
        """Whether the publish of `seq` of `project` was confirmed."""
        return seq < self.next_seq.get(project, 0) and seq not in self.in_doubt.get(project, ())

    def confirmed_in(self, project: str) -> int:
        """Confirmed events of `project` so far."""
        return self.next_seq[project] - len(self.in_doubt[project])

    @property
    def confirmed_count(self) -> int:
        """Confirmed events so far."""
        return sum(self.confirmed_in(project) for project in self.projects)

    @property
    def in_doubt_count(self) -> int:
        """Events whose publish raised so far."""
        return sum(len(seqs) for seqs in self.in_doubt.values())


class RawConsumer:
    """The baseline: a raw aio-pika consumer of the log (no bridge), with the same node list.

    It measures publish → arrival from the stream for every record, so each minute's bridge
    latency stands beside what the cluster itself delivers meanwhile. When its node goes away it
    reconnects to the next and reads on after the last offset it got.
    """

    def __init__(self, urls: list[str], log: str) -> None:
        self._urls, self._log = urls, log
        self.latencies: list[float] = []
        self.next_offset: int | str = "next"
        self.reconnects = 0

    async def run(self) -> None:
        """Consume until cancelled."""
        attempt = 0
        while True:
            url = self._urls[attempt % len(self._urls)]
            attempt += 1
            with contextlib.suppress(Exception):
                await self._consume(url)
            self.reconnects += 1
            await asyncio.sleep(0.5)

    async def _consume(self, url: str) -> None:
        connection = await aio_pika.connect(url, timeout=5, heartbeat=3)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=500)
            queue = await channel.get_queue(self._log, ensure=False)
            closed = asyncio.Event()
            channel.close_callbacks.add(lambda *_: closed.set())
            connection.close_callbacks.add(lambda *_: closed.set())
            received = 0

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                nonlocal received
                now = time.time()
                offset = (message.headers or {}).get("x-stream-offset")
                if isinstance(offset, int):
                    self.next_offset = offset + 1
                found = SENT_AT.search(message.body)
                if found is not None:
                    self.latencies.append(now - float(found.group(1)))
                received += 1
                if received % 100 == 0:
                    await message.ack(multiple=True)

            await queue.consume(on_message, arguments={"x-stream-offset": self.next_offset})
            await closed.wait()

    def take(self) -> list[float]:
        """The latencies since the last call."""
        taken, self.latencies = self.latencies, []
        return taken


def lost_among(skipped: dict[str, int], ledger: Ledger) -> int:
    """Deliveries missing of confirmed events, from the clients' skipped `room:seq` counts."""
    lost = 0
    for key, connections in skipped.items():
        room, _, seq = key.rpartition(":")
        if ledger.confirmed(room, int(seq)):
            lost += connections
    return lost
