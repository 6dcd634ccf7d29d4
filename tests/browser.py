"""A minimal async driver for headless Chromium over the Chrome DevTools Protocol (CDP).

Enough to test pages the way a user sees them: open a URL, reload, run JavaScript, wait for a
condition, take a screenshot. It talks JSON-RPC over one WebSocket to the browser and drives
each page through a flattened target session, so nothing beyond `websockets` is needed.

    async with await Browser.launch() as browser:
        page = await browser.new_page()
        await page.navigate("http://127.0.0.1:8080/index.html")
        await page.wait_for("document.title === 'ready'", timeout=10)
        await page.screenshot(Path("test-artifacts/page.png"))

Chromium is the Debian package (`apt-get install -y chromium`, binary `/usr/bin/chromium`).
When it is missing, `Browser.launch` raises `ChromiumMissingError` saying so: tests that need a
browser fail with that sentence instead of being skipped.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "run `apt-get install chromium` (as root: `apt-get install -y chromium`)"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)
"""Flags of every launch; `--user-data-dir` (a fresh temporary profile) is added per launch."""

JsonObject = dict[str, Any]


class BrowserError(Exception):
    """The browser could not be started, or it answered a command with an error."""


class ChromiumMissingError(BrowserError):
    """The Chromium binary is not installed."""


class JavaScriptError(BrowserError):
    """Evaluated JavaScript threw an exception."""


@dataclass(frozen=True, slots=True)
class ConsoleMessage:
    """One `console.*` call or uncaught exception of a page.

    Attributes:
        level: `log`, `info`, `warning`, `error`, ... or `exception` for an uncaught one.
        text: the message, arguments joined by spaces.
    """

    level: str
    text: str


class _Connection:
    """JSON-RPC over the browser's DevTools WebSocket: commands by id, events to listeners."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._calls: dict[int, asyncio.Future[JsonObject]] = {}
        self._waiters: list[tuple[str, str | None, asyncio.Future[JsonObject]]] = []
        self._sessions: dict[str, Page] = {}
        self._reader = asyncio.create_task(self._read(), name="cdp-reader")
        self.closed_reason: str | None = None

    def register(self, session_id: str, page: Page) -> None:
        """Route the events of a target session to its page."""
        self._sessions[session_id] = page

    async def call(
        self,
        method: str,
        params: JsonObject | None = None,
        *,
        session_id: str | None = None,
        timeout: float = 30.0,
    ) -> JsonObject:
        """Send one command and return its `result`.

        Raises:
            BrowserError: the browser answered with an error or the connection is gone.
            TimeoutError: no answer within `timeout` seconds.
        """
        if self.closed_reason is not None:
            raise BrowserError(
                f"{method}: the DevTools connection is closed ({self.closed_reason})"
            )
        call_id = next(self._ids)
        message: JsonObject = {"id": call_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        future: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        self._calls[call_id] = future
        try:
            await self._socket.send(json.dumps(message))
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._calls.pop(call_id, None)

    def expect(self, method: str, session_id: str | None = None) -> asyncio.Future[JsonObject]:
        """A future for the next event `method` (of `session_id`); register it before the
        command that causes the event, so the event cannot be missed."""
        future: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        self._waiters.append((method, session_id, future))
        return future

    async def _read(self) -> None:
        try:
            async for raw in self._socket:
                self._dispatch(json.loads(raw))
            self.closed_reason = "the browser closed it"
        except websockets.ConnectionClosed as exc:
            self.closed_reason = f"connection closed: {exc}"
        finally:
            error = BrowserError(f"the DevTools connection is closed ({self.closed_reason})")
            for future in self._calls.values():
                if not future.done():
                    future.set_exception(error)
            for _, _, future in self._waiters:
                if not future.done():
                    future.set_exception(error)
            self._waiters.clear()

    def _dispatch(self, message: JsonObject) -> None:
        if "id" in message:
            future = self._calls.get(message["id"])
            if future is None or future.done():
                return
            if "error" in message:
                error = message["error"]
                future.set_exception(
                    BrowserError(f"CDP error {error.get('code')}: {error.get('message')}")
                )
            else:
                future.set_result(message.get("result", {}))
            return
        method: str = message.get("method", "")
        params: JsonObject = message.get("params", {})
        session_id: str | None = message.get("sessionId")
        page = self._sessions.get(session_id) if session_id is not None else None
        if page is not None:
            page.on_event(method, params)
        for waiter in list(self._waiters):
            wanted, wanted_session, future = waiter
            if wanted == method and wanted_session == session_id:
                self._waiters.remove(waiter)
                if not future.done():
                    future.set_result(params)

    async def close(self) -> None:
        """Close the WebSocket and stop reading."""
        with contextlib.suppress(Exception):
            await self._socket.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader


class Page:
    """One browser tab, driven through its own CDP session."""

    def __init__(self, connection: _Connection, target_id: str, session_id: str) -> None:
        self._connection = connection
        self.target_id = target_id
        self.session_id = session_id
        self.console: list[ConsoleMessage] = []
        """Every console message and uncaught exception of the page, oldest first."""

    async def call(self, method: str, params: JsonObject | None = None) -> JsonObject:
        """Send any CDP command to this page's session (for what this driver does not wrap)."""
        return await self._connection.call(method, params, session_id=self.session_id)

    def on_event(self, method: str, params: JsonObject) -> None:
        """Record console messages and uncaught exceptions (called by the connection)."""
        if method == "Runtime.consoleAPICalled":
            text = " ".join(_describe(arg) for arg in params.get("args", []))
            self.console.append(ConsoleMessage(str(params.get("type", "log")), text))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.console.append(ConsoleMessage("exception", _exception_text(details)))

    async def _enable(self) -> None:
        await self.call("Page.enable")
        await self.call("Runtime.enable")

    async def navigate(self, url: str, *, timeout: float = 30.0) -> None:
        """Open `url` and wait for its `load` event.

        Raises:
            BrowserError: the navigation failed (for instance, nothing listens at that address).
            TimeoutError: the page did not finish loading within `timeout` seconds.
        """
        loaded = self._connection.expect("Page.loadEventFired", self.session_id)
        try:
            async with asyncio.timeout(timeout):
                result = await self.call("Page.navigate", {"url": url})
                if result.get("errorText"):
                    raise BrowserError(f"navigating to {url} failed: {result['errorText']}")
                await loaded
        finally:
            loaded.cancel()

    async def reload(self, *, ignore_cache: bool = False, timeout: float = 30.0) -> None:
        """Reload the page (like the user pressing F5) and wait for its `load` event.

        Raises:
            TimeoutError: the page did not finish loading within `timeout` seconds.
        """
        loaded = self._connection.expect("Page.loadEventFired", self.session_id)
        try:
            async with asyncio.timeout(timeout):
                await self.call("Page.reload", {"ignoreCache": ignore_cache})
                await loaded
        finally:
            loaded.cancel()

    async def evaluate(self, expression: str, *, timeout: float = 10.0) -> Any:
        """Evaluate a JavaScript expression in the page and return its value as JSON data.

        A promise is awaited. DOM nodes and functions cannot be returned: return plain data.

        Raises:
            JavaScriptError: the expression threw.
            TimeoutError: no result within `timeout` seconds.
        """
        result = await self._connection.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session_id=self.session_id,
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            raise JavaScriptError(
                f"{expression!r} threw: {_exception_text(result['exceptionDetails'])}"
            )
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, *, timeout: float, interval: float = 0.05) -> Any:
        """Evaluate `expression` until its value is truthy and return that value.

        Errors while the page is between documents (during a reload) count as "not yet".

        Raises:
            TimeoutError: still falsy after `timeout` seconds; the message shows the last value
                or error and the page's latest console messages.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: str = "nothing evaluated yet"
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = "\n".join(f"  [{m.level}] {m.text}" for m in self.console[-10:])
                shown = expression if len(expression) <= 200 else f"{expression[:200]}..."
                raise TimeoutError(
                    f"{shown!r} was not true within {timeout} s (last: {last}); "
                    f"latest console messages:\n{recent or '  (none)'}"
                )
            try:
                value = await self.evaluate(expression, timeout=max(0.1, min(5.0, remaining)))
            except (BrowserError, TimeoutError) as exc:
                last = f"error: {exc}"
            else:
                if value:
                    return value
                last = repr(value)[:200]
            await asyncio.sleep(interval)

    async def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """Save a PNG of the viewport (or of the whole page) to `path`; return `path`."""
        params: JsonObject = {"format": "png"}
        if full_page:
            metrics = await self.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": size["height"],
                "scale": 1,
            }
            params["captureBeyondViewport"] = True
        result = await self.call("Page.captureScreenshot", params)
        await asyncio.to_thread(_write_file, path, base64.b64decode(result["data"]))
        return path

    async def close(self) -> None:
        """Close this tab."""
        with contextlib.suppress(BrowserError, TimeoutError):
            await self._connection.call("Target.closeTarget", {"targetId": self.target_id})


class Browser:
    """A headless Chromium process with a fresh profile, and its DevTools connection.

    Create it with `Browser.launch()`; use it as an async context manager (or call `close()`)
    so the process is killed and its temporary profile removed.
    """

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        connection: _Connection,
        profile: Path,
    ) -> None:
        self._process = process
        self._connection = connection
        self._profile = profile
        self._pages: list[Page] = []

    @classmethod
    async def launch(
        cls,
        executable: Path = CHROMIUM,
        *,
        extra_args: Sequence[str] = (),
        window_size: tuple[int, int] = (1280, 900),
        timeout: float = 30.0,
    ) -> Browser:
        """Start Chromium headless and connect to it.

        Raises:
            ChromiumMissingError: `executable` does not exist; the message says what to install.
            BrowserError: Chromium exited or did not open its DevTools port within `timeout`.
        """
        profile = _new_profile(executable)
        log_path = profile / "chromium-stderr.log"
        args = [
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile / 'profile'}",
            f"--window-size={window_size[0]},{window_size[1]}",
            *extra_args,
            "about:blank",
        ]
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                str(executable),
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,  # its helper processes share its process group
            )
        try:
            url = await _devtools_url(process, profile / "profile", log_path, timeout)
            socket = await websockets.connect(
                url, max_size=None, ping_interval=None, open_timeout=timeout
            )
        except BaseException:
            await _kill(process)
            shutil.rmtree(profile, ignore_errors=True)
            raise
        return cls(process, _Connection(socket), profile)

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def pid(self) -> int:
        """The browser process id."""
        return self._process.pid

    async def new_page(self, url: str = "about:blank") -> Page:
        """Open a new tab showing `url` (without waiting for it to load) and return it."""
        created = await self._connection.call("Target.createTarget", {"url": url})
        target_id: str = created["targetId"]
        attached = await self._connection.call(
            "Target.attachToTarget", {"targetId": target_id, "flatten": True}
        )
        page = Page(self._connection, target_id, attached["sessionId"])
        self._connection.register(page.session_id, page)
        await page._enable()
        self._pages.append(page)
        return page

    async def close(self) -> None:
        """Close the browser: ask it to exit, kill it if it does not, remove the profile."""
        if self._process.returncode is None:
            with contextlib.suppress(BrowserError, TimeoutError):
                await self._connection.call("Browser.close", timeout=3)
        await self._connection.close()
        await _kill(self._process)
        shutil.rmtree(self._profile, ignore_errors=True)


async def _devtools_url(
    process: asyncio.subprocess.Process, profile: Path, log_path: Path, timeout: float
) -> str:
    """Wait for the browser's DevTools WebSocket URL.

    Chromium writes the port and path to `DevToolsActivePort` in the profile (and prints
    "DevTools listening on ws://..." on stderr); the file is read, the log is the fallback.
    """
    port_file = profile / "DevToolsActivePort"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if process.returncode is not None:
            raise BrowserError(
                f"Chromium exited with code {process.returncode} before opening its DevTools "
                f"port; its output ends with:\n{_tail(log_path)}"
            )
        with contextlib.suppress(OSError, ValueError):
            lines = port_file.read_text().split()
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{int(lines[0])}{lines[1]}"
        for line in _tail(log_path).splitlines():
            if line.startswith("DevTools listening on "):
                return line.removeprefix("DevTools listening on ").strip()
        await asyncio.sleep(0.05)
    raise BrowserError(
        f"Chromium did not open its DevTools port within {timeout} s; its output ends with:\n"
        f"{_tail(log_path)}"
    )


async def _kill(process: asyncio.subprocess.Process) -> None:
    """Stop the browser and its helper processes (its own process group), then reap it."""
    if process.returncode is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def _new_profile(executable: Path) -> Path:
    """Check that Chromium is installed and create a temporary directory for one launch."""
    if not executable.is_file() or not os.access(executable, os.X_OK):
        raise ChromiumMissingError(f"Chromium is not installed at {executable}: {INSTALL_HINT}.")
    return Path(tempfile.mkdtemp(prefix="eventbridge-chromium-"))


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def _describe(remote_object: JsonObject) -> str:
    if "value" in remote_object:
        value = remote_object["value"]
        return value if isinstance(value, str) else json.dumps(value)
    return str(remote_object.get("description") or remote_object.get("type", "?"))


def _exception_text(details: JsonObject) -> str:
    exception = details.get("exception") or {}
    return str(exception.get("description") or details.get("text") or "unknown exception")
