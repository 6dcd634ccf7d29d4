"""/health and /ready: connection counts, and readiness that follows the broker."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
from yarl import URL

from bridge.settings import Settings
from producers import EventPublisher
from tests.helpers import wait_for
from tests.integration.clients import socketio_client, websocket_client
from tests.integration.conftest import RunningBridge, running_bridge
from tests.proxy import TcpProxy


async def test_health_reports_connections_of_both_transports(bridge: RunningBridge) -> None:
    """/health names the broker node in use and counts Socket.IO and WebSocket connections as
    they come and go."""
    node = URL(bridge.settings.amqp_url)
    async with httpx.AsyncClient(base_url=bridge.http_url) as http:
        body = (await http.get("/health")).json()
        assert body["status"] == "ok"
        assert body["services"]["broker"] == {
            "status": "connected",
            "node": f"{node.host}:{node.port}",
        }
        assert body["services"]["websocket"] == {"status": "active", "connections": 0}
        assert body["services"]["socketio"] == {"status": "active", "connections": 0}
        async with (
            socketio_client(bridge.http_url),
            websocket_client(f"{bridge.ws_url}/ws"),
            websocket_client(f"{bridge.ws_url}/ws/ai"),
        ):
            body = (await http.get("/health")).json()
            assert body["services"]["websocket"]["connections"] == 2
            assert body["services"]["socketio"]["connections"] == 1
        await wait_for(lambda: not list(bridge.hub.connections()))
        body = (await http.get("/health")).json()
        assert body["services"]["websocket"]["connections"] == 0
        assert body["services"]["socketio"]["connections"] == 0


async def test_ready_is_503_while_broker_unreachable_and_200_when_back(
    bridge_settings: Callable[..., Settings], amqp_url: str, prefix: str
) -> None:
    """Cutting the broker link makes /ready 503 and /health degraded; restoring it brings 200
    back, and events flow again to clients that stayed connected."""
    broker = urlsplit(amqp_url)
    async with TcpProxy(broker.hostname or "127.0.0.1", broker.port or 5672) as proxy:
        proxied = amqp_url.replace(f":{broker.port or 5672}/", f":{proxy.port}/")
        async with (
            running_bridge(bridge_settings(amqp_url=proxied)) as running,
            httpx.AsyncClient(base_url=running.http_url) as http,
            websocket_client(f"{running.ws_url}/ws/ai/p1") as ws,
            EventPublisher(amqp_url, prefix=prefix) as publisher,
        ):
            assert (await http.get("/ready")).status_code == 200
            await proxy.cut()
            await wait_for(lambda: not running.consumer.ready)
            response = await http.get("/ready")
            assert response.status_code == 503
            assert "broker" in response.json()["reason"]
            health = (await http.get("/health")).json()
            assert health["status"] == "degraded"
            assert health["services"]["broker"]["status"] == "disconnected"
            # Published while the bridge is cut off: kept in the log, delivered after reconnect.
            during = await publisher.agent_status("p1", agent_id="a", status="waiting")
            await proxy.restore()
            await wait_for(lambda: running.consumer.ready, timeout=20)
            assert (await http.get("/ready")).status_code == 200
            after = await publisher.agent_status("p1", agent_id="a", status="running")
            await ws.wait_for_events(2)
    assert [event["id"] for event in ws.events()] == [during.id, after.id]
