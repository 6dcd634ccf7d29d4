"""Hostile clients for `test_abuse.py`, and the resident memory of the process they abuse.

`RawSocketIO` speaks Engine.IO v4 and Socket.IO by hand over a WebSocket, so a test can send
exactly the packets it wants (malformed ones, attachments, thousands at once) and see exactly
what comes back. `raw_websocket` opens a WebSocket with asyncio streams alone, for frames no
WebSocket library would send. `watch_memory` samples a process's VmRSS in the background.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import websockets

from tests.helpers import wait_for

MiB = 1 << 20

OPCODE_CONTINUATION = 0x0
OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
OPCODE_CLOSE = 0x8


# -- memory ----------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """The resident set size (VmRSS) of process `pid`, in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"process {pid} has no VmRSS: it has exited")


@dataclass
class MemoryFigures:
    """The resident memory of a process around one abuse: before, the peak during, after."""

    label: str
    before: int
    peak: int = 0
    after: int = 0
    samples: int = 0
    exited: bool = False

    def record(self, rss: int) -> None:
        """Account for one sample."""
        self.samples += 1
        self.peak = max(self.peak, rss)

    @property
    def growth(self) -> int:
        """How far the peak rose above the figure before the abuse."""
        return self.peak - self.before

    @property
    def retained(self) -> int:
        """How far the figure after the abuse is above the one before."""
        return self.after - self.before

    def describe(self) -> str:
        """One line with every figure, in MiB."""
        return (
            f"{self.label}: RSS before {self.before / MiB:.1f} MiB, peak {self.peak / MiB:.1f} "
            f"MiB (+{self.growth / MiB:.1f}), after {self.after / MiB:.1f} MiB "
            f"({self.retained / MiB:+.1f}); {self.samples} samples"
            + (" -- THE PROCESS EXITED" if self.exited else "")
        )


@asynccontextmanager
async def watch_memory(
    pid: int, label: str, *, interval: float = 0.1, settle: float = 0.5
) -> AsyncIterator[MemoryFigures]:
    """Sample `pid`'s VmRSS every `interval` seconds while the block runs, and for `settle`
    seconds after it; `after` is the last sample."""
    figures = MemoryFigures(label, before=rss_bytes(pid))
    figures.record(figures.before)
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            try:
                rss = rss_bytes(pid)
            except (OSError, AssertionError):
                figures.exited = True
                return
            figures.record(rss)
            figures.after = rss
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    sampler = asyncio.create_task(sample())
    try:
        yield figures
        await asyncio.sleep(settle)
    finally:
        stop.set()
        await sampler
        if not figures.exited:
            figures.after = rss_bytes(pid)
            figures.record(figures.after)


# -- Socket.IO by hand -----------------------------------------------------------------------


class RawSocketIO:
    """A Socket.IO client written by hand: Engine.IO v4 over a WebSocket, namespace `/`.

    It records every packet the server sends, answers Engine.IO pings, and parses
    acknowledgements (`43<id>[...]`) and events (`42[...]`).
    """

    def __init__(self, connection: websockets.ClientConnection) -> None:
        self.connection = connection
        self.packets: list[str | bytes] = []
        self.acks: dict[int, Any] = {}
        self._ids = itertools.count(1)
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, url: str) -> RawSocketIO:
        """Open the WebSocket, read the Engine.IO open packet, connect to namespace `/`."""
        connection = await websockets.connect(
            url, compression=None, max_size=2**22, open_timeout=15
        )
        try:
            opened = await asyncio.wait_for(connection.recv(), 15)
            assert isinstance(opened, str), opened
            assert opened.startswith("0{"), opened
            await connection.send("40")
            connected = await asyncio.wait_for(connection.recv(), 15)
            assert isinstance(connected, str), connected
            assert connected.startswith("40{"), connected
        except BaseException:
            await connection.close()
            raise
        return cls(connection)

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for packet in self.connection:
                self.packets.append(packet)
                if packet == "2":  # an Engine.IO ping
                    with contextlib.suppress(websockets.ConnectionClosed):
                        await self.connection.send("3")
                elif isinstance(packet, str) and packet.startswith("43"):
                    digits = "".join(itertools.takewhile(str.isdigit, packet[2:]))
                    if digits:
                        self.acks[int(digits)] = json.loads(packet[2 + len(digits) :])[0]

    def events(self) -> list[tuple[str, Any]]:
        """Every Socket.IO event the server sent, as (name, payload)."""
        found: list[tuple[str, Any]] = []
        for packet in self.packets:
            if isinstance(packet, str) and packet.startswith("42["):
                name, *args = json.loads(packet[2:])
                found.append((name, args[0] if args else None))
        return found

    @property
    def engineio_closed(self) -> bool:
        """Whether the server sent Engine.IO CLOSE (`1`): the session is over."""
        return "1" in self.packets

    @property
    def socketio_disconnected(self) -> bool:
        """Whether the server sent a Socket.IO DISCONNECT (`41`) or ended the session."""
        return "41" in self.packets or self.engineio_closed

    @property
    def websocket_closed(self) -> bool:
        """Whether the WebSocket itself is closed."""
        return self.connection.close_code is not None

    async def emit(self, name: str, *args: Any) -> int:
        """Send an event asking for an acknowledgement; return the acknowledgement's id."""
        ack_id = next(self._ids)
        await self.connection.send(f"42{ack_id}{json.dumps([name, *args], separators=(',', ':'))}")
        return ack_id

    async def call(self, name: str, *args: Any, timeout: float = 15) -> Any:
        """Emit an event and return its acknowledgement."""
        ack_id = await self.emit(name, *args)
        await wait_for(lambda: ack_id in self.acks or self.websocket_closed, timeout)
        assert ack_id in self.acks, f"{name} {args!r:.80}: the connection closed, no ack"
        return self.acks[ack_id]

    async def closed(self, timeout: float = 10) -> int | None:
        """Wait until the WebSocket is closed; return its close code (None if it stays open)."""
        with contextlib.suppress(AssertionError):
            await wait_for(lambda: self.websocket_closed, timeout)
        return self.connection.close_code

    async def send(self, packet: str | bytes) -> bool:
        """Send one raw frame; False if the connection was already closed."""
        try:
            await self.connection.send(packet)
        except websockets.ConnectionClosed:
            return False
        return True

    async def close(self) -> None:
        """Close the WebSocket and stop reading."""
        await self.connection.close()
        await self._reader


@asynccontextmanager
async def raw_socketio(url: str) -> AsyncIterator[RawSocketIO]:
    """A connected `RawSocketIO`, closed afterwards."""
    client = await RawSocketIO.connect(url)
    try:
        yield client
    finally:
        await client.close()


# -- Engine.IO long-polling by hand ----------------------------------------------------------


async def _http_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One HTTP/1.1 response: (status line and headers, body), whether its body has a
    Content-Length or is chunked."""
    head = await reader.readuntil(b"\r\n\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
    }
    if headers.get(b"transfer-encoding") != b"chunked":
        return head, await reader.readexactly(int(headers.get(b"content-length", b"0")))
    body = b""
    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
        body += (await reader.readexactly(size + 2))[:-2]
    await reader.readuntil(b"\r\n")
    return head, body


async def polling_post_alone(port: int, body: bytes, timeout: float) -> bytes | None:
    """Open an Engine.IO long-polling session, then POST `body` to it with no GET waiting
    (on the same keep-alive connection); the POST's response head, or None if none came
    within `timeout` seconds."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        host = f"Host: 127.0.0.1:{port}\r\n"
        handshake = f"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n{host}\r\n"
        writer.write(handshake.encode())
        head, opened = await asyncio.wait_for(_http_response(reader), 15)
        assert head.startswith(b"HTTP/1.1 200 "), head
        sid = json.loads(opened[1:])["sid"]
        post = (
            f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n{host}"
            f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(post.encode() + body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        try:
            return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return None
    finally:
        writer.close()


# -- WebSocket frames by hand ----------------------------------------------------------------


async def raw_websocket(
    port: int, path: str, timeout: float = 15
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket to 127.0.0.1:`port``path` opened with plain streams; the handshake's
    response has been read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    writer.write(request.encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return reader, writer


def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, claimed_length: int | None = None
) -> bytes:
    """One masked client frame; `claimed_length` puts another length in the header."""
    length = len(payload) if claimed_length is None else claimed_length
    header = bytes([(0x80 if fin else 0) | opcode])
    if length < 126:
        header += bytes([0x80 | length])
    elif length < 1 << 16:
        header += bytes([0x80 | 126]) + struct.pack("!H", length)
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", length)
    mask = os.urandom(4)
    key = (mask * (len(payload) // 4 + 1))[: len(payload)]
    masked = (int.from_bytes(payload) ^ int.from_bytes(key)).to_bytes(len(payload))
    return header + mask + masked


@dataclass
class ServerFrames:
    """What the server sent on a raw WebSocket until it closed."""

    frames: list[tuple[int, bytes]] = field(default_factory=list)
    close_code: int | None = None
    ended: bool = False


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The server's next (unmasked) frame: (opcode, payload)."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(length)


async def read_until_closed(reader: asyncio.StreamReader, timeout: float = 10) -> ServerFrames:
    """Read the server's (unmasked) frames until its close frame or the end of the stream;
    `ended` is False if neither came within `timeout` seconds."""
    seen = ServerFrames()
    with contextlib.suppress(TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        async with asyncio.timeout(timeout):
            while True:
                opcode, payload = await read_frame(reader)
                seen.frames.append((opcode, payload))
                if opcode == OPCODE_CLOSE:
                    seen.close_code = struct.unpack("!H", payload[:2])[0] if payload else 1005
                    seen.ended = True
                    return seen
    if reader.at_eof():
        seen.ended = True
    return seen
