"""`eventbridge serve` and authentication: when it refuses to start, and what it logs."""

from __future__ import annotations

import asyncio
import json

import pytest
import socketio
import websockets

from tests import tokens
from tests.integration.conftest import EVENTBRIDGE, free_port, serve_process, wait_ready

JWT_ENV = {
    "EVENTBRIDGE_AUTH": "jwt",
    "EVENTBRIDGE_JWT_SECRET": tokens.SECRET,
    "EVENTBRIDGE_JWT_ISSUER": tokens.ISSUER,
}


async def refused(amqp_url: str, prefix: str, **env: str) -> tuple[int, list[str]]:
    """Run `eventbridge serve` expecting it to stop at once; return its status and stderr lines."""
    async with serve_process(amqp_url, prefix, free_port(), settings=env) as process:
        assert process.stderr is not None
        stderr = await asyncio.wait_for(process.stderr.read(), 30)
        status = await process.wait()
    return status, stderr.decode().splitlines()


async def test_anonymous_on_every_address_is_refused_in_one_sentence(
    amqp_url: str, prefix: str
) -> None:
    """Anonymous mode bound to 0.0.0.0 without --insecure stops with one line saying what to do."""
    status, lines = await refused(
        amqp_url, prefix, EVENTBRIDGE_AUTH="anonymous", EVENTBRIDGE_HOST="0.0.0.0"
    )
    assert status == 1
    assert lines == [
        "eventbridge: refusing to serve anonymous clients on 0.0.0.0: anyone who reaches it "
        "could read every room; set EVENTBRIDGE_JWT_SECRET (HS256) or "
        "EVENTBRIDGE_JWT_PUBLIC_KEY_FILE (RS256, ES256) and EVENTBRIDGE_JWT_ISSUER to require "
        "tokens, or pass --insecure (EVENTBRIDGE_INSECURE=true) on a trusted network"
    ]


async def test_default_without_a_key_is_refused(amqp_url: str, prefix: str) -> None:
    """With nothing configured, serve stops and names the settings to set."""
    status, lines = await refused(amqp_url, prefix, EVENTBRIDGE_AUTH="jwt")
    assert status == 1
    assert len(lines) == 1
    assert "no key is configured" in lines[0]
    assert "EVENTBRIDGE_AUTH=anonymous" in lines[0]


async def test_a_short_jwt_secret_is_refused_with_exit_1(amqp_url: str, prefix: str) -> None:
    """A JWT secret under 32 bytes stops serve with exit status 1 (as docs/configuration.md's
    exit codes say) and one line saying how to make a good one."""
    status, lines = await refused(
        amqp_url, prefix, EVENTBRIDGE_AUTH="jwt", EVENTBRIDGE_JWT_SECRET="short"
    )
    assert status == 1
    assert lines == [
        "eventbridge: EVENTBRIDGE_JWT_SECRET is too short for HS256: use at least 32 random "
        "bytes (e.g. `openssl rand -base64 48`)"
    ]


async def test_insecure_serves_anonymous_clients_on_every_address(
    amqp_url: str, prefix: str
) -> None:
    """--insecure (EVENTBRIDGE_INSECURE) lets anonymous mode bind 0.0.0.0, with a warning."""
    port = free_port()
    env = {"EVENTBRIDGE_HOST": "0.0.0.0", "EVENTBRIDGE_INSECURE": "true"}
    async with serve_process(amqp_url, prefix, port, settings=env) as process:
        await wait_ready(port)
        process.terminate()
        assert process.stderr is not None
        log = (await asyncio.wait_for(process.stderr.read(), 30)).decode()
        assert await process.wait() == 0
    assert "anonymous mode: anyone who reaches 0.0.0.0" in log


async def test_tokens_never_appear_in_the_logs(amqp_url: str, prefix: str) -> None:
    """At debug level, accepted, refused and URL-borne tokens leave no trace in the bridge's log."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    good = tokens.hs256(projects=["p1"])
    secrets = {
        "good": good,
        "expired": tokens.hs256(exp=tokens.claims()["iat"] - 600),
        "tampered": tokens.tampered(good),
        "unsigned": tokens.unsigned(),
        "in url": tokens.hs256(sub="url-user"),
    }
    env = {**JWT_ENV, "EVENTBRIDGE_LOG_LEVEL": "debug"}
    async with serve_process(amqp_url, prefix, port, settings=env) as process:
        await wait_ready(port)
        for name, token in secrets.items():
            client = socketio.AsyncClient(reconnection=False)
            url = f"{base}?token={token}" if name == "in url" else base
            auth = None if name == "in url" else {"token": token}
            try:
                await client.connect(url, transports=["websocket"], auth=auth, wait_timeout=5)
                await client.call("join-project", "p1", timeout=5)
                await client.disconnect()
            except socketio.exceptions.ConnectionError:
                pass
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws?token={token}") as ws:
                await ws.send(json.dumps({"type": "auth", "token": token}))
                await ws.recv()
        process.terminate()
        assert process.stderr is not None
        log = (await asyncio.wait_for(process.stderr.read(), 30)).decode()
        await process.wait()
    assert "refused WebSocket client" in log  # the refusals were logged ...
    for name, token in secrets.items():
        signature = token.rsplit(".", 1)[-1] or token.split(".")[1]
        assert signature not in log, f"the {name} token appears in the log"  # ... not the tokens
    assert tokens.SECRET not in log


@pytest.mark.parametrize("command", ["serve", "demo"])
async def test_help_explains_authentication(command: str) -> None:
    """`serve --help` and `demo --help` document --auth, --insecure and where the secret goes."""
    process = await asyncio.create_subprocess_exec(
        *EVENTBRIDGE, command, "--help", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    text = " ".join(out.decode().split())
    assert "--auth {jwt,anonymous}" in text
    assert "--insecure" in text
    assert "EVENTBRIDGE_JWT_SECRET only, never the command line" in text
