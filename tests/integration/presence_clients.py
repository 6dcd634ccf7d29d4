"""Presence as clients see it: real Socket.IO and WebSocket clients with tokens, and the member
list each one holds from the presence messages it received."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import websockets
from pydantic import BaseModel

from schemas import presence as models
from tests import tokens
from tests.helpers import wait_for
from tests.integration.clients import SocketIOWatcher, WebSocketWatcher

Members = dict[str, int]
"""user id → connections, as one client currently sees a project's presence."""


def presence_messages(client: SocketIOWatcher | WebSocketWatcher) -> list[tuple[str, Any]]:
    """The presence messages a client received, in order, with WebSocket spellings (`_`)."""
    if isinstance(client, SocketIOWatcher):
        return [
            (name.replace("-", "_"), data)
            for name, data in client.received
            if name.startswith("presence")
        ]
    return [
        (frame["type"], frame)
        for frame in client.received
        if str(frame.get("type", "")).startswith("presence") and frame["type"] != "presence_state"
    ]


SIO_MODELS: dict[str, type[BaseModel]] = {
    "presence": models.PresenceList,
    "presence_joined": models.PresenceJoined,
    "presence_updated": models.PresenceUpdated,
    "presence_left": models.PresenceLeft,
}
WS_MODELS: dict[str, type[BaseModel]] = {
    "presence": models.WsPresence,
    "presence_joined": models.WsPresenceJoined,
    "presence_updated": models.WsPresenceUpdated,
    "presence_left": models.WsPresenceLeft,
}


def check_contract(client: SocketIOWatcher | WebSocketWatcher) -> int:
    """Validate every presence message a client received against its protocol model; return
    how many there were."""
    messages = presence_messages(client)
    table = SIO_MODELS if isinstance(client, SocketIOWatcher) else WS_MODELS
    for name, payload in messages:
        table[name].model_validate(payload)
    return len(messages)


def members_seen(client: SocketIOWatcher | WebSocketWatcher) -> Members:
    """The members a client holds: its last `presence` list with the changes since applied."""
    members: Members = {}
    for name, payload in presence_messages(client):
        if name == "presence":
            members = {member["user_id"]: member["connections"] for member in payload["members"]}
        elif name in ("presence_joined", "presence_updated"):
            members[payload["member"]["user_id"]] = payload["member"]["connections"]
        elif name == "presence_left":
            members.pop(payload["user_id"], None)
    return members


def states_seen(client: SocketIOWatcher | WebSocketWatcher) -> dict[str, Any]:
    """The state of each member as a client last heard it."""
    states: dict[str, Any] = {}
    for name, payload in presence_messages(client):
        if name == "presence":
            states = {member["user_id"]: member["state"] for member in payload["members"]}
        elif name in ("presence_joined", "presence_updated"):
            states[payload["member"]["user_id"]] = payload["member"]["state"]
    return states


def token_of(user: str, projects: list[str] | None = None, name: str | None = None) -> str:
    """A token for `user` granting `projects` (p1 when not given)."""
    return tokens.hs256(sub=user, projects=projects or ["p1"], name=name)


@asynccontextmanager
async def sio_member(
    base_url: str, user: str, project: str = "p1"
) -> AsyncIterator[SocketIOWatcher]:
    """A Socket.IO client of `user` in `project`'s room."""
    watcher = SocketIOWatcher()
    await watcher.client.connect(
        base_url,
        auth={"token": token_of(user, [project])},
        transports=["websocket"],
        wait_timeout=5,
    )
    try:
        ack = await watcher.call("join-project", project)
        assert ack["ok"], ack
        await wait_for(lambda: any(name == "presence" for name, _ in presence_messages(watcher)))
        yield watcher
    finally:
        await watcher.client.disconnect()


@asynccontextmanager
async def ws_member(ws_url: str, user: str, project: str = "p1") -> AsyncIterator[WebSocketWatcher]:
    """A native WebSocket client of `user` in `project`'s room."""
    async with websockets.connect(f"{ws_url}/ws", compression=None) as connection:
        watcher = WebSocketWatcher(connection)
        try:
            await watcher.send({"type": "auth", "token": token_of(user, [project])})
            reply = await watcher.request(
                {"type": "subscribe", "project_id": project}, "subscribed"
            )
            assert reply["type"] == "subscribed", reply
            await wait_for(lambda: bool(watcher.replies("presence")))
            yield watcher
        finally:
            await watcher.close()


def dumps(message: dict[str, Any]) -> str:
    """A message as the JSON text a client sends."""
    return json.dumps(message, separators=(",", ":"))
