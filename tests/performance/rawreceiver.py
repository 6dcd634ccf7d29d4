"""The benchmarks' in-process client: as cheap as the fan-out's raw clients, with what a
benchmark phase needs of a client (join with an acknowledgement, arrivals, notices).

A library client costs more per event than the bridge's own delivery: python-socketio's client
runs a task per event it receives, and `websockets` plus `json.loads` parse every frame. On a
machine the client shares with the bridge and the broker, that CPU is taken from the server
under test, so the ratio measured part of the client (tests/performance/README.md). This client
walks the frames by hand (`rawclients.FrameProtocol`) and reads an event's `offset`, `seq` and
`sent_at` with regular expressions, in place; only the rare control messages (replies, notices,
acknowledgements) are parsed as JSON.

    receiver = RawReceiver("socketio", "progress_update")
    await receiver.connect("http://127.0.0.1:8000")
    await receiver.call("join-project", {"project_id": "p1", "since": 41, "epoch": epoch})
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from typing import Any, Literal
from urllib.parse import urlsplit

from tests.performance.rawclients import SENT_AT, SEQ, FrameProtocol, client_frame
from tests.performance.receivers import Arrival, Receiver

OFFSET = re.compile(rb'"offset":\s*(\d+)')
ENGINEIO_PATH = "/socket.io/?EIO=4&transport=websocket"


def arrival_in(buffer: bytearray, start: int, end: int, received_at: float) -> Arrival | None:
    """The benchmark event in `buffer[start:end]` (its data's `seq` and `sent_at`, the offset
    the bridge appended last), or None if the frame is not one."""
    seq = SEQ.search(buffer, start, end)
    at = buffer.rfind(b'"offset":', start, end)
    offset = OFFSET.match(buffer, at, end) if at >= 0 else None
    if seq is None or offset is None:
        return None
    sent_at = SENT_AT.search(buffer, start, end)
    return Arrival(
        received_at,
        int(offset.group(1)),
        float(sent_at.group(1)) if sent_at else 0.0,
        int(seq.group(1)),
    )


class RawReceiver(Receiver):
    """One Socket.IO (Engine.IO v4 by hand) or native WebSocket client recording one event.

    Args:
        transport: "socketio" or "websocket".
        event: the Socket.IO event name recorded (native WebSocket: every event frame).
    """

    def __init__(
        self, transport: Literal["socketio", "websocket"], event: str = "progress_update"
    ) -> None:
        super().__init__()
        self.transport = transport
        self._event_prefix = ("42" + json.dumps([event])[:-1] + ",").encode()
        self.subscribed = asyncio.Event()
        self.subscribed_reply: dict[str, Any] | None = None
        """The first native WebSocket `subscribed` reply, with `received_at` added."""
        self._protocol: _Protocol | None = None
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._next_ack = 0
        self._closing = False

    async def connect(self, url: str, timeout: float = 15) -> None:
        """Connect: `http://host:port` for Socket.IO, `ws://host:port/path` for WebSocket;
        return once Socket.IO's namespace is joined or the WebSocket is open."""
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        path = ENGINEIO_PATH if self.transport == "socketio" else (parts.path or "/ws")
        loop = asyncio.get_running_loop()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: _Protocol(self, path, f"{host}:{port}"), host, port),
            timeout,
        )
        self._protocol = protocol
        await asyncio.wait_for(asyncio.shield(protocol.ready), timeout)

    async def call(self, event: str, payload: Any, timeout: float = 15) -> Any:
        """Socket.IO: emit an event with an acknowledgement and return its first argument."""
        number, self._next_ack = self._next_ack, self._next_ack + 1
        answer = asyncio.get_running_loop().create_future()
        self._acks[number] = answer
        self._protocol_or_fail().send_text(f"42{number}" + json.dumps([event, payload]))
        try:
            return await asyncio.wait_for(answer, timeout)
        finally:
            self._acks.pop(number, None)

    async def send(self, message: dict[str, Any]) -> None:
        """Native WebSocket: send one request (a JSON text frame)."""
        self._protocol_or_fail().send_text(json.dumps(message))

    async def wait_subscribed(self, timeout: float = 15) -> None:
        """Native WebSocket: wait for the `subscribed` reply."""
        await asyncio.wait_for(self.subscribed.wait(), timeout)

    async def close(self) -> None:
        """Send a close frame and close the socket."""
        self._closing = True
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            with contextlib.suppress(RuntimeError, OSError):
                protocol.transport.write(client_frame(b"\x03\xe8", 0x8))
            protocol.transport.close()

    def _protocol_or_fail(self) -> _Protocol:
        if self._protocol is None or self._protocol.closed:
            raise ConnectionError("the client is not connected")
        return self._protocol

    # -- what the protocol read -------------------------------------------------------------------

    def on_websocket_frame(self, buffer: bytearray, start: int, end: int) -> None:
        if SEQ.search(buffer, start, end) is not None:
            arrival = arrival_in(buffer, start, end, time.time())
            if arrival is not None:
                self.arrivals.append(arrival)
            return
        message = json.loads(bytes(buffer[start:end]))
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "subscribed":
            if self.subscribed_reply is None:
                self.subscribed_reply = {**message, "received_at": time.time()}
            self.subscribed.set()
        elif kind == "resync_required":
            self.notices.append({**message, "received_at": time.time()})

    def on_socketio_event(self, buffer: bytearray, start: int, end: int) -> None:
        if buffer.startswith(self._event_prefix, start, end):
            arrival = arrival_in(buffer, start, end, time.time())
            if arrival is not None:
                self.arrivals.append(arrival)
            return
        name, *args = json.loads(bytes(buffer[start + 2 : end]))
        payload = args[0] if args else None
        if name == "resync-required":
            self.notices.append(payload if isinstance(payload, dict) else {"payload": payload})
        elif name == "bridge-disconnect":
            reason = payload.get("reason") if isinstance(payload, dict) else payload
            self.closed_reason = f"bridge-disconnect: {reason}"

    def on_socketio_ack(self, packet: bytes) -> None:
        digits = re.match(rb"43(\d+)", packet)
        if digits is None:
            return
        answer = self._acks.get(int(digits.group(1)))
        if answer is not None and not answer.done():
            args = json.loads(packet[digits.end() :])
            answer.set_result(args[0] if args else None)

    def on_lost(self, why: str) -> None:
        if not self._closing and self.closed_reason is None:
            self.closed_reason = why
        for answer in self._acks.values():
            if not answer.done():
                answer.set_exception(ConnectionError(why))


class _Protocol(FrameProtocol):
    """The socket of one `RawReceiver`."""

    def __init__(self, owner: RawReceiver, path: str, host: str) -> None:
        super().__init__(path, host)
        self.owner = owner
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        why = f"disconnected: {exc or 'closed by the server'}"
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))
        self.owner.on_lost(why)

    def _opened(self) -> None:
        if self.owner.transport == "websocket":
            self.ready.set_result(None)

    def _text(self, buffer: bytearray, start: int, end: int) -> None:
        owner = self.owner
        if owner.transport == "websocket":
            owner.on_websocket_frame(buffer, start, end)
        elif buffer.startswith(b"42", start, end):
            owner.on_socketio_event(buffer, start, end)
        else:
            self._engineio(bytes(buffer[start:end]))

    def _engineio(self, packet: bytes) -> None:
        """An Engine.IO / Socket.IO packet other than an event."""
        if packet == b"2":
            self.send_text("3")  # ping → pong
        elif packet.startswith(b"0{"):
            self.send_text("40")  # Engine.IO open → join the default namespace
        elif packet.startswith(b"40"):
            if not self.ready.done():
                self.ready.set_result(None)
        elif packet.startswith(b"43"):
            self.owner.on_socketio_ack(packet)
        elif packet.startswith(b"44") and not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connect refused: {packet[2:]!r}"))
        elif packet.startswith(b"41"):
            self.owner.on_lost("disconnected by the server")
