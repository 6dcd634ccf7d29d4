"""The log deleted under a running bridge: it recovers with a new epoch, and old offsets resync."""

from __future__ import annotations

import aio_pika

from producers import EventPublisher
from tests.helpers import wait_for
from tests.integration.clients import websocket_client
from tests.integration.conftest import RunningBridge


async def test_recreated_log_gets_a_new_epoch_and_old_offsets_resync(
    bridge: RunningBridge,
    publisher: EventPublisher,
    amqp_connection: aio_pika.abc.AbstractConnection,
    prefix: str,
) -> None:
    """After the log is deleted, the bridge re-creates it under a new epoch, delivers live
    events again, and a resume with the old epoch gets resync-required `epoch_mismatch`."""
    async with websocket_client(f"{bridge.ws_url}/ws/ai/p1") as ws:
        await wait_for(lambda: bool(ws.replies("subscribed")))
        old_epoch = ws.replies("subscribed")[0]["epoch"]
        await publisher.agent_status("p1", agent_id="a", status="running")
        [before] = await ws.wait_for_events(1)

    channel = await amqp_connection.channel()
    await channel.queue_delete(f"{prefix}.log")
    await wait_for(lambda: bridge.hub.epoch not in ("", old_epoch), timeout=20)
    await wait_for(lambda: bridge.consumer.ready, timeout=20)

    async with websocket_client(f"{bridge.ws_url}/ws") as ws:
        reply = await ws.request(
            {
                "type": "subscribe",
                "project_id": "p1",
                "since": before["offset"],
                "epoch": old_epoch,
            },
            "subscribed",
        )
        await wait_for(lambda: bool(ws.replies("resync_required")))
        after = await publisher.agent_status("p1", agent_id="a", status="succeeded")
        await wait_for(lambda: any(event["id"] == after.id for event in ws.events()))
        [notice] = ws.replies("resync_required")
    assert reply["epoch"] != old_epoch
    assert notice["reason"] == "epoch_mismatch"
    assert notice["epoch"] == reply["epoch"]


async def test_connected_clients_are_told_when_the_log_is_recreated(
    bridge: RunningBridge,
    publisher: EventPublisher,
    amqp_connection: aio_pika.abc.AbstractConnection,
    prefix: str,
) -> None:
    """A client connected while the log is re-created gets resync_required `epoch_mismatch`
    for its room, then the new log's events."""
    async with websocket_client(f"{bridge.ws_url}/ws/ai/p1") as ws:
        await wait_for(lambda: bool(ws.replies("subscribed")))
        old_epoch = bridge.hub.epoch
        channel = await amqp_connection.channel()
        await channel.queue_delete(f"{prefix}.log")
        await wait_for(lambda: bool(ws.replies("resync_required")), timeout=20)
        await wait_for(lambda: bridge.consumer.ready, timeout=20)
        after = await publisher.agent_status("p1", agent_id="a", status="running")
        [event] = await ws.wait_for_events(1)
        [notice] = ws.replies("resync_required")
    assert notice["reason"] == "epoch_mismatch"
    assert notice["room"] == "project:p1"
    assert notice["epoch"] not in ("", old_epoch)
    assert event["id"] == after.id
