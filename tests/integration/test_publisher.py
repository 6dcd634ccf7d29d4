"""EventPublisher against the real RabbitMQ: what arrives, in what order, and how it fails."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from yarl import URL

from producers import (
    BrokerUnavailableError,
    EventPublisher,
    InvalidEventError,
    PublishedEvent,
    PublisherClosedError,
    PublishError,
    UnroutableError,
)
from schemas import EVENT_MODELS, Artifact, Envelope, ProgressUpdate, new_event_id, utc_now
from schemas.errors import EventBridgeError

pytestmark = pytest.mark.broker

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

RECEIVE_TIMEOUT = 15.0

Helper = Callable[[EventPublisher], Awaitable[PublishedEvent]]


@dataclass(frozen=True)
class HelperCase:
    """A typed-helper call and the message it must produce."""

    event_type: str
    call: Helper
    project_id: str | None
    data: dict[str, Any]


@pytest.fixture
async def sink(
    prefix: str, amqp_connection: AbstractRobustConnection
) -> AsyncIterator[AbstractQueue]:
    """A plain queue bound to `<prefix>.events` with "#": receives everything published."""
    channel = await amqp_connection.channel()
    exchange = await channel.declare_exchange(
        f"{prefix}.events", aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(f"{prefix}.test-sink", durable=False)
    await queue.bind(exchange, routing_key="#")
    yield queue
    await queue.delete(if_unused=False, if_empty=False)
    await channel.close()


@pytest.fixture
async def publisher(amqp_url: str, prefix: str) -> AsyncIterator[EventPublisher]:
    """An open EventPublisher on the test's prefix."""
    async with EventPublisher(amqp_url, prefix=prefix, source="test-suite") as opened:
        yield opened


async def receive(queue: AbstractQueue, count: int) -> list[AbstractIncomingMessage]:
    """Take exactly `count` messages from `queue` (basic.get, so none is over-fetched).

    Fails the test when they have not all arrived within RECEIVE_TIMEOUT seconds.
    """
    messages: list[AbstractIncomingMessage] = []
    async with asyncio.timeout(RECEIVE_TIMEOUT):
        while len(messages) < count:
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.01)
            else:
                messages.append(message)
    return messages


HELPER_CASES: list[HelperCase] = [
    HelperCase(
        "agent_status",
        lambda p: p.agent_status("p1", agent_id="a1", status="running", message="go"),
        "p1",
        {"agent_id": "a1", "status": "running", "message": "go"},
    ),
    HelperCase(
        "progress_update",
        lambda p: p.progress_update("p1", agent_id="a1", progress=0.5, stage="plan", eta=3),
        "p1",
        {"agent_id": "a1", "progress": 0.5, "stage": "plan", "eta": 3},
    ),
    HelperCase(
        "generation_complete",
        lambda p: p.generation_complete(
            "p-2",
            agent_id="a1",
            artifacts=[{"name": "main.tf", "kind": "terraform"}, Artifact(name="README.md")],
            generation_id="g1",
        ),
        "p-2",
        {
            "agent_id": "a1",
            "generation_id": "g1",
            "artifacts": [{"name": "main.tf", "kind": "terraform"}, {"name": "README.md"}],
        },
    ),
    HelperCase(
        "error",
        lambda p: p.error("p1", code="quota", message="over quota", retryable=False),
        "p1",
        {"code": "quota", "message": "over quota", "retryable": False},
    ),
    HelperCase(
        "activity_created",
        lambda p: p.activity_created(None, actor="alice", action="deployed", target="prod"),
        None,
        {"actor": "alice", "action": "deployed", "target": "prod", "priority": "normal"},
    ),
    HelperCase(
        "step_updated",
        lambda p: p.step_updated("p1", workflow_id="w1", step_id="s1", changes={"x": None}),
        "p1",
        {"workflow_id": "w1", "step_id": "s1", "changes": {"x": None}},
    ),
    HelperCase(
        "step_completed",
        lambda p: p.step_completed("p1", workflow_id="w1", step_id="s1", result=[1, 2]),
        "p1",
        {"workflow_id": "w1", "step_id": "s1", "result": [1, 2]},
    ),
    HelperCase(
        "deployment_status",
        lambda p: p.deployment_status("p1", deployment_id="d1", status="live", progress=1.0),
        "p1",
        {"deployment_id": "d1", "status": "live", "progress": 1.0},
    ),
    HelperCase(
        "deployment_log",
        lambda p: p.deployment_log("p1", deployment_id="d1", stream="stdout", line="héllo"),
        "p1",
        {"deployment_id": "d1", "stream": "stdout", "line": "héllo"},
    ),
]


def test_every_event_type_has_a_helper_case() -> None:
    """The helper cases below cover every event type in the registry."""
    assert {case.event_type for case in HELPER_CASES} == set(EVENT_MODELS)


@pytest.mark.parametrize("case", HELPER_CASES, ids=[case.event_type for case in HELPER_CASES])
async def test_typed_helper_publishes_contract_message(
    publisher: EventPublisher, sink: AbstractQueue, case: HelperCase
) -> None:
    """Each typed helper sends the right routing key, envelope, data and message properties."""
    event_type, project_id = case.event_type, case.project_id
    published = await case.call(publisher)
    [message] = await receive(sink, 1)
    expected_key = f"project.{project_id}.{event_type}" if project_id else f"global.{event_type}"
    assert published.routing_key == message.routing_key == expected_key
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.content_type == "application/json"
    assert message.message_id == published.id
    assert message.type == event_type
    assert message.timestamp is not None
    envelope = json.loads(message.body.decode("utf-8"))
    assert envelope == published.envelope
    assert list(envelope) == [
        "id",
        "type",
        "schema_version",
        "project_id",
        "source",
        "occurred_at",
        "data",
    ]
    assert envelope["id"] == published.id
    assert len(published.id) == 36
    assert envelope["type"] == event_type
    assert envelope["schema_version"] == 1
    assert envelope["project_id"] == project_id
    assert envelope["source"] == "test-suite"
    assert TIMESTAMP.match(envelope["occurred_at"])
    sent_at = datetime.fromisoformat(envelope["occurred_at"])
    assert abs(datetime.now(UTC) - sent_at) < timedelta(minutes=1)
    assert envelope["data"] == case.data
    Envelope.model_validate(envelope)
    EVENT_MODELS[event_type].model_validate(envelope["data"])


async def test_publish_uses_given_id_time_model_and_headers(
    publisher: EventPublisher, sink: AbstractQueue
) -> None:
    """publish() takes a pydantic model, a chosen id and zoned time, and extra AMQP headers."""
    moment = datetime(2026, 11, 26, 14, 0, 0, 5000, tzinfo=timezone(timedelta(hours=2)))
    published = await publisher.publish(
        "progress_update",
        ProgressUpdate(agent_id="a1", progress=0.25),
        project_id="p1",
        event_id="my-id-1",
        occurred_at=moment,
        headers={"x-trace": "t-1", "x-attempt": 2, "x-test": True},
    )
    [message] = await receive(sink, 1)
    assert message.message_id == published.id == "my-id-1"
    assert message.headers["x-trace"] == "t-1"
    assert message.headers["x-attempt"] == 2
    assert message.headers["x-test"] is True
    envelope = json.loads(message.body)
    assert envelope["occurred_at"] == "2026-11-26T12:00:00.005Z"
    assert envelope["data"] == {"agent_id": "a1", "progress": 0.25}


async def test_publish_envelope_keeps_its_fields(
    publisher: EventPublisher, sink: AbstractQueue
) -> None:
    """publish_envelope() sends a ready envelope with its own id, source and extra fields."""
    envelope = Envelope(
        id="env-1",
        type="agent_status",
        schema_version=1,
        project_id=None,
        source="other-producer",
        occurred_at=utc_now(),
        data={"agent_id": "a1", "status": "idle", "shard": 3},
        trace_id="t-9",  # an unknown top-level field, which the envelope keeps
    )
    published = await publisher.publish_envelope(envelope)
    [message] = await receive(sink, 1)
    body = json.loads(message.body)
    assert message.routing_key == published.routing_key == "global.agent_status"
    assert body["source"] == "other-producer"
    assert body["trace_id"] == "t-9"
    assert body["data"] == {"agent_id": "a1", "status": "idle", "shard": 3}


async def test_batch_of_1000_arrives_complete_and_in_order(
    publisher: EventPublisher, sink: AbstractQueue
) -> None:
    """publish_batch pipelines 1,000 confirms and every event arrives once, in input order."""
    envelopes = [
        Envelope(
            id=new_event_id(),
            type="deployment_log",
            schema_version=1,
            project_id="p1",
            source="test-suite",
            occurred_at=utc_now(),
            data={"deployment_id": "d1", "stream": "stdout", "line": f"line {index}"},
        )
        for index in range(1000)
    ]
    published = await publisher.publish_batch(envelopes, window=100)
    assert [event.id for event in published] == [envelope.id for envelope in envelopes]
    messages = await receive(sink, 1000)
    assert [message.message_id for message in messages] == [envelope.id for envelope in envelopes]
    lines = [json.loads(message.body)["data"]["line"] for message in messages]
    assert lines == [f"line {index}" for index in range(1000)]
    assert await sink.get(fail=False, no_ack=True) is None


async def test_unroutable_publish_raises(
    amqp_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A publish no queue receives raises UnroutableError at once, and is not retried."""
    caplog.set_level(logging.WARNING, logger="producers")
    async with EventPublisher(amqp_url, prefix=prefix, retry_attempts=5) as publisher:
        started = time.monotonic()
        with pytest.raises(UnroutableError, match="no queue is bound") as caught:
            await publisher.agent_status("p1", agent_id="a1", status="idle")
        assert time.monotonic() - started < 2.0
    assert caught.value.routing_key == "project.p1.agent_status"
    assert caught.value.exchange == f"{prefix}.events"
    assert isinstance(caught.value, PublishError)
    assert isinstance(caught.value, EventBridgeError)
    assert not [record for record in caplog.records if "retrying" in record.getMessage()]


INVALID_PUBLISHES: list[tuple[str, Helper, str]] = [
    ("unknown type", lambda p: p.publish("agent_moved", {}, project_id="p1"), "unknown event"),
    ("bad data", lambda p: p.progress_update("p1", agent_id="a1", progress=1.5), "progress"),
    ("missing field", lambda p: p.publish("error", {"code": "x"}, project_id=None), "message"),
    ("bad project", lambda p: p.agent_status("a.b", agent_id="a", status="idle"), "project_id"),
    (
        "naive time",
        lambda p: p.publish(
            "agent_status",
            {"agent_id": "a", "status": "idle"},
            project_id="p1",
            occurred_at=datetime(2026, 1, 1),  # naive on purpose: the contract needs a zone
        ),
        "occurred_at",
    ),
    (
        "too large",
        lambda p: p.deployment_log(
            "p1", deployment_id="d", stream="stdout", line="x" * 16000, pad="y" * 60000
        ),
        "limit",
    ),
    (
        "invalid batch member",
        lambda p: _first(
            p.publish_batch(
                [
                    Envelope(
                        id="ok-1",
                        type="agent_status",
                        schema_version=1,
                        project_id="p1",
                        source="s",
                        occurred_at=utc_now(),
                        data={"agent_id": "a", "status": "idle"},
                    ),
                    Envelope(
                        id="bad-1",
                        type="agent_status",
                        schema_version=1,
                        project_id="p1",
                        source="s",
                        occurred_at=utc_now(),
                        data={"agent_id": "a", "status": "sleeping"},
                    ),
                ]
            )
        ),
        "status",
    ),
]


async def _first(events: Awaitable[list[PublishedEvent]]) -> PublishedEvent:
    """Await a batch and return its first event (adapts publish_batch to the Helper shape)."""
    return (await events)[0]


@pytest.mark.parametrize(
    ("case", "helper", "mentions"), INVALID_PUBLISHES, ids=[case[0] for case in INVALID_PUBLISHES]
)
async def test_invalid_event_raises_before_sending(
    publisher: EventPublisher, sink: AbstractQueue, case: str, helper: Helper, mentions: str
) -> None:
    """An invalid event raises InvalidEventError (a ValueError) and nothing reaches the queue."""
    with pytest.raises(InvalidEventError, match=mentions) as caught:
        await helper(publisher)
    assert isinstance(caught.value, ValueError)
    marker = await publisher.agent_status("p1", agent_id="marker", status="idle")
    [first] = await receive(sink, 1)
    assert first.message_id == marker.id


async def test_external_connection_stays_open(
    prefix: str, sink: AbstractQueue, amqp_connection: AbstractRobustConnection
) -> None:
    """A publisher given a connection publishes on it and leaves it open after exit."""
    async with EventPublisher(prefix=prefix, connection=amqp_connection) as publisher:
        first = await publisher.agent_status("p1", agent_id="a1", status="running")
    assert not amqp_connection.is_closed
    async with EventPublisher(prefix=prefix, connection=amqp_connection) as publisher:
        second = await publisher.agent_status("p1", agent_id="a1", status="succeeded")
    assert not amqp_connection.is_closed
    messages = await receive(sink, 2)
    assert [message.message_id for message in messages] == [first.id, second.id]


async def test_publishing_outside_async_with_raises(amqp_url: str, prefix: str) -> None:
    """Publishing before entering or after leaving the publisher raises PublisherClosedError."""
    publisher = EventPublisher(amqp_url, prefix=prefix)
    with pytest.raises(PublisherClosedError, match="async with"):
        await publisher.agent_status("p1", agent_id="a1", status="idle")
    async with publisher:
        pass
    with pytest.raises(PublisherClosedError, match="async with"):
        await publisher.agent_status("p1", agent_id="a1", status="idle")


async def test_unreachable_broker_fails_clearly_in_bounded_time(prefix: str) -> None:
    """An unreachable broker gives BrokerUnavailableError naming it, after bounded retries."""
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError) as caught:
        async with EventPublisher(
            "amqp://guest:guest@127.0.0.1:1/", prefix=prefix, retry_attempts=2, publish_timeout=1.0
        ) as publisher:
            await publisher.agent_status("p1", agent_id="a1", status="idle")
    assert time.monotonic() - started < 10.0
    text = str(caught.value)
    assert "127.0.0.1:1" in text
    assert "after 2 attempt(s)" in text
    assert "check that the broker is running" in text
    assert "guest:guest" not in text


async def test_wrong_credentials_fail_without_retries(amqp_url: str, prefix: str) -> None:
    """A refused login is reported at once (no retries) and says to check the credentials."""
    bad_url = str(URL(amqp_url).with_password("wrong-password"))
    with pytest.raises(BrokerUnavailableError, match="check the user name, password"):
        async with EventPublisher(bad_url, prefix=prefix, retry_attempts=5):
            pass
