"""The stuck client of `bench_slow_consumer`: a raw TCP socket that speaks just enough WebSocket
(or Engine.IO/Socket.IO over WebSocket) to join a room, then never reads again.

Its receive buffer is made small (`SO_RCVBUF`) before connecting, so the bridge's sends back up
into the server's socket buffer and its asyncio transport almost at once: the bridge really meets
TCP backpressure, as it would from a browser tab that froze. While it is stuck, the queues of both
ends of the connection can be read from `/proc/net/tcp`. After the measurement the socket is
*unstuck* (`drain`): everything the bridge had managed to send is read and described (events, in
order?, notices, the close frame and its code), which tells what the bridge did to it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

StuckTransport = Literal["websocket", "socketio"]

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One masked (client-to-server) WebSocket frame with FIN set."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return header + mask + masked


class FrameParser:
    """Splits server-to-client (unmasked) WebSocket bytes into whole messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_opcode = OP_TEXT

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add received bytes; return every message now complete as (opcode, payload)."""
        self._buffer += data
        messages: list[tuple[int, bytes]] = []
        while True:
            parsed = self._next_frame()
            if parsed is None:
                return messages
            fin, opcode, payload = parsed
            if opcode >= OP_CLOSE:  # control frames are never fragmented
                messages.append((opcode, payload))
            elif not fin:
                if opcode != OP_CONTINUATION:
                    self._fragment_opcode = opcode
                self._fragments.append(payload)
            elif opcode == OP_CONTINUATION:
                self._fragments.append(payload)
                messages.append((self._fragment_opcode, b"".join(self._fragments)))
                self._fragments.clear()
            else:
                messages.append((opcode, payload))

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        fin, opcode = bool(buffer[0] & 0x80), buffer[0] & 0x0F
        masked, length, start = bool(buffer[1] & 0x80), buffer[1] & 0x7F, 2
        if length == 126:
            if len(buffer) < 4:
                return None
            length, start = struct.unpack_from("!H", buffer, 2)[0], 4
        elif length == 127:
            if len(buffer) < 10:
                return None
            length, start = struct.unpack_from("!Q", buffer, 2)[0], 10
        mask = b""
        if masked:
            mask, start = bytes(buffer[start : start + 4]), start + 4
        if len(buffer) < start + length:
            return None
        payload = bytes(buffer[start : start + length])
        del buffer[: start + length]
        if mask:
            payload = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        return fin, opcode, payload


def event_fields(text: bytes) -> tuple[int, int] | None:
    """(seq, offset) of a benchmark event's JSON (the envelope plus offset), or None."""
    tail = max(0, len(text) - 200)
    seq_at = text.rfind(b'"seq":', tail)
    offset_at = text.rfind(b'"offset":', tail)
    if seq_at < 0 or offset_at < 0:
        return None
    try:
        seq = int(text[seq_at + 6 : text.index(b",", seq_at)])
        offset = int(text[offset_at + 9 : text.index(b"}", offset_at)])
    except ValueError:
        return None
    return seq, offset


@dataclass
class Drained:
    """What the stuck client found in its socket once it read again.

    Attributes:
        bytes_read: everything read after the join reply.
        events: events found, in arrival order, as (seq, offset).
        notices: other application messages (e.g. Socket.IO `bridge-disconnect`), shortened.
        close_code: the code of the WebSocket close frame, if one came.
        close_reason: its reason text.
        pings: WebSocket ping frames found (keepalive pings the client never answered in time).
        eof: whether the bridge closed the TCP connection within the drain's time.
        seconds: how long draining took.
    """

    bytes_read: int = 0
    events: list[tuple[int, int]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str | None = None
    pings: int = 0
    eof: bool = False
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The JSON-friendly description, with the events reduced to what they prove."""
        seqs = [seq for seq, _ in self.events]
        offsets = [offset for _, offset in self.events]
        return {
            "bytes_read": self.bytes_read,
            "events": len(self.events),
            "events_are_prefix_in_order": seqs == list(range(len(seqs))),
            "offsets_rising": all(a < b for a, b in itertools.pairwise(offsets)),
            "last_seq": seqs[-1] if seqs else None,
            "notices": self.notices,
            "close_code": self.close_code,
            "close_reason": self.close_reason,
            "pings": self.pings,
            "eof": self.eof,
            "seconds": self.seconds,
        }


class StuckClient:
    """A client that joins one project's room and then stops reading.

    Args:
        transport: "websocket" (native, `/ws/ai/<project>`) or "socketio" (Engine.IO 4 over
            WebSocket, `join-project`).
        port: the bridge's port.
        project: the project whose room it joins.
        rcvbuf: the socket's `SO_RCVBUF` (Linux doubles it and enforces a minimum).
    """

    def __init__(self, transport: StuckTransport, port: int, project: str, rcvbuf: int) -> None:
        self.transport = transport
        self.port = port
        self.project = project
        self.rcvbuf = rcvbuf
        self.local_port: int | None = None
        self.join_reply: Any = None
        self.joined_at: float | None = None
        self._socket: socket.socket | None = None
        self._parser = FrameParser()
        self._pending: list[tuple[int, bytes]] = []

    # -- joining --------------------------------------------------------------------------

    async def open(self, timeout: float = 15) -> None:
        """Connect, upgrade, join the room; return once the bridge confirmed the join."""
        async with asyncio.timeout(timeout):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._socket = sock
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            await loop.sock_connect(sock, ("127.0.0.1", self.port))
            self.local_port = sock.getsockname()[1]
            if self.transport == "websocket":
                await self._upgrade(f"/ws/ai/{self.project}")
                reply = await self._next_text(lambda text: text.startswith(b'{"type":"subscribed"'))
                self.join_reply = json.loads(reply)
            else:
                await self._upgrade("/socket.io/?EIO=4&transport=websocket")
                await self._next_text(lambda text: text.startswith(b"0{"))  # Engine.IO open
                await self._send_text(b"40")  # Socket.IO connect to namespace /
                await self._next_text(lambda text: text.startswith(b"40"))
                request = json.dumps(["join-project", self.project], separators=(",", ":"))
                await self._send_text(b"420" + request.encode())
                reply = await self._next_text(lambda text: text.startswith(b"430"))
                self.join_reply = json.loads(reply[3:])[0]
                if not (isinstance(self.join_reply, dict) and self.join_reply.get("ok")):
                    raise RuntimeError(f"the stuck client's join was refused: {self.join_reply!r}")
        self.joined_at = time.time()

    async def _upgrade(self, path: str) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await asyncio.get_running_loop().sock_sendall(self._require(), request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await self._recv()
            if not chunk:
                raise RuntimeError(f"the bridge closed the stuck client's upgrade: {head[:80]!r}")
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"the stuck client's upgrade was refused: {head[:80]!r}")
        self._pending.extend(self._parser.feed(rest))

    async def _next_text(self, wanted: Any) -> bytes:
        """Read messages until a text message for which `wanted(payload)` is true."""
        while True:
            while self._pending:
                opcode, payload = self._pending.pop(0)
                if opcode == OP_TEXT and wanted(payload):
                    return payload
                if opcode == OP_CLOSE:
                    raise RuntimeError(f"the bridge closed the stuck client: {payload!r}")
            chunk = await self._recv()
            if not chunk:
                raise RuntimeError("the bridge closed the stuck client while it joined")
            self._pending.extend(self._parser.feed(chunk))

    async def _send_text(self, payload: bytes) -> None:
        frame = client_frame(OP_TEXT, payload)
        await asyncio.get_running_loop().sock_sendall(self._require(), frame)

    async def _recv(self) -> bytes:
        return await asyncio.get_running_loop().sock_recv(self._require(), 65536)

    def _require(self) -> socket.socket:
        if self._socket is None:
            raise RuntimeError("the stuck client is not connected")
        return self._socket

    # -- while stuck ------------------------------------------------------------------------

    def queues(self) -> dict[str, Any]:
        """The kernel's view of the connection: the bridge's end (`server_state`, its unsent
        bytes `server_send_q`) and the stuck client's end (`client_recv_q`, bytes it did not
        read); None where the socket is not found (gone).

        Reads `/proc/net/tcp` once (several ms of kernel time on a busy machine): call it from
        a thread, and not too often.
        """
        server = client = None
        if self.local_port is not None:
            with contextlib.suppress(OSError):
                table = Path("/proc/net/tcp").read_bytes()
                server = tcp_socket(table, self.port, self.local_port)
                client = tcp_socket(table, self.local_port, self.port)
        return {
            "server_state": None if server is None else server[0],
            "server_send_q": None if server is None else server[1],
            "client_recv_q": None if client is None else client[2],
        }

    # -- unsticking ---------------------------------------------------------------------------

    async def drain(self, timeout: float, quiet: float = 3.0) -> Drained:
        """Read everything the bridge sent, answering a close frame as a client would.

        Ends at EOF, after `quiet` seconds without data, or after `timeout` seconds.
        """
        drained = Drained()
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        messages = list(self._pending)
        self._pending.clear()
        replied_close = False
        while True:
            for opcode, payload in messages:
                self._describe(drained, opcode, payload)
                if opcode == OP_CLOSE and not replied_close:
                    replied_close = True
                    with contextlib.suppress(OSError):
                        await loop.sock_sendall(self._require(), client_frame(OP_CLOSE, payload))
            remaining = timeout - (time.monotonic() - started)
            if remaining <= 0:
                break
            try:
                chunk = await asyncio.wait_for(self._recv(), min(quiet, remaining))
            except TimeoutError:
                break
            except OSError:
                drained.eof = True
                break
            if not chunk:
                drained.eof = True
                break
            drained.bytes_read += len(chunk)
            messages = self._parser.feed(chunk)
        drained.seconds = time.monotonic() - started
        return drained

    def _describe(self, drained: Drained, opcode: int, payload: bytes) -> None:
        if opcode == OP_CLOSE:
            if len(payload) >= 2:
                drained.close_code = struct.unpack_from("!H", payload)[0]
                drained.close_reason = payload[2:].decode(errors="replace")
            else:
                drained.close_code = 1005
            return
        if opcode == OP_PING:
            drained.pings += 1
            return
        if opcode != OP_TEXT:
            return
        body = payload
        if self.transport == "socketio":
            if not payload.startswith(b"42"):
                drained.notices.append(payload[:120].decode(errors="replace"))
                return
            if not payload.startswith(b'42["deployment_log",'):
                drained.notices.append(payload[:120].decode(errors="replace"))
                return
            body = payload[len(b'42["deployment_log",') :]
        fields = event_fields(body) if body.startswith(b'{"id"') else None
        if fields is None:
            drained.notices.append(payload[:120].decode(errors="replace"))
        else:
            drained.events.append(fields)

    def close(self) -> None:
        """Drop the socket (no close handshake)."""
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self._socket = None


TCP_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}


def tcp_socket(table: bytes, local_port: int, remote_port: int) -> tuple[str, int, int] | None:
    """(state, send queue bytes, receive queue bytes) of the loopback TCP socket
    `127.0.0.1:local_port` → `127.0.0.1:remote_port` in `table` (the text of
    `/proc/net/tcp`); None if it is not there."""
    key = f"0100007F:{local_port:04X} 0100007F:{remote_port:04X} ".encode()
    at = table.find(key)
    if at < 0:
        return None
    fields = table[at : table.find(b"\n", at)].split()
    if len(fields) < 4:
        return None
    state = fields[2].decode()
    tx, rx = fields[3].split(b":")
    return TCP_STATES.get(state, state), int(tx, 16), int(rx, 16)
