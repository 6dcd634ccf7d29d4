"""The raw baselines the bridge is compared with, measured in the same run.

A: aio-pika alone — publish persistent messages (pipelined confirms) into a fresh stream queue,
   with the properties the contract has producers set (content type, message id, type,
   timestamp: what the bridge's backlog holds), then consume them from offset "first"
   (prefetch 1000, `ack(multiple=True)` every 100); and
   the same raw read of a range of an existing log (`aio_pika_read_range`, for bench_resume).
B: python-socketio alone — a stock `AsyncServer` under uvicorn in a child process (run with
   `python -m tests.performance.baselines --port P`) emits N events to one room of clients.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import socketio
import uvicorn

from tests.performance.processes import ChildProcess, CpuMeter, free_port, wait_for_port
from tests.performance.rawreceiver import RawReceiver
from tests.performance.receivers import (
    check,
    close_all,
    last_arrival,
    latencies_ms,
    open_all,
    wait_for_all,
)

PUBLISH_WINDOW = 256
"""Confirms kept in flight when publishing, as the SDK's `publish_batch` does by default."""


def sample_event(seq: int, sent_at: float) -> dict[str, Any]:
    """An envelope plus offset shaped and sized like the bridge's `progress_update` events."""
    return {
        "id": str(uuid.uuid4()),
        "type": "progress_update",
        "schema_version": 1,
        "project_id": "bench-baseline",
        "source": "bench-live",
        "occurred_at": "2026-01-01T00:00:00.000Z",
        "data": {
            "agent_id": "agent-1",
            "progress": 0.5,
            "stage": "benchmark",
            "sent_at": sent_at,
            "seq": seq,
        },
        "offset": seq,
    }


async def aio_pika_consume(amqp_url: str, queue_name: str, count: int) -> dict[str, Any]:
    """Baseline A: publish `count` messages into a fresh stream queue, then consume them.

    Returns:
        publish and consume rates (messages/s) and their wall times.

    Raises:
        TimeoutError: the consumer did not get every message within the time allowed.
    """
    connection = await aio_pika.connect(
        amqp_url, timeout=10, client_properties={"connection_name": "bench-live-baseline-a"}
    )
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue_name, durable=True, arguments={"x-queue-type": "stream"})
        slots = asyncio.Semaphore(PUBLISH_WINDOW)

        async def publish(event: dict[str, Any], body: bytes) -> None:
            try:
                # The properties the contract has every producer set (the SDK sets them), so
                # the consumer decodes the same messages the bridge's backlog holds.
                message = aio_pika.Message(
                    body,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    content_type="application/json",
                    message_id=event["id"],
                    type=event["type"],
                    timestamp=datetime.now(UTC),
                )
                await channel.default_exchange.publish(message, queue_name, timeout=30)
            finally:
                slots.release()

        events = [sample_event(seq, time.time()) for seq in range(count)]
        bodies = [json.dumps(event).encode() for event in events]
        published_from = time.perf_counter()
        tasks: list[asyncio.Task[None]] = []
        for event, body in zip(events, bodies, strict=True):
            await slots.acquire()
            tasks.append(asyncio.create_task(publish(event, body)))
        await asyncio.gather(*tasks)
        publish_seconds = time.perf_counter() - published_from

        consumer = await connection.channel()
        await consumer.set_qos(prefetch_count=1000)
        queue = await consumer.get_queue(queue_name, ensure=False)
        received = 0
        done = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            received += 1
            if received % 100 == 0 or received >= count:
                await message.ack(multiple=True)
            if received >= count:
                done.set()

        consumed_from = time.perf_counter()
        tag = await queue.consume(on_message, arguments={"x-stream-offset": "first"})
        await asyncio.wait_for(done.wait(), timeout=30 + count / 1000)
        consume_seconds = time.perf_counter() - consumed_from
        with contextlib.suppress(aio_pika.exceptions.AMQPError):
            await queue.cancel(tag)
    return {
        "messages": count,
        "body_bytes": len(bodies[0]),
        "publish_seconds": publish_seconds,
        "publish_rate": count / publish_seconds,
        "consume_seconds": consume_seconds,
        "consume_rate": count / consume_seconds,
    }


async def aio_pika_read_range(
    amqp_url: str, queue_name: str, first: int, last: int, *, prefetch: int = 1000
) -> dict[str, Any]:
    """Raw aio-pika read of an existing stream's records `first..last` (offsets, inclusive).

    The consumer attaches at offset `first` (prefetch `prefetch`, `ack(multiple=True)` every
    100, nothing else done per message) and stops at the first record at or past `last`. The
    broker starts at the chunk holding `first`, so a few earlier records may come first: they
    are counted as `skipped`, and their time is part of the read, as it is for the bridge.

    Returns:
        records in the range, skipped records, wall seconds and records/s.

    Raises:
        TimeoutError: `last` was not reached in time.
    """
    connection = await aio_pika.connect(
        amqp_url, timeout=10, client_properties={"connection_name": "bench-raw-stream-read"}
    )
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.get_queue(queue_name, ensure=False)
        in_range = skipped = received = 0
        done = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            """Count the record, ack every 100th, stop at `last`."""
            nonlocal in_range, skipped, received
            received += 1
            offset = (message.headers or {}).get("x-stream-offset")
            if not isinstance(offset, int) or offset < first:
                skipped += 1
            else:
                in_range += 1
            finished = isinstance(offset, int) and offset >= last
            if received % 100 == 0 or finished:
                await message.ack(multiple=True)
            if finished:
                done.set()

        started = time.perf_counter()
        tag = await queue.consume(on_message, arguments={"x-stream-offset": first})
        await asyncio.wait_for(done.wait(), timeout=30 + (last - first) / 1000)
        seconds = time.perf_counter() - started
        with contextlib.suppress(aio_pika.exceptions.AMQPError):
            await queue.cancel(tag)
    return {
        "first": first,
        "last": last,
        "records": in_range,
        "skipped": skipped,
        "seconds": seconds,
        "records_per_s": in_range / seconds,
    }


class SocketIOBaseline:
    """Baseline B: a stock python-socketio server in a child process, driven by a controller.

    Use as an async context manager; `run(clients, count)` measures one room emit.

    Args:
        python: the interpreter for the child.
        loop: the child's event loop, "asyncio" or "uvloop".
        log_path: where the child's output goes.
        pids: processes to account CPU for ("bench", "broker"); the child is added as "server".
    """

    def __init__(
        self, python: str, *, loop: str, log_path: Path, pids: dict[str, int | None]
    ) -> None:
        self.port = free_port()
        self._pids = pids
        self._child = ChildProcess(
            "python-socketio baseline server",
            [python, "-m", "tests.performance.baselines", "--port", str(self.port), "--loop", loop],
            env=dict(os.environ),
            log_path=log_path,
        )
        self._controller = socketio.AsyncClient(reconnection=False, handle_sigint=False)

    @property
    def pid(self) -> int | None:
        """The server child's process id."""
        return self._child.pid

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> SocketIOBaseline:
        await self._child.__aenter__()
        try:
            await wait_for_port(self.port, self._child, timeout=20)
            await self._controller.connect(self.url, transports=["websocket"], wait_timeout=10)
        except BaseException:
            await self._child.stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._controller.disconnect(), 10)
        await self._child.stop()

    async def run(self, clients: int, count: int, *, stall: float) -> dict[str, Any]:
        """Emit `count` events to a room of `clients` Socket.IO clients; measure until all got all.

        Returns:
            wall time, events/s, deliveries/s, emit→receive latency, CPU, and the delivery check.
        """
        room = f"r-{uuid.uuid4().hex[:8]}"

        async def open_one() -> RawReceiver:
            receiver = RawReceiver("socketio", "e")
            await receiver.connect(self.url)
            reply = await receiver.call("join", room)
            if reply != {"ok": True}:
                raise RuntimeError(f"baseline server refused the join: {reply!r}")
            return receiver

        receivers = await open_all([open_one] * clients)
        try:
            meter = CpuMeter({**self._pids, "server": self._child.pid})
            meter.start()
            started = time.time()
            blast = asyncio.create_task(
                self._controller.call("blast", {"room": room, "count": count}, timeout=600)
            )
            await wait_for_all(receivers, count, stall=stall, deadline=60 + count * clients / 2000)
            cpu = meter.stop()
            ack = await asyncio.wait_for(blast, 60)
        finally:
            await close_all(receivers)
        last = last_arrival(receivers) or time.time()
        wall = last - started
        ordered = latencies_ms(receivers)
        return {
            "clients": clients,
            "events": count,
            "wall_seconds": wall,
            "events_per_s": count / wall,
            "deliveries_per_s": count * clients / wall,
            "emit_loop_seconds": ack.get("emit_seconds") if isinstance(ack, dict) else None,
            "latencies_ms": ordered,
            "cpu_cores": cpu,
            "check": check(receivers, count),
        }


def build_server() -> Any:
    """The stock python-socketio server of baseline B: `join` a room, `blast` N events to it."""
    sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)

    async def join(sid: str, room: str) -> dict[str, bool]:
        await sio.enter_room(sid, room)
        return {"ok": True}

    async def blast(_sid: str, request: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        for seq in range(int(request["count"])):
            await sio.emit("e", sample_event(seq, time.time()), room=request["room"])
        return {"ok": True, "emit_seconds": time.perf_counter() - started}

    sio.on("join", join)
    sio.on("blast", blast)
    return socketio.ASGIApp(sio)


def serve(port: int, loop: str) -> None:
    """Run the baseline server on a loopback port until SIGTERM (compression off, no logs)."""
    config = uvicorn.Config(
        build_server(),
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        ws_per_message_deflate=False,
    )
    server = uvicorn.Server(config)
    if loop == "uvloop":
        import uvloop

        uvloop.run(server.serve())
    else:
        asyncio.run(server.serve())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the baseline server child process."""
    parser = argparse.ArgumentParser(description="python-socketio baseline server (benchmark)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args(argv)
    serve(args.port, args.loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
