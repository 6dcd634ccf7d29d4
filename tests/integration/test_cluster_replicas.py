"""Several bridge replicas on one clustered log, through the faults of replicas and links: a
replica SIGKILLed with 200 clients on it, a rolling restart of both replicas, the broker link cut
for 30 s, a link left half-open, and a node lost in the middle of an SDK batch. Publishing with
confirms runs throughout; lost and doubled events are counted and printed."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest

from producers import BatchPublishError, EventPublisher
from schemas.envelope import Envelope
from tests.cluster import PrivateCluster
from tests.helpers import make_envelope
from tests.integration.conftest import free_port, serve_process, wait_ready
from tests.integration.followers import (
    CountingPublisher,
    Follower,
    follow,
    lost_and_doubled,
    settle,
)
from tests.proxy import TcpProxy

pytestmark = pytest.mark.cluster

SETTINGS = {"EVENTBRIDGE_HEARTBEAT_TIMEOUT": "6", "EVENTBRIDGE_STARTUP_TIMEOUT": "60"}


@asynccontextmanager
async def replica(
    urls: str, prefix: str, port: int, **env: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """One `eventbridge serve` replica on `port`, ready."""
    async with serve_process(urls, prefix, port, settings={**SETTINGS, **env}) as process:
        await wait_ready(port, timeout=60)
        yield process


async def finish(followers: list[Follower], publisher: CountingPublisher) -> None:
    """Stop publishing, wait until every follower has every confirmed event, stop them."""
    await publisher.stop()
    await settle(followers, publisher.confirmed)
    for follower in followers:
        await follower.stop()


def report(name: str, followers: list[Follower], confirmed: list[str]) -> tuple[int, int]:
    """Print and return the followers' lost and doubled events, summed."""
    lost = doubled = 0
    for follower in followers:
        one_lost, one_doubled = lost_and_doubled(follower, confirmed)
        lost, doubled = lost + one_lost, doubled + one_doubled
    reconnected = sum(1 for follower in followers if follower.connections > 1)
    print(
        f"  {name}: {len(followers)} clients, {len(confirmed)} confirmed events, {lost} lost, "
        f"{doubled} twice, {reconnected} clients reconnected"
    )
    return lost, doubled


async def test_clients_of_a_killed_replica_resume_on_the_other_without_a_gap(
    private_cluster: PrivateCluster, prefix: str
) -> None:
    """Two replicas, 200 clients (both transports) half on each; one replica is SIGKILLed while
    events are published: its clients reconnect to the other and resume by offset, and every
    client ends with every confirmed event, once."""
    urls = ",".join(private_cluster.urls)
    ports = [free_port(), free_port()]
    bridges = [f"http://127.0.0.1:{port}" for port in ports]
    async with replica(urls, prefix, ports[0]) as first, replica(urls, prefix, ports[1]):
        followers = [
            Follower(bridges if number % 2 else bridges[::-1], "p1", transport)
            for number in range(100)
            for transport in ("websocket", "socketio")
        ]
        await follow(followers)
        publisher = CountingPublisher(urls, prefix, "p1", rate=30)
        publisher.start()
        await asyncio.sleep(2)
        first.send_signal(signal.SIGKILL)
        await asyncio.sleep(4)
        await finish(followers, publisher)
    lost, doubled = report("replica killed", followers, publisher.confirmed)
    assert (lost, doubled) == (0, 0)
    assert sum(1 for follower in followers if follower.connections > 1) >= 90


async def test_a_rolling_restart_of_both_replicas_loses_nothing(
    private_cluster: PrivateCluster, prefix: str
) -> None:
    """Both replicas are restarted with SIGTERM, one at a time, while events are published: the
    clients move to the other one and resume, and none loses or repeats an event."""
    urls = ",".join(private_cluster.urls)
    ports = [free_port(), free_port()]
    bridges = [f"http://127.0.0.1:{port}" for port in ports]
    async with AsyncExitStack() as stack:
        processes = [await stack.enter_async_context(replica(urls, prefix, p)) for p in ports]
        followers = [
            Follower(bridges[::-1] if number % 2 else bridges, "p1", transport)
            for number in range(10)
            for transport in ("websocket", "socketio")
        ]
        await follow(followers)
        publisher = CountingPublisher(urls, prefix, "p1", rate=30)
        publisher.start()
        for index, port in enumerate(ports):
            await asyncio.sleep(2)
            processes[index].send_signal(signal.SIGTERM)
            await processes[index].wait()
            processes[index] = await stack.enter_async_context(replica(urls, prefix, port))
        await asyncio.sleep(2)
        await finish(followers, publisher)
    lost, doubled = report("rolling restart", followers, publisher.confirmed)
    assert (lost, doubled) == (0, 0)


async def test_a_link_cut_for_30_seconds_recovers_and_loses_nothing(
    private_cluster: PrivateCluster, prefix: str
) -> None:
    """The bridge's only link to the broker is cut for 30 s: /ready answers 503 within a moment,
    the clients stay connected, and after the link is back every event confirmed meanwhile
    arrives, once."""
    node = private_cluster.url_of(1)
    host_port = node.split("@", 1)[1].rstrip("/")
    async with TcpProxy("127.0.0.1", int(host_port.rsplit(":", 1)[1])) as proxy:
        through = node.replace(host_port, f"127.0.0.1:{proxy.port}")
        port = free_port()
        async with replica(through, prefix, port), httpx.AsyncClient() as http:
            bridge = f"http://127.0.0.1:{port}"
            followers = [Follower([bridge], "p1", t) for t in ("websocket", "socketio")]
            await follow(followers)
            publisher = CountingPublisher(",".join(private_cluster.urls), prefix, "p1", rate=30)
            publisher.start()
            await asyncio.sleep(1)
            cut_at = time.monotonic()
            await proxy.cut()
            seen_503 = None
            while time.monotonic() - cut_at < 30:
                if seen_503 is None and (await http.get(f"{bridge}/ready")).status_code == 503:
                    seen_503 = time.monotonic() - cut_at
                await asyncio.sleep(0.5)
            await proxy.restore()
            await wait_ready(port, timeout=60)
            await asyncio.sleep(1)
            await finish(followers, publisher)
    print(f"\n  /ready said 503 {seen_503:.1f} s after the cut" if seen_503 else "\n  no 503 seen")
    lost, doubled = report("link cut 30 s", followers, publisher.confirmed)
    assert seen_503 is not None
    assert seen_503 < 7
    assert (lost, doubled) == (0, 0)
    assert all(follower.connections == 1 for follower in followers)


async def test_a_half_open_link_is_noticed_within_the_heartbeat_timeout(
    private_cluster: PrivateCluster, prefix: str
) -> None:
    """The link in use stops forwarding without closing (half-open): the bridge notices within
    its heartbeat timeout (6 s here), moves to the next node, and no event is lost."""
    proxies = [
        TcpProxy("127.0.0.1", int(url.rsplit(":", 1)[1].rstrip("/")))
        for url in private_cluster.urls[:2]
    ]
    async with proxies[0], proxies[1], httpx.AsyncClient() as http:
        through = ",".join(
            url.rsplit(":", 1)[0] + f":{proxy.port}/"
            for url, proxy in zip(private_cluster.urls, proxies, strict=False)
        )
        port = free_port()
        async with replica(through, prefix, port):
            bridge = f"http://127.0.0.1:{port}"
            followers = [Follower([bridge], "p1", t) for t in ("websocket", "socketio")]
            await follow(followers)
            publisher = CountingPublisher(",".join(private_cluster.urls), prefix, "p1", rate=30)
            publisher.start()
            await asyncio.sleep(1)
            health = (await http.get(f"{bridge}/health")).json()
            used = int(str(health["services"]["broker"]["node"]).rsplit(":", 1)[1])
            stalled = next(proxy for proxy in proxies if proxy.port == used)
            stalled_at = time.monotonic()
            await stalled.stall()

            async def moved() -> bool:
                body = (await http.get(f"{bridge}/health")).json()
                node = body["services"]["broker"]["node"]
                return node is not None and not str(node).endswith(f":{used}")

            noticed = None
            while time.monotonic() - stalled_at < 30:
                if await moved():
                    noticed = time.monotonic() - stalled_at
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1)
            await finish(followers, publisher)
            await stalled.restore(drop=True)
    print(f"\n  half-open link noticed and left after {noticed} s")
    lost, doubled = report("half-open link", followers, publisher.confirmed)
    assert noticed is not None
    assert noticed <= 6 + 2  # aiormq looks once a second
    assert (lost, doubled) == (0, 0)


async def test_a_node_lost_mid_batch_names_what_failed_and_delivers_what_was_confirmed(
    private_cluster: PrivateCluster, prefix: str
) -> None:
    """The node an SDK batch is published through is killed mid-batch: every event the batch
    confirmed is delivered, every one it did not is reported by id, and the publisher goes on
    on another node."""
    urls = ",".join(private_cluster.urls)
    port = free_port()
    async with replica(urls, prefix, port):
        follower = Follower([f"http://127.0.0.1:{port}"], "p2", "websocket")
        follower.start()
        await follower.joined()
        envelopes: list[Envelope] = [
            make_envelope(
                "deployment_log", "p2", {"deployment_id": "d", "stream": "stdout", "line": f"{n}"}
            )
            for n in range(4000)
        ]
        async with EventPublisher(urls, prefix=prefix, publish_timeout=5) as publisher:
            batch = asyncio.create_task(publisher.publish_batch(envelopes, window=64))
            await asyncio.sleep(0.3)
            port_in_use = str(publisher.node).rstrip("/").rsplit(":", 1)[1]
            node = next(
                number
                for number, url in enumerate(private_cluster.urls, start=1)
                if url.rstrip("/").endswith(f":{port_in_use}")
            )
            assert not batch.done()
            await private_cluster.kill_node(node)
            try:
                confirmed = [event.id for event in await batch]
                failed: dict[str, object] = {}
            except BatchPublishError as exc:
                confirmed = [event.id for event in exc.confirmed]
                failed = dict(exc.failed)
            after = await publisher.deployment_log(
                "p2", deployment_id="d", stream="stdout", line="x"
            )
        try:
            await settle([follower], [*confirmed, after.id])
            await follower.stop()
        finally:
            await private_cluster.start_node(node)
    lost, doubled = lost_and_doubled(follower, [*confirmed, after.id])
    print(
        f"\n  batch of 4000 through node {node}, killed: {len(confirmed)} confirmed, "
        f"{len(failed)} reported by id, {lost} lost, {doubled} twice"
    )
    assert set(confirmed) | set(failed) == {envelope.id for envelope in envelopes}
    assert (lost, doubled) == (0, 0)
