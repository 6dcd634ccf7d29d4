"""The bare servers the fan-out benchmark compares eventbridge with, each as its own process.

- `bare`: FastAPI with a native WebSocket endpoint and a broadcast loop, the way one writes it
  by hand: `for ws in clients: await ws.send_text(frame)`.
- `socketio`: python-socketio with a room, clients join it with `join-project`, and an emit to
  the room per event.

Both serve under uvicorn with eventbridge's settings (its default WebSocket protocol, no
compression, no access log). `POST /burst?n=N` sends N events as fast as the server can;
`POST /paced?rate=R&seconds=S` sends R per second for S seconds. Each event is an envelope of
the same shape and size as the benchmark's eventbridge events, with `seq` and `sent_at` (the
time it was sent) in its data.

    python -m tests.performance.bareservers bare --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from typing import Any

import socketio
import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from schemas.envelope import new_event_id


def envelope(seq: int) -> dict[str, Any]:
    """One event as eventbridge would deliver it (the same fields and about the same size)."""
    return {
        "id": new_event_id(),
        "type": "progress_update",
        "schema_version": 1,
        "project_id": "p1",
        "source": "bench",
        "occurred_at": "2026-12-06T12:00:00.000Z",
        "data": {"agent_id": "agent-1", "progress": 0.5, "seq": seq, "sent_at": time.time()},
        "offset": seq,
    }


SEQUENCE = itertools.count(1)
"""Every event's `seq`, increasing across phases as eventbridge's offsets do."""


async def paced(rate: float, seconds: float, send: Any) -> None:
    """Call `send(seq)` `rate` times a second for `seconds`."""
    started = time.monotonic()
    total = int(rate * seconds)
    for n in range(total):
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(next(SEQUENCE))


def bare_app() -> Any:
    """FastAPI with a broadcast loop."""
    app = FastAPI()
    clients: set[WebSocket] = set()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        clients.add(websocket)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            clients.discard(websocket)

    async def broadcast(seq: int) -> None:
        text = json.dumps(envelope(seq), separators=(",", ":"))
        for websocket in list(clients):
            try:
                await websocket.send_text(text)
            except (WebSocketDisconnect, RuntimeError):
                clients.discard(websocket)

    @app.post("/burst")
    async def burst(n: int) -> dict[str, int]:
        for _ in range(n):
            await broadcast(next(SEQUENCE))
        return {"sent": n}

    @app.post("/paced")
    async def pace(rate: float, seconds: float) -> dict[str, float]:
        await paced(rate, seconds, broadcast)
        return {"rate": rate}

    return app


def socketio_app() -> Any:
    """python-socketio with a room per project, and the same HTTP triggers."""
    sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)

    @sio.on("join-project")  # type: ignore[untyped-decorator]
    async def join(sid: str, project: str) -> dict[str, Any]:
        await sio.enter_room(sid, f"project:{project}")
        return {"ok": True, "room": f"project:{project}"}

    async def emit(seq: int) -> None:
        await sio.emit("progress_update", envelope(seq), room="project:p1")

    api = FastAPI()

    @api.post("/burst")
    async def burst(n: int) -> dict[str, int]:
        for _ in range(n):
            await emit(next(SEQUENCE))
        return {"sent": n}

    @api.post("/paced")
    async def pace(rate: float, seconds: float) -> dict[str, float]:
        await paced(rate, seconds, emit)
        return {"rate": rate}

    return socketio.ASGIApp(sio, other_asgi_app=api, socketio_path="socket.io")


def main() -> None:
    """Serve one bare server until stopped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["bare", "socketio"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = bare_app() if args.kind == "bare" else socketio_app()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        ws_per_message_deflate=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
