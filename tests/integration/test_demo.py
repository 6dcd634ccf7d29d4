"""The demo stream against the real broker: valid events, the full lifecycle, pacing and stop."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from producers import EventPublisher, PublishedEvent
from producers.demo import DemoStats, run_demo
from schemas import EVENT_MODELS, Envelope, routing_key

pytestmark = pytest.mark.broker

SEED = 1
"""Checked: within its first 150 events this seed yields every type, errors and global activity."""

RATE = 200.0
DURATION = 1.5
LIFECYCLE = set(EVENT_MODELS)  # a demo run shows every event type


@dataclass
class DemoRun:
    """One demo run: what it reported, what the broker routed, and how long it took."""

    stats: DemoStats
    events: list[PublishedEvent]
    messages: list[AbstractIncomingMessage]
    elapsed: float

    @property
    def envelopes(self) -> list[Envelope]:
        """The routed messages, parsed, in queue order."""
        return [Envelope.model_validate_json(message.body) for message in self.messages]


@pytest.fixture
async def tap(
    amqp_connection: AbstractRobustConnection, prefix: str
) -> AsyncIterator[AbstractQueue]:
    """A temporary queue bound to `<prefix>.events` with `#`; deleted afterwards."""
    channel = await amqp_connection.channel()
    exchange = await channel.declare_exchange(
        f"{prefix}.events", aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(f"{prefix}.demo-tap", durable=False)
    await queue.bind(exchange, "#")
    yield queue
    await queue.delete(if_unused=False, if_empty=False)
    await channel.close()


async def _drain(queue: AbstractQueue, count: int) -> list[AbstractIncomingMessage]:
    """Consume exactly `count` messages from `queue`, failing after a timeout."""
    messages: list[AbstractIncomingMessage] = []
    if count == 0:
        return messages
    async with asyncio.timeout(10), queue.iterator(no_ack=True) as iterator:
        async for message in iterator:
            messages.append(message)
            if len(messages) == count:
                break
    return messages


async def _run(
    connection: AbstractRobustConnection, prefix: str, queue: AbstractQueue, **options: Any
) -> DemoRun:
    """Run the demo on `connection`, then collect every message it routed to `queue`."""
    events: list[PublishedEvent] = []
    loop = asyncio.get_running_loop()
    async with EventPublisher(prefix=prefix, source="demo-test", connection=connection) as pub:
        started = loop.time()
        stats = await run_demo(pub, on_event=events.append, **options)
        elapsed = loop.time() - started
    declared = await queue.declare()
    assert declared.message_count == stats.published
    return DemoRun(stats, events, await _drain(queue, stats.published), elapsed)


@pytest.fixture
async def demo_run(
    amqp_connection: AbstractRobustConnection, prefix: str, tap: AbstractQueue
) -> DemoRun:
    """A seeded demo run at 200 events/s for 1.5 s, with every message it routed."""
    return await _run(amqp_connection, prefix, tap, rate=RATE, duration=DURATION, seed=SEED)


async def test_every_message_is_a_valid_contract_event(demo_run: DemoRun) -> None:
    """Every routed message is a contract envelope with valid data, keyed and labelled right."""
    assert [message.message_id for message in demo_run.messages] == [
        event.id for event in demo_run.events
    ]
    for message, envelope in zip(demo_run.messages, demo_run.envelopes, strict=True):
        EVENT_MODELS[envelope.type].model_validate(envelope.data)
        assert message.routing_key == routing_key(envelope.type, envelope.project_id)
        assert message.content_type == "application/json"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert envelope.source == "demo-test"
    by_type = Counter(envelope.type for envelope in demo_run.envelopes)
    assert demo_run.stats.by_type == by_type
    assert demo_run.stats.published == len(demo_run.messages)


async def test_stream_covers_every_lifecycle_event_and_global_activity(demo_run: DemoRun) -> None:
    """The seeded stream has every event type, covers every demo project, and global activity."""
    envelopes = demo_run.envelopes
    assert {envelope.type for envelope in envelopes} == LIFECYCLE
    projects = {envelope.project_id for envelope in envelopes}
    assert projects == {"demo-web", "demo-data", "demo-infra", None}
    assert all(env.type == "activity_created" for env in envelopes if env.project_id is None)
    statuses = {env.data["status"] for env in envelopes if env.type == "agent_status"}
    assert {"queued", "running", "succeeded", "failed"} <= statuses
    streams = {env.data["stream"] for env in envelopes if env.type == "deployment_log"}
    assert streams <= {"stdout", "stderr"}


async def test_agent_progress_rises_until_a_terminal_status(demo_run: DemoRun) -> None:
    """Each agent run goes queued → running → rising progress → succeeded at 1.0 or failed."""
    state: dict[tuple[str | None, str], str] = {}
    progress: dict[tuple[str | None, str], float] = {}
    finished = 0
    for envelope in demo_run.envelopes:
        if envelope.type not in {"agent_status", "progress_update"}:
            continue
        agent = (envelope.project_id, envelope.data["agent_id"])
        if envelope.type == "progress_update":
            assert state.get(agent) == "running", f"{agent} reports progress while not running"
            assert envelope.data["progress"] > progress.get(agent, -1.0)
            progress[agent] = envelope.data["progress"]
            continue
        status = envelope.data["status"]
        if status == "queued":
            assert state.get(agent, "succeeded") in {"succeeded", "failed"}
            progress.pop(agent, None)
        elif status == "running":
            assert state.get(agent) == "queued"
        else:
            assert state.get(agent) == "running"
            if status == "succeeded":
                assert progress.get(agent) == 1.0
            finished += 1
        state[agent] = status
    assert finished >= 3


@pytest.mark.serial  # a rate and a duration, measured: run with no other test beside it
async def test_achieved_rate_follows_the_requested_rate(demo_run: DemoRun) -> None:
    """At 200 events/s for 1.5 s the demo publishes about 300 events and stops on time."""
    assert 150 <= demo_run.stats.published <= 330
    assert DURATION <= demo_run.elapsed < DURATION + 1.0


@pytest.mark.usefixtures("tap")  # a queue bound to the exchange, so publishes are routed
async def test_same_seed_gives_the_same_sequence(
    amqp_connection: AbstractRobustConnection, prefix: str
) -> None:
    """Two runs with one seed publish the same events; another seed publishes others."""

    async def sequence(seed: int, count: int = 60) -> list[tuple[str, dict[str, Any]]]:
        """The first `count` events of a fast run, stopped after them however fast it went."""
        stop = asyncio.Event()
        events: list[PublishedEvent] = []

        def keep(event: PublishedEvent) -> None:
            events.append(event)
            if len(events) == count:
                stop.set()

        async with (
            EventPublisher(prefix=prefix, source="demo-test", connection=amqp_connection) as pub,
            asyncio.timeout(30),
        ):
            await run_demo(pub, rate=400.0, stop=stop, seed=seed, on_event=keep)
        return [(event.routing_key, event.envelope["data"]) for event in events]

    first, second, other = await sequence(7), await sequence(7), await sequence(8)
    assert len(first) == 60
    assert first == second
    assert first != other


async def test_stop_ends_a_fast_demo_after_the_event_in_flight(
    amqp_connection: AbstractRobustConnection, prefix: str, tap: AbstractQueue
) -> None:
    """Setting `stop` during a fast run ends it before the next event is published."""
    stop = asyncio.Event()
    seen: list[PublishedEvent] = []

    def count(event: PublishedEvent) -> None:
        seen.append(event)
        if len(seen) == 25:
            stop.set()

    async with EventPublisher(prefix=prefix, source="demo-test", connection=amqp_connection) as p:
        async with asyncio.timeout(10):
            stats = await run_demo(p, rate=RATE, stop=stop, seed=SEED, on_event=count)
    assert stats.published == len(seen) == 25


async def test_stop_interrupts_the_pause_between_events(
    amqp_connection: AbstractRobustConnection, prefix: str, tap: AbstractQueue
) -> None:
    """Setting `stop` while the demo waits for its next slot (2 s away) ends it at once."""
    stop = asyncio.Event()
    first = asyncio.Event()
    loop = asyncio.get_running_loop()
    async with EventPublisher(prefix=prefix, source="demo-test", connection=amqp_connection) as p:
        task = asyncio.create_task(
            run_demo(p, rate=0.5, stop=stop, seed=SEED, on_event=lambda _: first.set())
        )
        async with asyncio.timeout(5):
            await first.wait()
        stopped_at = loop.time()
        stop.set()
        async with asyncio.timeout(5):
            stats = await task
        assert loop.time() - stopped_at < 0.5
    assert stats.published == 1


@pytest.mark.parametrize(
    "options",
    [
        {"rate": 0.0},
        {"rate": float("nan")},
        {"duration": -1.0},
        {"projects": ()},
        {"projects": ("a.b",)},
    ],
)
async def test_invalid_arguments_are_refused(
    amqp_connection: AbstractRobustConnection, prefix: str, options: dict[str, Any]
) -> None:
    """A non-positive rate, negative duration or bad project id raises ValueError up front."""
    async with EventPublisher(prefix=prefix, source="demo-test", connection=amqp_connection) as p:
        with pytest.raises(ValueError, match="must be"):
            await run_demo(p, **{"duration": 1.0, **options})
