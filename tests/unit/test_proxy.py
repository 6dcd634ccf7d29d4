"""The test TCP proxy (tests/proxy.py) against a local echo server: forwarding, cut, stall."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tests.helpers import wait_for
from tests.proxy import TcpProxy

QUIET = 0.3
"""How long a stalled or cut link is watched for data that must not come through."""


class EchoServer:
    """Echoes every byte back; counts the connections whose client end it saw close."""

    def __init__(self) -> None:
        self.closed = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def __aenter__(self) -> EchoServer:
        self._server = await asyncio.start_server(self._echo, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._handlers.values():
            writer.transport.abort()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = writer
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        self.closed += 1
        await close(writer)


@asynccontextmanager
async def proxied_echo() -> AsyncIterator[tuple[EchoServer, TcpProxy]]:
    """An echo server and a proxy in front of it."""
    async with EchoServer() as echo, TcpProxy("127.0.0.1", echo.port) as proxy:
        yield echo, proxy


async def close(writer: asyncio.StreamWriter) -> None:
    """Close a connection and wait until it is closed, whatever state the peer left it in."""
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def connect(proxy: TcpProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client connection through the proxy."""
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def round_trip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> bytes:
    """Send `data` and read its echo back, within 5 s."""
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), 5)


async def nothing_arrives(reader: asyncio.StreamReader) -> bool:
    """True if neither data nor a close arrives for `QUIET` seconds."""
    try:
        await asyncio.wait_for(reader.read(1), QUIET)
    except TimeoutError:
        return True
    return False


async def test_forwards_both_ways() -> None:
    """Bytes sent through the proxy reach the echo server and its answer comes back."""
    async with proxied_echo() as (_, proxy):
        reader, writer = await connect(proxy)
        assert await round_trip(reader, writer, b"hello") == b"hello"
        await close(writer)


async def test_stall_holds_data_without_closing_and_restore_resumes() -> None:
    """A stalled link passes no data and no close either way; restore() delivers what waited."""
    async with proxied_echo() as (echo, proxy):
        reader, writer = await connect(proxy)
        assert await round_trip(reader, writer, b"before") == b"before"
        await proxy.stall()
        assert proxy.stalled
        writer.write(b"during")
        await writer.drain()
        assert await nothing_arrives(reader)
        assert not reader.at_eof()
        await proxy.restore()
        assert await asyncio.wait_for(reader.readexactly(6), 5) == b"during"
        assert await round_trip(reader, writer, b"after") == b"after"
        await close(writer)
        await wait_for(lambda: echo.closed == 1, 5)


async def test_stall_keeps_a_close_from_the_other_side() -> None:
    """The client's close does not reach the server through a stalled link, only after it."""
    async with proxied_echo() as (echo, proxy):
        reader, writer = await connect(proxy)
        assert await round_trip(reader, writer, b"x") == b"x"
        await proxy.stall()
        await close(writer)
        await asyncio.sleep(QUIET)  # the close must not arrive: nothing to wait on but time
        assert echo.closed == 0
        await proxy.restore()
        await wait_for(lambda: echo.closed == 1, 5)


async def test_a_connection_opened_during_a_stall_waits_for_restore() -> None:
    """A connection accepted while stalled is open but silent until restore()."""
    async with proxied_echo() as (_, proxy):
        await proxy.stall()
        reader, writer = await connect(proxy)
        writer.write(b"early")
        await writer.drain()
        assert await nothing_arrives(reader)
        await proxy.restore()
        assert await asyncio.wait_for(reader.readexactly(5), 5) == b"early"
        await close(writer)


async def test_restore_with_drop_closes_the_stalled_connections() -> None:
    """restore(drop=True) closes the stalled connections, and new ones work."""
    async with proxied_echo() as (_, proxy):
        reader, writer = await connect(proxy)
        assert await round_trip(reader, writer, b"up") == b"up"
        await proxy.stall()
        await proxy.restore(drop=True)
        assert not proxy.stalled
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(reader.readexactly(1), 5)
        await close(writer)
        reader, writer = await connect(proxy)
        assert await round_trip(reader, writer, b"new") == b"new"
        await close(writer)


async def test_cut_drops_connections_and_refuses_new_ones_until_restore() -> None:
    """cut() closes every connection and refuses new ones; restore() listens on the same port."""
    async with proxied_echo() as (_, proxy):
        reader, writer = await connect(proxy)
        assert await round_trip(reader, writer, b"up") == b"up"
        port = proxy.port
        await proxy.cut()
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(reader.readexactly(1), 5)
        await close(writer)
        with pytest.raises(ConnectionRefusedError):
            await connect(proxy)
        await proxy.restore()
        assert proxy.port == port
        reader, writer = await connect(proxy)
        assert await round_trip(reader, writer, b"back") == b"back"
        await close(writer)
