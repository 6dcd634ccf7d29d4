"""Clients that follow one project across faults, and a publisher that keeps count.

`Follower` is a cheap client of either transport (raw WebSocket frames; Engine.IO v4 by hand for
Socket.IO), the way the client library behaves: it joins one project, remembers the last offset
and the epoch, and after a lost connection joins again — on the next bridge replica of its list
— with `since` and `epoch`. It records every event by id with its arrival time, so a test can
count what was lost, what came twice, and the longest pause.

`CountingPublisher` publishes with confirms at a steady rate through the SDK and sorts every
event into confirmed (must arrive) or in doubt (the SDK raised: it may or may not arrive).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import websockets

from producers import EventPublisher, PublishError
from schemas.envelope import new_event_id

Transport = Literal["websocket", "socketio"]


@dataclass
class Follower:
    """Follows project `project` on the bridges at `urls` (`http://host:port`), in order."""

    urls: list[str]
    project: str
    transport: Transport
    arrivals: list[tuple[str, int, float]] = field(default_factory=list)
    """(event id, offset, arrival time) of every event received, in order."""
    resyncs: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    closes: list[str] = field(default_factory=list)
    since: int | None = None
    epoch: str | None = None
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _joined: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        """Connect and keep following until `stop`."""
        self._task = asyncio.create_task(self._follow())

    async def joined(self, timeout: float = 30) -> None:
        """Wait until the first join was answered."""
        await asyncio.wait_for(self._joined.wait(), timeout)

    async def stop(self) -> None:
        """Stop following and close the connection."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def ids(self) -> Counter[str]:
        """How many times each event id arrived."""
        return Counter(event_id for event_id, _, _ in self.arrivals)

    def longest_pause(self, since: float, until: float) -> float:
        """The longest time without an event between `since` and `until`."""
        times = [since, *(at for _, _, at in self.arrivals if since <= at <= until), until]
        return max(later - earlier for earlier, later in itertools.pairwise(times))

    async def _follow(self) -> None:
        for url in itertools.cycle(self.urls):
            if self._stop.is_set():
                return
            with contextlib.suppress(OSError, websockets.WebSocketException, asyncio.TimeoutError):
                if self.transport == "websocket":
                    await self._websocket(url)
                else:
                    await self._socketio(url)
            await asyncio.sleep(0.2)

    def _join_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"project_id": self.project}
        if self.since is not None:
            fields["since"] = self.since
        if self.epoch is not None:
            fields["epoch"] = self.epoch
        return fields

    def _event(self, payload: dict[str, Any]) -> None:
        offset = payload["offset"]
        if self.since is None or offset > self.since:
            self.since = offset
        self.arrivals.append((payload["id"], offset, time.monotonic()))

    async def _websocket(self, url: str) -> None:
        async with websockets.connect(
            url.replace("http", "ws", 1) + "/ws", compression=None, open_timeout=5
        ) as connection:
            self.connections += 1
            await connection.send(json.dumps({"type": "subscribe", **self._join_fields()}))
            try:
                async for frame in connection:
                    message = json.loads(frame)
                    kind = message.get("type")
                    if "offset" in message and "id" in message:
                        self._event(message)
                    elif kind == "subscribed":
                        self.epoch = message["epoch"]
                        self._joined.set()
                    elif kind == "resync_required":
                        self.resyncs.append(message)
                        self.epoch, self.since = message["epoch"], message["offset"]
            finally:
                self.closes.append(f"{url} {connection.close_code} {connection.close_reason}")

    async def _socketio(self, url: str) -> None:
        address = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        async with websockets.connect(address, compression=None, open_timeout=5) as connection:
            await asyncio.wait_for(connection.recv(), 5)  # Engine.IO open
            await connection.send("40")
            self.connections += 1
            await connection.send("420" + json.dumps(["join-project", self._join_fields()]))
            try:
                async for packet in connection:
                    assert isinstance(packet, str)
                    if packet == "2":
                        await connection.send("3")
                    elif packet.startswith("430"):
                        ack = json.loads(packet[3:])[0]
                        if ack.get("ok"):
                            self.epoch = ack["epoch"]
                            self._joined.set()
                    elif packet.startswith("42["):
                        name, payload = json.loads(packet[2:])
                        if name == "resync-required":
                            self.resyncs.append(payload)
                            self.epoch, self.since = payload["epoch"], payload["offset"]
                        elif name != "bridge-disconnect" and not name.startswith("presence"):
                            self._event(payload)  # presence (docs/clients.md) is no event
            finally:
                self.closes.append(f"{url} {connection.close_code} {connection.close_reason}")


@dataclass
class CountingPublisher:
    """Publishes `deployment_log` events of `project` at `rate` per second, with confirms."""

    urls: str
    prefix: str
    project: str
    rate: float
    confirmed: list[str] = field(default_factory=list)
    in_doubt: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        """Publish until `stop`."""
        self._task = asyncio.create_task(self._publish())

    async def stop(self) -> None:
        """Stop publishing (after the publish in flight)."""
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _publish(self) -> None:
        async with EventPublisher(
            self.urls, prefix=self.prefix, source="fault-test", publish_timeout=5, heartbeat=2
        ) as publisher:
            started = time.monotonic()
            for number in itertools.count():
                if self._stop.is_set():
                    return
                delay = started + number / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                event_id = new_event_id()
                data = {"deployment_id": "d", "stream": "stdout", "line": f"{number}"}
                try:
                    await publisher.publish(
                        "deployment_log", data, project_id=self.project, event_id=event_id
                    )
                except PublishError as exc:
                    self.errors[type(exc).__name__] += 1
                    self.in_doubt.append(event_id)
                    continue
                self.confirmed.append(event_id)


def lost_and_doubled(follower: Follower, confirmed: list[str]) -> tuple[int, int]:
    """How many confirmed events a follower never got, and how many it got more than once."""
    seen = follower.ids()
    lost = sum(1 for event_id in confirmed if event_id not in seen)
    doubled = sum(1 for count in seen.values() if count > 1)
    return lost, doubled


async def follow(followers: list[Follower]) -> list[Follower]:
    """Start the followers and wait until each has joined its room."""
    for follower in followers:
        follower.start()
    await asyncio.gather(*(follower.joined(60) for follower in followers))
    return followers


async def settle(followers: list[Follower], confirmed: list[str], timeout: float = 60) -> None:
    """Wait until every follower has every confirmed event (or `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(lost_and_doubled(follower, confirmed)[0] == 0 for follower in followers):
            return
        await asyncio.sleep(0.2)
