"""A process of cheap WebSocket clients for the fan-out benchmark: raw frames, no library.

Every server under test gets the same clients, so the load generator costs each the same and
far less than the server: one `asyncio.Protocol` per connection parsing frames by hand (the
server's frames are never masked), Engine.IO v4 by hand for Socket.IO, no JSON parsing of
events (the `seq` and `sent_at` the publisher put in each event's data are found with a regular
expression, in place in the read buffer).

    python -m tests.performance.rawclients --url http://127.0.0.1:8000 --kind ws --count 250 \\
        --room p1

Kinds: `ws` (eventbridge's /ws, subscribes), `eio` (eventbridge's Socket.IO, join-project),
`bare` (a bare server's /ws: nothing to send), `sio` (a python-socketio server: join-project).
`--room` may list several rooms (comma-separated): connection i joins the i-th modulo their
number. `--sample-every K` keeps latencies of every K-th connection only. It prints one JSON line
`{"ready": ...}` once every connection is open and joined, then answers commands on stdin, one
per line: `record` (keep latencies from now on), `report` (print counts, last arrival, order
errors, the seq numbers skipped per room, each connection's total so far, latencies as JSON,
then clear what is per report), `quit`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import sys
import time
from array import array
from typing import Any, cast
from urllib.parse import urlsplit

import uvloop

HANDSHAKE = (
    "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame; the mask is all zeros, so the payload goes as it is."""
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65_536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    return header + b"\0\0\0\0" + payload


SEQ = re.compile(rb'"seq":\s*(\d+)')
SENT_AT = re.compile(rb'"sent_at":\s*([0-9.eE+-]+)')
MAX_SKIPPED = 100_000


class Stats:
    """What this process's connections received since the last report."""

    def __init__(self) -> None:
        self.count = 0
        self.last_arrival = 0.0
        self.order_errors = 0
        self.recording = False
        self.latencies = array("d")
        self.skipped: dict[str, int] = {}
        """`room:seq` of each event a connection did not get before a later one, and how many
        connections skipped it (bounded: a broken run would otherwise fill memory)."""

    def report(self, connections: list[Connection]) -> dict[str, Any]:
        counts = [connection.count for connection in connections]
        totals = [connection.total for connection in connections]
        closed = sum(1 for connection in connections if connection.closed)
        result = {
            "count": self.count,
            "per_connection_min": min(counts, default=0),
            "per_connection_max": max(counts, default=0),
            "total_min": min(totals, default=0),
            "total_max": max(totals, default=0),
            "skipped": self.skipped,
            "total_by_room": _totals_by_room(connections),
            "last_arrival": self.last_arrival,
            "order_errors": self.order_errors,
            "closed": closed,
            "latencies": list(self.latencies),
        }
        self.count, self.order_errors, self.latencies = 0, 0, array("d")
        self.skipped = {}
        for connection in connections:
            connection.count = 0
        return result


def _totals_by_room(connections: list[Connection]) -> dict[str, list[int]]:
    """Per room: the fewest and the most events one of its connections got so far."""
    totals: dict[str, list[int]] = {}
    for connection in connections:
        low_high = totals.setdefault(connection.room, [connection.total, connection.total])
        low_high[0] = min(low_high[0], connection.total)
        low_high[1] = max(low_high[1], connection.total)
    return totals


class FrameProtocol(asyncio.Protocol):
    """One client WebSocket connection by hand: the upgrade request, then the server's frames
    walked in place in the read buffer (`_text` gets each text frame's bounds; pings are
    answered). Subclasses say what to send once open (`_opened`) and what a text frame means."""

    def __init__(self, path: str, host: str) -> None:
        self.path, self.host = path, host
        self.buffer = bytearray()
        self.open = False
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, but behave as one.
        self.transport = transport = cast(asyncio.Transport, transport)
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(HANDSHAKE.format(path=self.path, host=self.host, key=key).encode())

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002 - asyncio's signature
        self.closed = True

    def send_text(self, text: str) -> None:
        assert self.transport is not None
        self.transport.write(client_frame(text.encode()))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.open and not self._handshake(buffer):
            return
        # Walk the frames by index and cut the buffer once: a read holds many frames.
        position, length = 0, len(buffer)
        while length - position >= 2:
            opcode, size = buffer[position] & 0x0F, buffer[position + 1] & 0x7F
            start = position + 2
            if size == 126:
                if length - position < 4:
                    break
                size, start = int.from_bytes(buffer[position + 2 : position + 4], "big"), start + 2
            elif size == 127:
                if length - position < 10:
                    break
                size, start = int.from_bytes(buffer[position + 2 : position + 10], "big"), start + 8
            end = start + size
            if end > length:
                break
            if opcode == 0x1:
                self._text(buffer, start, end)
            elif opcode == 0x9 and self.transport is not None:
                self.transport.write(client_frame(bytes(buffer[start:end]), 0xA))
            elif opcode == 0x8:
                self.closed = True
            position = end
        if position:
            del buffer[:position]

    def _handshake(self, buffer: bytearray) -> bool:
        """Take the server's 101 response off the buffer; False until it is complete."""
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        if not buffer.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(bytes(buffer[:80]))
        del buffer[: end + 4]
        self.open = True
        self._opened()
        return True

    def _opened(self) -> None:
        """The connection is open: send what the client sends first."""

    def _text(self, buffer: bytearray, start: int, end: int) -> None:
        """One text frame, `buffer[start:end]` (valid only during the call)."""


class Connection(FrameProtocol):
    """One fan-out client: joins its room, then counts and checks the events it gets."""

    def __init__(
        self, kind: str, room: str, path: str, host: str, stats: Stats, *, sampled: bool = True
    ) -> None:
        super().__init__(path, host)
        self.kind, self.room, self.stats = kind, room, stats
        self.sampled = sampled
        self.total = 0
        self.joined = asyncio.get_running_loop().create_future()
        self.count = 0
        self.last_seq = -1

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.joined.done():
            self.joined.set_exception(ConnectionError(f"closed before joining: {exc}"))

    def _opened(self) -> None:
        if self.kind == "ws":
            self.send_text(json.dumps({"type": "subscribe", "project_id": self.room}))
        elif self.kind == "bare":
            self.joined.set_result(None)

    def _text(self, buffer: bytearray, start: int, end: int) -> None:
        kind = self.kind
        if kind in ("eio", "sio"):
            if buffer.startswith(b"42[", start, end):
                self._event(buffer, start, end)
                return
            payload = bytes(buffer[start:end])
            if payload == b"2":
                self.send_text("3")
            elif payload.startswith(b"0{"):
                self.send_text("40")
            elif payload.startswith(b"430"):
                if not self.joined.done():
                    self.joined.set_result(None)
            elif payload.startswith(b"40"):
                self.send_text("420" + json.dumps(["join-project", self.room]))
            return
        if kind == "ws" and buffer.startswith(b'{"type":"subscribed"', start, end):
            if not self.joined.done():
                self.joined.set_result(None)
            return
        self._event(buffer, start, end)

    def _event(self, buffer: bytearray, start: int, end: int) -> None:
        now = time.time()
        stats = self.stats
        found = SEQ.search(buffer, start, end)
        if found is None:
            return
        seq = int(found.group(1))
        if seq <= self.last_seq:
            stats.order_errors += 1
        elif seq > self.last_seq + 1 and self.last_seq >= 0 and len(stats.skipped) < MAX_SKIPPED:
            for missing in range(self.last_seq + 1, min(seq, self.last_seq + MAX_SKIPPED)):
                key = f"{self.room}:{missing}"
                stats.skipped[key] = stats.skipped.get(key, 0) + 1
        self.last_seq = seq
        self.count += 1
        self.total += 1
        stats.count += 1
        stats.last_arrival = now
        if stats.recording and self.sampled:
            sent_at = SENT_AT.search(buffer, start, end)
            if sent_at:
                stats.latencies.append(now - float(sent_at.group(1)))


async def main() -> None:
    """Open the connections, say ready, then answer commands."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--kind", choices=["ws", "eio", "bare", "sio"], required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--room", default="p1", help="room, or comma-separated rooms")
    parser.add_argument("--sample-every", type=int, default=1, help="latencies of every K-th")
    args = parser.parse_args()
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    path = "/ws" if args.kind in ("ws", "bare") else "/socket.io/?EIO=4&transport=websocket"
    loop = asyncio.get_running_loop()
    stats = Stats()
    connections: list[Connection] = []
    started = time.monotonic()
    rooms = args.room.split(",")
    for start in range(0, args.count, 100):
        batch = []
        for n in range(start, min(start + 100, args.count)):
            room, sampled = rooms[n % len(rooms)], n % args.sample_every == 0
            _, protocol = await loop.create_connection(
                lambda room=room, sampled=sampled: Connection(
                    args.kind, room, path, f"{host}:{port}", stats, sampled=sampled
                ),
                host,
                port,
            )
            batch.append(protocol)
        await asyncio.gather(*(connection.joined for connection in batch))
        connections.extend(batch)
    print(
        json.dumps({"ready": len(connections), "seconds": time.monotonic() - started}), flush=True
    )
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        if line == "record":
            stats.recording = True
        elif line == "report":
            print(json.dumps(stats.report(connections)), flush=True)
        elif line == "quit":
            break
    for connection in connections:
        if connection.transport is not None:
            connection.transport.close()


if __name__ == "__main__":
    uvloop.run(main())
