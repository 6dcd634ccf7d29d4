"""Plumbing of the live benchmark: child processes, CPU accounting, free ports, broker cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import aio_pika

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """Return a loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float | None:
    """Return the user plus system CPU seconds a process has used, or None if it is gone.

    Args:
        pid: the process id.
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name start at field 3 (state); utime and stime
    # are fields 14 and 15.
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def machine_busy_seconds() -> float | None:
    """Return the CPU seconds all cores together spent busy since boot (from /proc/stat)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    # cpu user nice system idle iowait irq softirq steal ...: all but idle and iowait are busy.
    values = [int(value) for value in first[1:9]]
    return (sum(values) - values[3] - values[4]) / _CLOCK_TICKS


def rss_mb(pid: int | None) -> float | None:
    """Return a process's resident memory in MiB, or None if it is gone."""
    if pid is None:
        return None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def find_broker_pid(port: int = 5672) -> int | None:
    """Return the pid of the RabbitMQ node (Erlang `beam.smp`) listening on `port` (AMQP), or
    None if none is visible. Other nodes (a test cluster's) may run beside it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() != "beam.smp":
                continue
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return int(entry.name)
    return None


class CpuMeter:
    """Measures how many cores each of several processes used over a stretch of wall time.

    Besides the named processes it reports `other`: what the rest of the machine used meanwhile
    (other sessions' tests, for instance), which disturbs the figures when it is not near 0.

    Args:
        pids: a name (e.g. "bench", "server", "broker") for each process id to watch; a None
            pid is reported as None.
    """

    def __init__(self, pids: Mapping[str, int | None]) -> None:
        self._pids = dict(pids)
        self._before: dict[str, float | None] = {}
        self._machine: float | None = None
        self._started = 0.0

    def start(self) -> None:
        """Take the starting snapshot."""
        self._before = {name: _cpu_of(pid) for name, pid in self._pids.items()}
        self._machine = machine_busy_seconds()
        self._started = time.perf_counter()

    def stop(self, extra: Mapping[str, float] | None = None) -> dict[str, float | None]:
        """Return the cores each process used since `start()` (1.0 = one core fully busy).

        Args:
            extra: CPU seconds to add to a named entry, e.g. those a short-lived helper
                process reported about itself before exiting.
        """
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        used: dict[str, float | None] = {}
        for name, pid in self._pids.items():
            before, after = self._before.get(name), _cpu_of(pid)
            if before is None or after is None:
                used[name] = None
            else:
                used[name] = (after - before + (extra or {}).get(name, 0.0)) / elapsed
        machine = machine_busy_seconds()
        if machine is not None and self._machine is not None:
            ours = sum(value for value in used.values() if value is not None)
            used["other"] = max(0.0, (machine - self._machine) / elapsed - ours)
        return used


def _cpu_of(pid: int | None) -> float | None:
    return None if pid is None else cpu_seconds(pid)


_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded now: a forked child must not dlopen


def die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM it if the benchmark dies first."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ChildProcess:
    """A server run as a child process, its output kept in a log file; an async context manager.

    Leaving it stops the child: SIGTERM, then SIGKILL after `stop_timeout` seconds.

    Args:
        name: a short name for messages.
        argv: the command line.
        env: the child's whole environment.
        log_path: where the child's stdout and stderr go.
        stop_timeout: seconds to wait for a graceful exit before killing.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        stop_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._argv = list(argv)
        self._env = dict(env)
        self._stop_timeout = stop_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id once started."""
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        """The child's exit code once it exited (negative: killed by that signal)."""
        return None if self._process is None else self._process.returncode

    @property
    def exited(self) -> bool:
        """Whether the child has exited."""
        return self._process is not None and self._process.returncode is not None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the child printed."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def __aenter__(self) -> ChildProcess:
        self._log = self.log_path.open("wb")
        self._process = await asyncio.create_subprocess_exec(
            *self._argv,
            env=self._env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Stop the child with SIGSTOP for the duration of the block; SIGCONT it on leaving."""
        if self._process is None or self._process.returncode is not None:
            raise RuntimeError(f"{self.name} is not running")
        self._process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self._continue()

    def pause(self) -> None:
        """Stop the child with SIGSTOP (`resume()` continues it; so does `stop()`)."""
        if self._process is None or self._process.returncode is not None:
            raise RuntimeError(f"{self.name} is not running")
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Continue a child stopped by `pause()`."""
        self._continue()

    def _continue(self) -> None:
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGCONT)

    async def stop(self) -> int | None:
        """Stop the child (bounded) and return its exit code; safe to call more than once."""
        process = self._process
        try:
            if process is not None and process.returncode is None:
                self._continue()  # a stopped process would not act on SIGTERM
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), self._stop_timeout)
                except TimeoutError:
                    process.kill()
                    await asyncio.wait_for(process.wait(), self._stop_timeout)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
        return None if process is None else process.returncode


async def wait_for_port(port: int, child: ChildProcess, timeout: float) -> None:
    """Wait until something accepts TCP connections on a loopback port.

    Raises:
        RuntimeError: the child exited, or nothing listened within `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.exited:
            raise RuntimeError(f"{child.name} exited during start-up:\n{child.log_tail()}")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1)
        except (OSError, TimeoutError):
            await asyncio.sleep(0.1)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
    raise RuntimeError(f"{child.name} did not listen on port {port} within {timeout} s")


async def http_status(port: int, path: str) -> int | None:
    """GET a path on a loopback port with a bare HTTP/1.0 request; return the status or None."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), 2)
        parts = line.split()
        return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def http_json(port: int, path: str, timeout: float = 5) -> Any:
    """GET a path on a loopback port (bare HTTP/1.0) and return its JSON body.

    Raises:
        RuntimeError: no answer, a status other than 200, or a body that is not JSON.
    """
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
                raw = await reader.read()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError) as exc:
        raise RuntimeError(f"GET {path} on port {port} failed: {exc!r}") from exc
    head, _, body = raw.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != b"200":
        raise RuntimeError(f"GET {path} on port {port} answered {head[:80]!r}")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise RuntimeError(f"GET {path} on port {port} did not return JSON: {body[:80]!r}") from exc


async def wait_until_ready(
    port: int, child: ChildProcess, timeout: float, *, poll: float = 0.1
) -> None:
    """Wait until the bridge answers `GET /ready` with 200, asking every `poll` seconds.

    Raises:
        RuntimeError: the child exited, or it was not ready within `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.exited:
            raise RuntimeError(f"{child.name} exited during start-up:\n{child.log_tail()}")
        if await http_status(port, "/ready") == 200:
            return
        await asyncio.sleep(poll)
    raise RuntimeError(
        f"{child.name} was not ready within {timeout} s; its log ends:\n{child.log_tail()}"
    )


async def broker_version(amqp_url: str) -> str | None:
    """The broker's product and version as it announces them, e.g. "RabbitMQ 3.10.8"."""
    try:
        connection = await aio_pika.connect(amqp_url, timeout=10)
    except (aio_pika.exceptions.AMQPError, OSError, TimeoutError):
        return None
    async with connection:
        transport = connection.transport
        if transport is None:
            return None
        properties = transport.connection.server_properties
        return f"{properties.get('product', '?')!s} {properties.get('version', '?')!s}"
