"""Broker address lists without a cluster: two TCP proxies in front of the one broker stand for
two nodes, so cutting the one in use is a node going away. (The real cluster's faults are in
tests/cluster/.)"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from yarl import URL

from bridge.settings import Settings
from producers import BatchPublishError, EventPublisher
from producers.errors import BrokerAuthenticationError
from tests.helpers import make_envelope
from tests.integration.clients import websocket_client
from tests.integration.conftest import RunningBridge, free_port, running_bridge, serve_process
from tests.proxy import TcpProxy


@contextlib.asynccontextmanager
async def two_nodes(amqp_url: str) -> AsyncIterator[tuple[dict[str, TcpProxy], str]]:
    """Two proxies to the broker, and the URL list naming both (`host:port` → proxy)."""
    broker = URL(amqp_url)
    async with (
        TcpProxy(broker.host or "127.0.0.1", broker.port or 5672) as first,
        TcpProxy(broker.host or "127.0.0.1", broker.port or 5672) as second,
    ):
        urls = [str(broker.with_port(proxy.port)) for proxy in (first, second)]
        yield {f"127.0.0.1:{p.port}": p for p in (first, second)}, ",".join(urls)


async def test_the_bridge_fails_over_to_the_next_node_and_misses_nothing(
    amqp_url: str, bridge_settings: Callable[..., Settings], publisher: EventPublisher
) -> None:
    """When the node in use goes away, the bridge connects to the next one, /health names it,
    and a connected client gets every event published meanwhile, in order, once, without
    reconnecting."""
    async with two_nodes(amqp_url) as (proxies, urls):
        settings = bridge_settings(amqp_url=urls, heartbeat_timeout=6)
        async with running_bridge(settings) as bridge:
            async with (
                httpx.AsyncClient(base_url=bridge.http_url) as http,
                websocket_client(f"{bridge.ws_url}/ws/ai/p1") as client,
            ):
                await client.request({"type": "ping"}, "pong")  # subscribed by now
                first_node = (await http.get("/health")).json()["services"]["broker"]["node"]
                sent = [await publisher.agent_status("p1", agent_id="a", status="running")]
                await client.wait_for_events(1)
                await proxies[first_node].cut()
                for number in range(20):
                    sent.append(
                        await publisher.deployment_log(
                            "p1", deployment_id="d", stream="stdout", line=f"line {number}"
                        )
                    )
                events = await client.wait_for_events(21, timeout=30)
                health = (await http.get("/health")).json()
                assert client.connection.close_code is None  # it never had to reconnect
            assert [event["id"] for event in events] == [event.id for event in sent]
            offsets = [event["offset"] for event in events]
            assert offsets == sorted(set(offsets))
            assert health["services"]["broker"]["node"] not in (None, first_node)
            assert bridge.consumer.failovers == 1


async def test_a_publisher_fails_over_and_names_what_was_in_doubt(
    amqp_url: str, prefix: str, bridge: RunningBridge
) -> None:
    """A batch whose node goes away mid-way: every event the batch reports confirmed is in the
    log, the others are named by id in BatchPublishError, and the publisher goes on on the next
    node."""
    async with (
        two_nodes(amqp_url) as (proxies, urls),
        EventPublisher(urls, prefix=prefix, publish_timeout=5) as sender,
    ):
        envelopes = [
            make_envelope(
                "deployment_log", "p2", {"deployment_id": "d", "stream": "stdout", "line": f"{n}"}
            )
            for n in range(3000)
        ]
        batch = asyncio.create_task(sender.publish_batch(envelopes, window=64))
        await asyncio.sleep(0.2)
        in_use = str(URL(sender.node or "").with_user(None).with_password(None))
        assert not batch.done()  # the node goes away mid-batch
        await proxies[in_use.removeprefix("amqp://").rstrip("/")].cut()
        try:
            confirmed = [event.id for event in await batch]
            failed: dict[str, object] = {}
        except BatchPublishError as exc:
            confirmed = [event.id for event in exc.confirmed]
            failed = dict(exc.failed)
        print(f"\n  batch of 3000: {len(confirmed)} confirmed, {len(failed)} in doubt")
        assert set(confirmed) | set(failed) == {envelope.id for envelope in envelopes}
        assert not set(confirmed) & set(failed)
        after = await sender.deployment_log("p2", deployment_id="d", stream="stdout", line="x")
        assert sender.node is not None
        assert in_use.removeprefix("amqp://") not in sender.node
    stored = await read_ids(amqp_url, prefix, after.id)
    assert set(confirmed) <= stored
    assert after.id in stored


async def read_ids(amqp_url: str, prefix: str, last: str) -> set[str]:
    """The ids of every record in the log up to the one with id `last`."""
    import aio_pika

    ids: set[str] = set()
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1000)
        queue = await channel.get_queue(f"{prefix}.log", ensure=False)
        done = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()
            if message.message_id:
                ids.add(message.message_id)
                if message.message_id == last:
                    done.set()

        tag = await queue.consume(on_message, arguments={"x-stream-offset": "first"})
        await asyncio.wait_for(done.wait(), 30)
        await queue.cancel(tag)
    return ids


async def test_a_refused_login_stops_serve_at_once_with_one_sentence(
    amqp_url: str, prefix: str
) -> None:
    """A wrong password ends `eventbridge serve` at once (no 30 s of retries) saying to check
    the credentials, without printing the password."""
    bad = str(URL(amqp_url).with_password("not-the-password"))
    started = time.monotonic()
    async with serve_process(bad, prefix, free_port(), EVENTBRIDGE_STARTUP_TIMEOUT="60") as process:
        _, stderr = await asyncio.wait_for(process.communicate(), 90)
    text = stderr.decode()
    assert process.returncode == 1
    # Not retried: no retry line, and far inside the 60 s retry budget even on a loaded machine.
    assert "retrying" not in text
    assert time.monotonic() - started < 30
    assert "refused the connection" in text.splitlines()[-1]
    assert "check the user name, password" in text.splitlines()[-1]
    assert "not-the-password" not in text
    assert "Traceback" not in text


async def test_a_refused_login_is_not_retried_by_the_sdk(amqp_url: str, prefix: str) -> None:
    """The SDK raises BrokerAuthenticationError at once for a wrong password, however many
    retries it is allowed."""
    bad = str(URL(amqp_url).with_password("not-the-password"))
    started = time.monotonic()
    with pytest.raises(BrokerAuthenticationError, match="check the user name"):
        async with EventPublisher(f"{bad},{bad}", prefix=prefix, retry_attempts=5):
            pass
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("amqp://a:5672/,http://b:5672/", "URL 2"),
        ("amqp://a:5672/,,amqp://c/", "empty"),
        ("amqp://a:5672/one,amqp://b:5672/two", "different virtual hosts"),
        ("amqp://a:notaport/", "bad port"),
    ],
)
async def test_a_bad_url_list_is_refused_with_a_sentence(
    value: str, says: str, prefix: str
) -> None:
    """`serve` refuses a malformed URL list before connecting: exit 2, one line naming the
    setting and what is wrong."""
    async with serve_process(value, prefix, free_port()) as process:
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    line = stderr.decode().strip().splitlines()[-1]
    assert line.startswith("eventbridge: invalid setting amqp_url (EVENTBRIDGE_AMQP_URL):")
    assert says in line
