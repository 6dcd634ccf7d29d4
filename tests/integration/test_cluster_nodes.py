"""The bridge on a 3-node RabbitMQ cluster, through the cluster's own faults: each node stopped
in turn (the one the bridge uses and the stream leader's among them), the whole cluster
stopped and started, a resource alarm. Publishing with confirms runs throughout; every
scenario counts confirmed events lost and events delivered twice, and prints them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from producers import EventPublisher, PublishTimeoutError
from tests.cluster import PrivateCluster
from tests.helpers import wait_for
from tests.integration.conftest import free_port, serve_process, wait_ready
from tests.integration.followers import (
    CountingPublisher,
    Follower,
    follow,
    lost_and_doubled,
    settle,
)

pytestmark = pytest.mark.cluster

BRIDGE = {"EVENTBRIDGE_HEARTBEAT_TIMEOUT": "6", "EVENTBRIDGE_STARTUP_TIMEOUT": "60"}


@asynccontextmanager
async def bridge_on(cluster: PrivateCluster, prefix: str) -> AsyncIterator[str]:
    """`eventbridge serve` on the cluster (every node's URL), ready; its base URL."""
    port = free_port()
    async with serve_process(",".join(cluster.urls), prefix, port, settings=BRIDGE):
        await wait_ready(port, timeout=60)
        yield f"http://127.0.0.1:{port}"


async def node_in_use(bridge: str, cluster: PrivateCluster) -> int:
    """The number of the node the bridge is connected to (from /health)."""
    async with httpx.AsyncClient() as http:
        node = (await http.get(f"{bridge}/health")).json()["services"]["broker"]["node"]
    ports = [url.rsplit(":", 1)[1].rstrip("/") for url in cluster.urls]
    return ports.index(str(node).rsplit(":", 1)[1]) + 1


async def test_each_node_stopped_in_turn_loses_nothing_and_keeps_every_client(
    private_cluster: PrivateCluster, prefix: str
) -> None:
    """Nodes 1, 2 and 3 are stopped and started again one at a time while 40 events/s are
    published with confirms: every client, on both transports, keeps its connection and gets
    every confirmed event once, in order; the longest pause is printed."""
    cluster = private_cluster
    async with bridge_on(cluster, prefix) as bridge:
        followers = [
            Follower([bridge], "p1", transport) for transport in ("websocket", "socketio") * 2
        ]
        await follow(followers)
        publisher = CountingPublisher(",".join(cluster.urls), prefix, "p1", rate=40)
        publisher.start()
        started = time.monotonic()
        steps = []
        for node in (1, 2, 3):
            await asyncio.sleep(2)
            used = await node_in_use(bridge, cluster)
            leader = await cluster.leader(f"{prefix}.log")
            stopped_at = time.monotonic()
            await cluster.stop_node(node)
            await asyncio.sleep(4)
            await cluster.start_node(node)
            steps.append((node, used, leader, time.monotonic() - stopped_at))
        await asyncio.sleep(2)
        await publisher.stop()
        ended = time.monotonic()
        await settle(followers, publisher.confirmed)
        for follower in followers:
            await follower.stop()
    print(f"\n  {len(publisher.confirmed)} confirmed, {len(publisher.in_doubt)} in doubt")
    for node, used, leader, seconds in steps:
        print(
            f"  node {node} down for {seconds:.1f} s (the bridge used node {used}, the log's "
            f"leader was node {leader})"
        )
    for follower in followers:
        lost, doubled = lost_and_doubled(follower, publisher.confirmed)
        offsets = [offset for _, offset, _ in follower.arrivals]
        print(
            f"  {follower.transport}: {len(follower.arrivals)} received, {lost} lost, "
            f"{doubled} twice, {follower.connections} connection(s), longest pause "
            f"{follower.longest_pause(started, ended):.2f} s"
        )
        assert (lost, doubled) == (0, 0)
        assert offsets == sorted(offsets)
        assert follower.connections == 1, follower.closes
    assert {used for _, used, _, _ in steps} | {leader for _, _, leader, _ in steps}
    assert any(node == used for node, used, _, _ in steps), "the bridge's node was stopped"
    assert any(node == leader for node, _, leader, _ in steps), "the leader's node was stopped"


async def test_the_whole_cluster_stopped_and_started_again_loses_nothing(
    private_cluster: PrivateCluster, prefix: str
) -> None:
    """With every node stopped the bridge waits and /ready answers 503; once the cluster is
    back it is ready again and clients get every event confirmed before and after, once."""
    cluster = private_cluster
    async with bridge_on(cluster, prefix) as bridge, httpx.AsyncClient() as http:
        followers = [Follower([bridge], "p1", t) for t in ("websocket", "socketio")]
        await follow(followers)
        before = CountingPublisher(",".join(cluster.urls), prefix, "p1", rate=50)
        before.start()
        await asyncio.sleep(2)
        await before.stop()
        await cluster.stop_all()
        statuses = set()
        for _ in range(10):
            statuses.add((await http.get(f"{bridge}/ready")).status_code)
            await asyncio.sleep(0.3)
        await cluster.start_all()
        await wait_ready(int(bridge.rsplit(":", 1)[1]), timeout=90)
        after = CountingPublisher(",".join(cluster.urls), prefix, "p1", rate=50)
        after.start()
        await asyncio.sleep(2)
        await after.stop()
        confirmed = before.confirmed + after.confirmed
        await settle(followers, confirmed)
        for follower in followers:
            await follower.stop()
    print(
        f"\n  /ready while the cluster was down: {sorted(statuses)}; {len(before.confirmed)} "
        f"confirmed before, {len(after.confirmed)} after"
    )
    assert statuses == {503}
    for follower in followers:
        lost, doubled = lost_and_doubled(follower, confirmed)
        print(
            f"  {follower.transport}: {lost} lost, {doubled} twice, "
            f"{follower.connections} connection(s)"
        )
        assert (lost, doubled) == (0, 0)


async def test_an_alarm_blocks_publishers_with_a_clear_error_and_delivery_goes_on(
    private_cluster: PrivateCluster, prefix: str
) -> None:
    """A memory alarm blocks publishers: the SDK raises PublishTimeoutError naming the alarm
    instead of hanging, while the bridge still serves what the log holds (a client resuming
    from an old offset gets every missed event)."""
    cluster = private_cluster
    async with (
        bridge_on(cluster, prefix) as bridge,
        EventPublisher(",".join(cluster.urls), prefix=prefix, publish_timeout=2) as publisher,
    ):
        sent = [
            (
                await publisher.deployment_log(
                    "p1", deployment_id="d", stream="stdout", line=f"{n}"
                )
            ).id
            for n in range(30)
        ]
        await cluster.alarm(1, "memory")
        try:
            started = time.monotonic()
            with pytest.raises(PublishTimeoutError, match="memory or disk alarm") as raised:
                await publisher.deployment_log("p1", deployment_id="d", stream="stdout", line="x")
            blocked_for = time.monotonic() - started
            late = Follower([bridge], "p1", "websocket", since=-1)
            late.start()
            await late.joined()
            with contextlib.suppress(AssertionError):  # the assertion below says what is missing
                await wait_for(lambda: len(late.arrivals) >= 30, 20)
            await late.stop()
        finally:
            await cluster.clear_alarm(1, "memory")
    print(f"\n  the blocked publish raised after {blocked_for:.1f} s: {raised.value}")
    assert blocked_for < 5
    assert [event_id for event_id, _, _ in late.arrivals][:30] == sent
