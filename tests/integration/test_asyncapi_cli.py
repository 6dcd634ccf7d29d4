"""schemas/asyncapi.json validated by the official AsyncAPI CLI (`asyncapi validate`).

The CLI is pinned in tools/asyncapi (package-lock.json) and installed by `scripts/dev.sh setup`
(`npm ci --prefix tools/asyncapi`); without Node.js or those packages the tests fail, saying so.
Its usage metrics are switched off through a config file of the test's own, so it sends nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from schemas.export import ASYNCAPI_FILE

TOOLS = Path(__file__).resolve().parents[2] / "tools" / "asyncapi"
CLI = TOOLS / "node_modules" / ".bin" / "asyncapi"
INSTALL_COMMAND = "npm ci --prefix tools/asyncapi"


async def validate(document: Path, tmp_path: Path) -> tuple[int, str]:
    """Run `asyncapi validate <document>`; return its exit code and output."""
    if shutil.which("node") is None:
        pytest.fail(
            f"node is not on PATH: install Node.js 20+, then `{INSTALL_COMMAND}`.", pytrace=False
        )
    if not CLI.is_file():
        pytest.fail(f"the AsyncAPI CLI is missing: run `{INSTALL_COMMAND}`.", pytrace=False)
    metrics = tmp_path / "asyncapi-analytics.json"
    metrics.write_text(
        json.dumps({"analyticsEnabled": "false", "infoMessageShown": "true", "userID": "tests"})
    )
    env = {
        **os.environ,
        "ASYNCAPI_METRICS_CONFIG_PATH": str(metrics),
        "SUPPRESS_NO_CONFIG_WARNING": "1",
    }
    process = await asyncio.create_subprocess_exec(
        str(CLI),
        "validate",
        str(document),
        "--fail-severity=warn",
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


async def test_asyncapi_document_is_valid(tmp_path: Path) -> None:
    """The checked-in AsyncAPI 3.0 document passes `asyncapi validate` without errors or
    warnings."""
    code, output = await validate(ASYNCAPI_FILE, tmp_path)
    assert code == 0, output
    assert "is valid" in output, output


async def test_the_validator_rejects_a_broken_document(tmp_path: Path) -> None:
    """The same document with an operation pointing at a channel that does not exist fails, so
    the test above can fail."""
    document = json.loads(ASYNCAPI_FILE.read_text())
    document["operations"]["wsSubscribe"]["channel"] = {"$ref": "#/channels/nowhere"}
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document))
    code, output = await validate(broken, tmp_path)
    assert code != 0, output
