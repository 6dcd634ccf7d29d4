"""A TCP proxy between the bridge and the broker, for network faults without monkeypatching.

Two faults: `cut()` closes every connection and refuses new ones (a broker that went away);
`stall()` keeps every connection open but lets nothing through in either direction (a half-open
link: a dead peer, a silent firewall, a cable pulled far away). `restore()` ends either.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target.

    `cut()` drops every connection and refuses new ones until `restore()`. `stall()` stops
    forwarding on every connection, new ones included, without closing any: the peers see
    neither data nor a close, and once the kernel buffers fill, their writes block. `restore()`
    resumes forwarding, or with `drop=True` closes the stalled connections instead.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.port = 0

    async def __aenter__(self) -> TcpProxy:
        await self._listen(0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.cut()

    @property
    def stalled(self) -> bool:
        """Whether forwarding is stopped by `stall()`."""
        return not self._flowing.is_set()

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, upstream_writer))
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            with contextlib.suppress(OSError):
                while True:
                    # Stalled: stop reading too, so the sender's socket buffers fill as behind a
                    # dead link (a chunk read just before the stall waits for restore()).
                    await self._flowing.wait()
                    try:
                        data = await source.read(65536)
                    except OSError:
                        data = b""  # reset by the peer: pass it on as a close
                    # Neither data nor a close goes through a stalled link.
                    await self._flowing.wait()
                    if not data:
                        break
                    sink.write(data)
                    await sink.drain()
        finally:
            sink.close()
            self._writers.discard(sink)

    async def cut(self) -> None:
        """Drop every proxied connection and stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self._drop()

    async def stall(self) -> None:
        """Stop forwarding in both directions on every connection, closing none."""
        self._flowing.clear()

    async def restore(self, *, drop: bool = False) -> None:
        """End a fault: listen again after `cut()`; after `stall()`, resume forwarding, or with
        `drop` close the stalled connections (as the peers' timeouts eventually would) and
        forward for new ones."""
        if drop:
            await self._drop()
        self._flowing.set()
        if self._server is None:
            await self._listen(self.port)

    async def _drop(self) -> None:
        for writer in tuple(self._writers):
            writer.transport.abort()
        self._writers.clear()
        pipes = tuple(self._pipes)
        for task in pipes:
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
