"""Publisher benchmark: the SDK against raw aio-pika, in the same run, to the same stream.

Both publish the same ~300-byte `progress_update` events, persistent and `mandatory`, through a
durable topic exchange into a stream queue (eventbridge's own topology: `<prefix>.events` →
`<prefix>.log`), on one connection with publisher confirms:

- batch: the SDK's `publish_batch` (envelopes built, validated, encoded; 256 confirms in flight)
  against raw aio-pika with the same 256 confirms in flight (`json.dumps` of a dict, `Message`,
  `exchange.publish` in a task, a semaphore bounding the tasks), the fastest a hand-written
  publisher gets;
- one by one: the SDK's `progress_update(...)` helper awaited in a loop against raw aio-pika
  awaiting each confirm.

Rounds alternate raw and SDK so a busier moment of the machine hurts both; the table gives each
round's events per second and the publisher's CPU per event (this process; the broker's CPU is
beside it), and the ratios are of the medians.

    python -m tests.performance.bench_publish                 # 5 rounds of 20,000 / 10,000
    python -m tests.performance.bench_publish --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aio_pika

from producers import EventPublisher
from schemas import Envelope, new_event_id, utc_now
from tests.helpers import delete_broker_objects
from tests.performance.processes import CpuMeter, find_broker_pid

ARTIFACTS = Path("test-artifacts")
WINDOW = 256


@dataclass
class Round:
    """One measured run of one publisher."""

    mode: str
    publisher: str
    events: int
    seconds: float
    publisher_cores: float
    broker_cores: float | None
    other_cores: float | None

    @property
    def per_second(self) -> float:
        """Events confirmed per second."""
        return self.events / self.seconds

    @property
    def cpu_us(self) -> float:
        """The publisher's CPU per event, in microseconds."""
        return self.publisher_cores * self.seconds / self.events * 1e6


def raw_body(project: str, seq: int) -> bytes:
    """The event a hand-written publisher sends: the same envelope, dumped with `json`."""
    now = time.time()
    return json.dumps(
        {
            "id": new_event_id(now),
            "type": "progress_update",
            "schema_version": 1,
            "project_id": project,
            "source": "bench-publish",
            "occurred_at": utc_now().isoformat(),
            "data": {"agent_id": "agent-1", "progress": 0.5, "stage": "benchmark", "seq": seq},
        },
        separators=(",", ":"),
    ).encode()


def sdk_envelope(project: str, seq: int) -> Envelope:
    """The same event as an SDK envelope."""
    return Envelope(
        id=new_event_id(),
        type="progress_update",
        schema_version=1,
        project_id=project,
        source="bench-publish",
        occurred_at=utc_now(),
        data={"agent_id": "agent-1", "progress": 0.5, "stage": "benchmark", "seq": seq},
    )


class Bench:
    """The raw and SDK publishers, connected once, and the rounds they ran."""

    def __init__(self, amqp_url: str, prefix: str) -> None:
        self.amqp_url = amqp_url
        self.prefix = prefix
        self.exchange_name = f"{prefix}.events"
        self.rounds: list[Round] = []
        self._seq = 0

    async def setup(self) -> None:
        """Declare the exchange and the stream, as the bridge does."""
        self.connection = await aio_pika.connect(self.amqp_url, name="bench-publish-raw")
        self.channel = await self.connection.channel(publisher_confirms=True)
        self.exchange = await self.channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await self.channel.declare_queue(
            f"{self.prefix}.log", durable=True, arguments={"x-queue-type": "stream"}
        )
        await queue.bind(self.exchange, "#")
        self.sdk = EventPublisher(
            self.amqp_url, prefix=self.prefix, source="bench-publish", publish_timeout=60
        )
        await self.sdk.__aenter__()

    async def close(self) -> None:
        """Close both publishers."""
        await self.sdk.__aexit__(None, None, None)
        await self.connection.close()

    async def raw_batch(self, count: int) -> None:
        """Raw aio-pika, `WINDOW` confirms in flight."""
        slots = asyncio.Semaphore(WINDOW)
        in_flight: set[asyncio.Task[None]] = set()

        async def send(message: aio_pika.Message) -> None:
            try:
                await self.exchange.publish(message, "project.p1.progress_update", mandatory=True)
            finally:
                slots.release()

        for _ in range(count):
            self._seq += 1
            message = aio_pika.Message(
                raw_body("p1", self._seq),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await slots.acquire()
            task = asyncio.create_task(send(message))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)

    async def sdk_batch(self, count: int) -> None:
        """The SDK's `publish_batch`, envelopes built here."""
        envelopes = []
        for _ in range(count):
            self._seq += 1
            envelopes.append(sdk_envelope("p1", self._seq))
        await self.sdk.publish_batch(envelopes, window=WINDOW)

    async def raw_each(self, count: int) -> None:
        """Raw aio-pika, each confirm awaited."""
        for _ in range(count):
            self._seq += 1
            message = aio_pika.Message(
                raw_body("p1", self._seq),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await self.exchange.publish(message, "project.p1.progress_update", mandatory=True)

    async def sdk_each(self, count: int) -> None:
        """The SDK's typed helper, awaited in a loop."""
        for _ in range(count):
            self._seq += 1
            await self.sdk.progress_update(
                "p1", agent_id="agent-1", progress=0.5, stage="benchmark", seq=self._seq
            )

    async def measure(
        self, mode: str, publisher: str, count: int, run: Callable[[int], Awaitable[None]]
    ) -> Round:
        """Time one round and take the CPU split."""
        meter = CpuMeter({"publisher": os.getpid(), "broker": find_broker_pid()})
        meter.start()
        started = time.perf_counter()
        await run(count)
        seconds = time.perf_counter() - started
        cores = meter.stop()
        measured = Round(
            mode,
            publisher,
            count,
            seconds,
            cores["publisher"] or 0.0,
            cores.get("broker"),
            cores.get("other"),
        )
        self.rounds.append(measured)
        print(
            f"  {mode:<10} {publisher:<4} {measured.per_second:>8.0f} ev/s "
            f"{measured.cpu_us:>6.0f} µs/ev  other {measured.other_cores or 0:.2f}",
            file=sys.stderr,
        )
        return measured


def medians(rounds: list[Round], mode: str, publisher: str) -> tuple[float, float]:
    """Median events/s and median CPU µs per event of one mode and publisher."""
    chosen = [r for r in rounds if r.mode == mode and r.publisher == publisher]
    return (
        statistics.median(r.per_second for r in chosen),
        statistics.median(r.cpu_us for r in chosen),
    )


async def run(options: argparse.Namespace) -> list[Round]:
    """Warm up, then alternate raw and SDK rounds of both modes."""
    bench = Bench(options.amqp_url, f"bench-{uuid.uuid4().hex[:8]}")
    await bench.setup()
    try:
        await bench.raw_batch(500)
        await bench.sdk_batch(500)
        for index in range(options.rounds):
            print(f"… round {index + 1} of {options.rounds}", file=sys.stderr)
            order = [("raw", bench.raw_batch), ("sdk", bench.sdk_batch)]
            for name, publish in order if index % 2 == 0 else order[::-1]:
                await bench.measure("batch", name, options.batch, publish)
            order = [("raw", bench.raw_each), ("sdk", bench.sdk_each)]
            for name, publish in order if index % 2 == 0 else order[::-1]:
                await bench.measure("one by one", name, options.each, publish)
        return bench.rounds
    finally:
        await bench.close()
        await delete_broker_objects(
            options.amqp_url,
            exchanges=[bench.exchange_name],
            queues=[f"{bench.prefix}.log"],
        )


def main() -> int:
    """Run the rounds and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=20_000, help="events per batch round")
    parser.add_argument("--each", type=int, default=10_000, help="events per one-by-one round")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 5,000 / 1,000")
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("EVENTBRIDGE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    )
    parser.add_argument("--output", type=Path, default=ARTIFACTS / "bench_publish.json")
    options = parser.parse_args()
    if options.quick:
        options.rounds, options.batch, options.each = 3, 5_000, 1_000
    options.output.parent.mkdir(exist_ok=True)
    rounds = asyncio.run(run(options))
    print("| mode | raw aio-pika ev/s (µs CPU each) | SDK ev/s (µs CPU each) | ratio |")
    print("|---|---|---|---|")
    for mode in ("batch", "one by one"):
        raw_rate, raw_cpu = medians(rounds, mode, "raw")
        sdk_rate, sdk_cpu = medians(rounds, mode, "sdk")
        print(
            f"| {mode} | {raw_rate:,.0f} ({raw_cpu:.0f}) | {sdk_rate:,.0f} ({sdk_cpu:.0f}) "
            f"| {sdk_rate / raw_rate:.2f} |"
        )
    options.output.write_text(
        json.dumps(
            [r.__dict__ | {"per_second": r.per_second, "cpu_us": r.cpu_us} for r in rounds],
            indent=2,
        )
    )
    print(f"\nwritten: {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
