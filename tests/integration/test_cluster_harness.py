"""The private cluster harness itself (tests/cluster.py, scripts/cluster.sh), proven with aio-pika.

Replicated queues, publishing on one node and reading on another, a node stopped, killed or the
whole cluster restarted, and resource alarms: what tests of the bridge against a cluster rely on.
Every test leaves the three nodes running, even when it fails.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar
from urllib.parse import urlsplit

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.cluster import AlarmKind, PrivateCluster

pytestmark = pytest.mark.cluster

STREAM = {"x-queue-type": "stream", "x-initial-cluster-size": 3}
QUORUM = {"x-queue-type": "quorum", "x-quorum-initial-group-size": 3}

T = TypeVar("T")


@pytest.fixture
def queue_name() -> str:
    """A queue name unique to this test (the cluster is shared by the session)."""
    return f"harness-{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[AbstractRobustConnection]:
    """A named connection to one node."""
    connection = await aio_pika.connect_robust(
        url, client_properties={"connection_name": "eventbridge-cluster-harness"}
    )
    async with connection:
        yield connection


@pytest.fixture
async def declared(
    private_cluster: PrivateCluster, queue_name: str
) -> AsyncIterator[dict[str, str]]:
    """Declares `queue_name` as a stream or a quorum queue on demand; deletes it afterwards."""
    created: dict[str, str] = {}
    yield created
    if created:
        async with connected(private_cluster.url_of(1)) as connection:
            channel = await connection.channel()
            await channel.queue_delete(queue_name)


async def declare(url: str, name: str, arguments: dict[str, object]) -> None:
    """Declare a durable queue with `arguments` through the node at `url`."""
    async with connected(url) as connection:
        channel = await connection.channel()
        await channel.declare_queue(name, durable=True, arguments=arguments)


async def publish(url: str, queue: str, bodies: list[bytes]) -> None:
    """Publish `bodies` to `queue` through the node at `url`, each confirmed by the broker."""
    async with connected(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        for body in bodies:
            await channel.default_exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=queue,
                timeout=10,
            )


async def read_stream(url: str, stream: str, count: int, timeout: float = 20) -> list[bytes]:
    """Read the first `count` messages of `stream` from its start, through the node at `url`."""
    bodies: list[bytes] = []
    done = asyncio.Event()
    async with connected(url) as connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=100)
        queue = await channel.get_queue(stream, ensure=False)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            bodies.append(message.body)
            await message.ack()
            if len(bodies) >= count:
                done.set()

        await queue.consume(on_message, arguments={"x-stream-offset": "first"})
        await asyncio.wait_for(done.wait(), timeout)
    return bodies


async def answers(url: str) -> bool:
    """Whether anything accepts TCP connections at the node's AMQP address."""
    parts = urlsplit(url)
    try:
        _, writer = await asyncio.open_connection(parts.hostname, parts.port)
    except ConnectionRefusedError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


def numbered(prefix: str, count: int) -> list[bytes]:
    """`count` distinct message bodies."""
    return [f"{prefix}-{index}".encode() for index in range(count)]


async def test_stream_has_a_replica_on_every_node(
    private_cluster: PrivateCluster, queue_name: str, declared: dict[str, str]
) -> None:
    """A stream declared with x-initial-cluster-size 3 has a member on each of the three nodes."""
    await declare(private_cluster.url_of(1), queue_name, STREAM)
    declared[queue_name] = "stream"
    info = await private_cluster.queue_info(queue_name)
    assert info["type"] == "stream"
    assert await private_cluster.members(queue_name) == [1, 2, 3]
    assert await private_cluster.leader(queue_name) in (1, 2, 3)


async def test_quorum_queue_has_a_replica_on_every_node(
    private_cluster: PrivateCluster, queue_name: str, declared: dict[str, str]
) -> None:
    """A quorum queue declared with an initial group size of 3 has a member on each node."""
    await declare(private_cluster.url_of(2), queue_name, QUORUM)
    declared[queue_name] = "quorum"
    assert (await private_cluster.queue_info(queue_name))["type"] == "quorum"
    assert await private_cluster.members(queue_name) == [1, 2, 3]


async def test_confirmed_publishes_on_node_2_are_read_on_node_3(
    private_cluster: PrivateCluster, queue_name: str, declared: dict[str, str]
) -> None:
    """Messages confirmed by node 2 are all read, in order, by a stream reader on node 3."""
    await declare(private_cluster.url_of(1), queue_name, STREAM)
    declared[queue_name] = "stream"
    bodies = numbered("m", 50)
    await publish(private_cluster.url_of(2), queue_name, bodies)
    assert await read_stream(private_cluster.url_of(3), queue_name, len(bodies)) == bodies


async def test_stream_outlives_its_stopped_leader(
    private_cluster: PrivateCluster, queue_name: str, declared: dict[str, str]
) -> None:
    """With its leader stopped, a stream takes confirmed publishes on another node and a reader
    on a survivor reads them all; start_node brings the old leader back as an online member."""
    await declare(private_cluster.url_of(1), queue_name, STREAM)
    declared[queue_name] = "stream"
    before = numbered("before", 10)
    await publish(private_cluster.url_of(1), queue_name, before)
    leader = await private_cluster.leader(queue_name)
    survivors = [node for node in (1, 2, 3) if node != leader]
    await private_cluster.stop_node(leader)
    try:
        # A graceful stop hands the leadership over; wait for it rather than race it.
        await wait_until(lambda: private_cluster.leader(queue_name), lambda new: new != leader)
        after = numbered("after", 10)
        await publish(private_cluster.url_of(survivors[0]), queue_name, after)
        read = await read_stream(private_cluster.url_of(survivors[1]), queue_name, 20)
        assert read == before + after
    finally:
        await private_cluster.start_node(leader)
    info = await wait_until(
        lambda: private_cluster.queue_info(queue_name), lambda info: len(info["online"]) == 3
    )
    assert private_cluster.name_of(leader) in info["online"]


async def test_a_killed_node_restarts_and_rejoins(
    private_cluster: PrivateCluster, queue_name: str, declared: dict[str, str]
) -> None:
    """kill_node takes a node down at once (the quorum queue keeps working on the other two) and
    start_node brings it back into the cluster."""
    await declare(private_cluster.url_of(1), queue_name, QUORUM)
    declared[queue_name] = "quorum"
    await private_cluster.kill_node(3)
    try:
        assert not await answers(private_cluster.url_of(3))
        await publish(private_cluster.url_of(2), queue_name, numbered("q", 5))
    finally:
        await private_cluster.start_node(3)
    running = await private_cluster.ctl(1, "cluster_status", "--formatter", "json")
    assert all(name in running for name in private_cluster.node_names)
    await publish(private_cluster.url_of(3), queue_name, numbered("again", 1))


# The whole cluster stopped and started again, and a memory alarm, are tried through the
# harness by the bridge's own tests (test_cluster_nodes.py), which assert more than the harness
# could: the disk alarm is the one kind only this file tries.
@pytest.mark.parametrize("kind", ["disk"])
async def test_an_alarm_on_one_node_blocks_publishers_on_every_node(
    private_cluster: PrivateCluster, queue_name: str, declared: dict[str, str], kind: AlarmKind
) -> None:
    """A disk alarm raised on node 1 holds back a publisher's confirm on node 2 until it is
    cleared; then the held message is confirmed."""
    await declare(private_cluster.url_of(1), queue_name, QUORUM)
    declared[queue_name] = "quorum"
    async with connected(private_cluster.url_of(2)) as connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(aio_pika.Message(b"free"), routing_key=queue_name)
        await private_cluster.alarm(1, kind)
        try:
            held = asyncio.ensure_future(
                channel.default_exchange.publish(aio_pika.Message(b"held"), routing_key=queue_name)
            )
            done, _ = await asyncio.wait({held}, timeout=2)
            assert not done, f"a publish was confirmed during the {kind} alarm"
        finally:
            await private_cluster.clear_alarm(1, kind)
        await asyncio.wait_for(held, 10)


async def wait_until(
    probe: Callable[[], Awaitable[T]], good: Callable[[T], bool], timeout: float = 30
) -> T:
    """Ask `probe()` until `good(answer)`; fail the test after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        answer = await probe()
        if good(answer):
            return answer
        if loop.time() > deadline:
            raise AssertionError(f"still {answer!r} after {timeout} s")
        await asyncio.sleep(0.5)
