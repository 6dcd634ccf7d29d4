"""The JavaScript client library (clients/js) tested by its own Node test suite.

`npm test` in clients/js starts real bridges (`python -m bridge.cli.main serve`, this virtual
environment's Python) against this test run's broker and publishes with amqplib; this test builds
the library (`tsc`), runs that suite and fails with its output if any of it fails. It needs
Node.js 20+ and `npm ci --prefix clients/js` (`scripts/dev.sh setup` runs it); without them it
fails, saying so.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parents[2] / "clients" / "js"
INSTALL_COMMAND = "npm ci --prefix clients/js"
SUITE_TIMEOUT = 600.0
"""The Node suite takes about 70 s; it restarts bridges and waits for tokens to expire."""


async def run(*command: str, env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run a command in clients/js; return its exit code and combined output."""
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=LIBRARY,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


@pytest.mark.timeout(SUITE_TIMEOUT + 120)
async def test_client_library_node_suite_passes(amqp_url: str) -> None:
    """The library builds, and its Node suite (both transports against real bridges: every
    event type typed, restarts with 0 lost and 0 duplicates, token refresh, resync, client
    events, presence and presence states, tsc checks, stale bundle and types) passes."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            f"node is not on PATH: install Node.js 20+, then `{INSTALL_COMMAND}`.", pytrace=False
        )
    if not (LIBRARY / "node_modules" / "typescript" / "package.json").is_file():
        pytest.fail(f"clients/js/node_modules is missing: run `{INSTALL_COMMAND}`.", pytrace=False)
    env = {**os.environ, "EVENTBRIDGE_PYTHON": sys.executable, "EVENTBRIDGE_AMQP_URL": amqp_url}
    code, output = await run(
        node, "node_modules/typescript/bin/tsc", "-p", ".", env=env, timeout=120
    )
    assert code == 0, f"the library does not build:\n{output}"
    code, output = await run(node, "scripts/run-tests.mjs", env=env, timeout=SUITE_TIMEOUT)
    summary = [
        line
        for line in output.splitlines()
        if line.startswith(("# tests", "# pass", "# fail", "# \\#"))
    ]
    assert code == 0, f"the Node suite failed:\n{output[-15000:]}"
    assert any(line.startswith("# pass") for line in summary), output[-3000:]
