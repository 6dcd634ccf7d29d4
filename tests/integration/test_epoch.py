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
    await wait_for(lambda: bridge.service.epoch not in ("", old_epoch), timeout=20)
    await wait_for(lambda: bridge.service.ready, timeout=20)

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
