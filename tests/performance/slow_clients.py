"""The normal (reading) clients of `bench_slow_consumer`, run in child processes of their own.

Run by the benchmark as `python -m tests.performance.slow_clients --port P --project X ...`.
The child connects its clients to one project's room — native WebSocket clients (`websockets`,
`/ws/ai/<project>`) and optionally Socket.IO clients (`join-project`) — and prints one `ready`
JSON line. On `go` (stdin) it starts the clock and waits until every client received `count`
events (or nothing arrived for `stall` seconds, or `deadline` passed, or `stop` came on stdin),
then writes every delivery's latency to a binary file and prints one JSON result line.

Each client checks each event without parsing the whole ~10 kB frame: `data.seq`,
`data.sent_at` and the `offset` sit in the frame's last 200 bytes (see `parse_event`), and the
`id` at its start must be the one the publisher derived from the sequence number. Per client it
counts distinct events, duplicates, arrivals out of order (a `seq` below one already seen, or an
offset not above the last), frames that are not the expected events, and why the connection
ended early.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import sys
import time
from array import array
from pathlib import Path
from types import TracebackType
from typing import Any

import socketio
import uvloop
import websockets

from tests.performance.processes import die_with_parent

EVENT_TYPE = "deployment_log"
"""The benchmark's event type: never coalesced by the bridge (only progress updates are), no
snapshot state, and routed to the project's room only."""


def event_id(tag: str, seq: int) -> str:
    """The id the publisher gives event `seq` of a phase, so every client can verify it."""
    return f"{tag}-{seq:07d}"


class Tally:
    """What one client received.

    Attributes:
        seen: one flag per expected sequence number.
        distinct: events received at least once.
        received: events received in all (with duplicates).
        duplicates: events received again.
        out_of_order: arrivals whose seq was below the highest so far, or whose offset did not
            rise.
        bad: frames that were not the expected events (wrong id, unparsable, seq out of range).
        latencies: receive time minus `sent_at` of every event, in milliseconds.
        arrivals: the receive times (`time.time()`) of the same events.
        closed: why the connection ended before the client closed it, or None.
        slots: deliveries and the highest latency per second after `go`.
    """

    __slots__ = (
        "arrivals",
        "bad",
        "closed",
        "distinct",
        "duplicates",
        "first_at",
        "last_at",
        "last_offset",
        "latencies",
        "max_seq",
        "out_of_order",
        "received",
        "seen",
        "transport",
    )

    def __init__(self, count: int, transport: str) -> None:
        self.transport = transport
        self.seen = bytearray(count)
        self.distinct = 0
        self.received = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.bad = 0
        self.max_seq = -1
        self.last_offset = -1
        self.latencies = array("d")
        self.arrivals = array("d")
        self.closed: str | None = None
        self.first_at: float | None = None
        self.last_at: float | None = None

    def record(self, seq: int, offset: int, sent_at: float, now: float) -> None:
        """Count one event."""
        self.received += 1
        if not 0 <= seq < len(self.seen):
            self.bad += 1
            return
        if self.seen[seq]:
            self.duplicates += 1
        else:
            self.seen[seq] = 1
            self.distinct += 1
        if seq < self.max_seq or offset <= self.last_offset:
            self.out_of_order += 1
        self.max_seq = max(self.max_seq, seq)
        self.last_offset = max(self.last_offset, offset)
        self.latencies.append((now - sent_at) * 1000.0)
        self.arrivals.append(now)
        if self.first_at is None:
            self.first_at = now
        self.last_at = now

    def summary(self) -> dict[str, Any]:
        """The client's counts as JSON-friendly values."""
        return {
            "transport": self.transport,
            "received": self.received,
            "distinct": self.distinct,
            "missing": len(self.seen) - self.distinct,
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
            "bad": self.bad,
            "closed": self.closed,
            "first_at": self.first_at,
            "last_at": self.last_at,
        }


def _number_after(frame: bytes, key: bytes, start: int) -> bytes:
    """The JSON number following the last `key` (e.g. `b'"seq":'`) at or after `start`."""
    at = frame.rindex(key, start) + len(key)
    end = at
    while end < len(frame) and frame[end] not in b",}":
        end += 1
    return frame[at:end]


def parse_event(frame: bytes, tag: bytes) -> tuple[int, float, int] | None:
    """(seq, sent_at, offset) of one event frame, or None if it is not one of this phase's.

    The frame is `{"id":"<tag>-<seq>","type":...,"data":{...,"line":"<padding>","seq":N,
    "sent_at":T},"offset":O}` (the SDK puts a type's own fields first and extra fields after
    them; the bridge appends `offset`), so only the start and the last 200 bytes are looked at.
    """
    if not frame.startswith(b'{"id":"'):
        return None
    tail = max(0, len(frame) - 200)
    try:
        seq = int(_number_after(frame, b'"seq":', tail))
        sent_at = float(_number_after(frame, b'"sent_at":', tail))
        offset = int(_number_after(frame, b'"offset":', tail))
    except ValueError:
        return None
    expected = b'{"id":"' + event_id(tag.decode(), seq).encode() + b'"'
    if not frame.startswith(expected):
        return None
    return seq, sent_at, offset


class Clients:
    """This child's clients and the checks they make."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tag = args.tag.encode()
        self.tallies: list[Tally] = []
        self.go_at: float | None = None
        self.slot_deliveries: list[int] = []
        self.slot_max_ms: list[float] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._sio: list[socketio.AsyncClient] = []
        self._closing = False

    def _slot(self, now: float, latency_ms: float) -> None:
        if self.go_at is None:
            return
        index = max(0, int(now - self.go_at))
        while index >= len(self.slot_deliveries):
            self.slot_deliveries.append(0)
            self.slot_max_ms.append(0.0)
        self.slot_deliveries[index] += 1
        self.slot_max_ms[index] = max(self.slot_max_ms[index], latency_ms)

    def _record(self, tally: Tally, seq: int, sent_at: float, offset: int) -> None:
        now = time.time()
        tally.record(seq, offset, sent_at, now)
        self._slot(now, (now - sent_at) * 1000.0)

    # -- native WebSocket clients -------------------------------------------------------------

    async def open_ws(self, ready: asyncio.Semaphore) -> None:
        """Connect one native client, wait for `subscribed`, then read until closed."""
        tally = Tally(self.args.count, "websocket")
        self.tallies.append(tally)
        url = f"ws://127.0.0.1:{self.args.port}/ws/ai/{self.args.project}"
        async with ready:
            connection = await websockets.connect(
                url, compression=None, max_size=2**20, open_timeout=15, ping_interval=None
            )
            while True:
                first = await asyncio.wait_for(connection.recv(decode=False), 15)
                if first.startswith(b'{"type":"subscribed"'):
                    break
        self._tasks.append(asyncio.create_task(self._read_ws(connection, tally)))

    async def _read_ws(self, connection: websockets.ClientConnection, tally: Tally) -> None:
        tag = self.tag
        try:
            while True:
                frame = await connection.recv(decode=False)
                parsed = parse_event(frame, tag) if isinstance(frame, bytes) else None
                if parsed is None:
                    tally.bad += 1
                    continue
                seq, sent_at, offset = parsed
                self._record(tally, seq, sent_at, offset)
        except websockets.ConnectionClosed:
            if not self._closing:
                tally.closed = f"closed: {connection.close_code} {connection.close_reason}"
        finally:
            if self._closing:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), 5)

    # -- Socket.IO clients --------------------------------------------------------------------

    async def open_sio(self, ready: asyncio.Semaphore) -> None:
        """Connect one Socket.IO client (WebSocket transport) and join the project."""
        tally = Tally(self.args.count, "socketio")
        self.tallies.append(tally)
        client = socketio.AsyncClient(reconnection=False, handle_sigint=False)
        tag = self.args.tag

        def on_event(payload: Any) -> None:
            data = payload.get("data") if isinstance(payload, dict) else None
            if not isinstance(data, dict):
                tally.bad += 1
                return
            seq, sent_at = data.get("seq"), data.get("sent_at")
            if (
                not isinstance(seq, int)
                or not isinstance(sent_at, float)
                or payload.get("id") != event_id(tag, seq)
            ):
                tally.bad += 1
                return
            self._record(tally, seq, sent_at, int(payload["offset"]))

        def on_bridge_disconnect(payload: Any) -> None:
            reason = payload.get("reason") if isinstance(payload, dict) else payload
            tally.closed = f"bridge-disconnect: {reason}"

        def on_disconnect(reason: Any = None) -> None:
            if not self._closing and tally.closed is None:
                tally.closed = f"disconnected: {reason}"

        client.on(EVENT_TYPE, on_event)
        client.on("bridge-disconnect", on_bridge_disconnect)
        client.on("disconnect", on_disconnect)
        async with ready:
            await client.connect(
                f"http://127.0.0.1:{self.args.port}", transports=["websocket"], wait_timeout=15
            )
            reply = await client.call("join-project", self.args.project, timeout=15)
        if not (isinstance(reply, dict) and reply.get("ok")):
            raise RuntimeError(f"join-project was refused: {reply!r}")
        self._sio.append(client)

    # -- running ------------------------------------------------------------------------------

    def done(self) -> bool:
        """Whether every client got every event or ended early."""
        count = self.args.count
        return all(t.distinct >= count or t.closed is not None for t in self.tallies)

    async def close(self) -> None:
        """Close every connection (bounded)."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(
            *(asyncio.wait_for(client.disconnect(), 5) for client in self._sio),
            return_exceptions=True,
        )

    def write_latencies(self, path: Path) -> dict[str, int]:
        """Write every delivery's latency (ms) to `path` as float64, native WebSocket clients'
        first, then Socket.IO clients'; then every delivery's receive time in the same order.
        Return how many deliveries of each transport."""
        counts = {"websocket": 0, "socketio": 0}
        with path.open("wb") as out:
            for column in ("latencies", "arrivals"):
                for transport in counts:
                    for tally in self.tallies:
                        if tally.transport == transport:
                            values: array[float] = getattr(tally, column)
                            values.tofile(out)
                            if column == "latencies":
                                counts[transport] += len(values)
        return counts


async def wait_done(clients: Clients, stop: asyncio.Event) -> str:
    """Wait until every client is done, nothing arrived for `stall` s, `deadline`, or `stop`."""
    args = clients.args
    loop = asyncio.get_running_loop()
    started = last_progress = loop.time()
    seen = -1
    while True:
        if clients.done():
            return "complete"
        if stop.is_set():
            return "stopped"
        total = sum(t.received for t in clients.tallies)
        now = loop.time()
        if total != seen:
            seen, last_progress = total, now
        if now - last_progress > args.stall:
            return f"stalled: nothing arrived for {args.stall:g} s"
        if now - started > args.deadline:
            return f"deadline of {args.deadline:g} s passed"
        await asyncio.sleep(0.05)


async def run(args: argparse.Namespace) -> None:
    """The child's work: connect, say ready, wait for go, wait for the events, report."""
    clients = Clients(args)
    ready = asyncio.Semaphore(20)
    loop = asyncio.get_running_loop()
    try:
        opens = [clients.open_ws(ready) for _ in range(args.ws)]
        opens += [clients.open_sio(ready) for _ in range(args.sio)]
        await asyncio.gather(*opens)
        print(json.dumps({"ready": len(clients.tallies)}), flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if line.strip() != "go":
            return
        gc.collect()
        gc.freeze()
        cpu_before = time.process_time()
        clients.go_at = time.time()
        stop = asyncio.Event()

        async def watch_stdin() -> None:
            await loop.run_in_executor(None, sys.stdin.readline)
            stop.set()

        watcher = asyncio.create_task(watch_stdin())
        outcome = await wait_done(clients, stop)
        watcher.cancel()
        cpu_seconds = time.process_time() - cpu_before
        latencies = clients.write_latencies(Path(args.latencies))
        result = {
            "outcome": outcome,
            "go_at": clients.go_at,
            "finished_at": time.time(),
            "cpu_seconds": cpu_seconds,
            "latency_file": args.latencies,
            "latencies": latencies,
            "clients": [tally.summary() for tally in clients.tallies],
            "slot_deliveries": clients.slot_deliveries,
            "slot_max_ms": clients.slot_max_ms,
        }
        print(json.dumps(result), flush=True)
    finally:
        await clients.close()


class ClientsProcess:
    """Parent side: one child process of normal clients; killed on leaving.

    Args:
        index: a number for its name and log file.
        port: the bridge's port.
        project: the project whose room the clients join.
        tag: the phase's event-id prefix (see `event_id`).
        ws: native WebSocket clients.
        sio: Socket.IO clients.
        count: events each client must receive.
        stall: seconds without any arrival after which the child gives up.
        deadline: seconds after `go` after which it gives up.
        latencies: the file the child writes latencies to.
        log_path: where the child's stderr goes.
    """

    def __init__(
        self,
        index: int,
        *,
        port: int,
        project: str,
        tag: str,
        ws: int,
        sio: int,
        count: int,
        stall: float,
        deadline: float,
        latencies: Path,
        log_path: Path,
    ) -> None:
        self.name = f"clients-{index}"
        self.clients = ws + sio
        self.log_path = log_path
        self._argv = [
            sys.executable,
            "-m",
            "tests.performance.slow_clients",
            *("--port", str(port), "--project", project, "--tag", tag),
            *("--ws", str(ws), "--sio", str(sio), "--count", str(count)),
            *("--stall", str(stall), "--deadline", str(deadline), "--latencies", str(latencies)),
        ]
        self._process: asyncio.subprocess.Process | None = None
        self._log: Any = None

    @property
    def pid(self) -> int | None:
        """The child's process id once started."""
        return None if self._process is None else self._process.pid

    async def start(self) -> None:
        """Start the child (it connects its clients at once)."""
        self._log = self.log_path.open("wb")
        self._process = await asyncio.create_subprocess_exec(
            *self._argv,
            env=dict(os.environ),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            preexec_fn=die_with_parent,
        )

    async def ready(self, timeout: float) -> None:
        """Wait until every client of the child joined the room."""
        line = await self._line(timeout)
        try:
            ready = json.loads(line).get("ready")
        except (ValueError, AttributeError):
            ready = None
        if ready != self.clients:
            raise RuntimeError(f"{self.name} did not connect its clients: {line!r}{self._tail()}")

    def send(self, command: str) -> None:
        """Write one command line (`go` or `stop`) to the child."""
        if self._process is None or self._process.stdin is None:
            raise RuntimeError(f"{self.name} is not running")
        with contextlib.suppress(OSError):
            self._process.stdin.write(f"{command}\n".encode())

    async def result(self, timeout: float) -> dict[str, Any]:
        """Wait for the child's result line."""
        line = await self._line(timeout)
        try:
            result: dict[str, Any] = json.loads(line)
        except ValueError as exc:
            raise RuntimeError(f"{self.name} failed: {line!r}{self._tail()}") from exc
        return result

    async def _line(self, timeout: float) -> str:
        if self._process is None or self._process.stdout is None:
            raise RuntimeError(f"{self.name} is not running")
        raw = await asyncio.wait_for(self._process.stdout.readline(), timeout)
        return raw.decode(errors="replace").strip()

    def _tail(self) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").strip()
            if text:
                return "\n" + "\n".join(text.splitlines()[-15:])
        return ""

    async def stop(self) -> None:
        """Let the child finish (bounded), else kill it."""
        process = self._process
        try:
            if process is not None and process.returncode is None:
                if process.stdin is not None:
                    with contextlib.suppress(OSError):
                        process.stdin.close()
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await asyncio.wait_for(process.wait(), 10)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    async def __aenter__(self) -> ClientsProcess:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point of a clients child process."""
    parser = argparse.ArgumentParser(description="bench_slow_consumer normal clients")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--ws", type=int, default=0)
    parser.add_argument("--sio", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--stall", type=float, default=10.0)
    parser.add_argument("--deadline", type=float, default=300.0)
    parser.add_argument("--latencies", required=True)
    uvloop.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
