"""Asking the local broker's `rabbitmqctl` what AMQP does not tell (RabbitMQ 3.10 reports no
consumers, arguments or size of a stream over AMQP).

Only for a broker on this machine: `rabbitmqctl` talks to the local node, which need not be the
broker of the URL otherwise. Every failure (no `rabbitmqctl`, no permission, a timeout) is
"cannot tell": None.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from typing import Any
from urllib.parse import unquote, urlsplit

TIMEOUT = 5.0
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


async def list_queues(amqp_url: str, *fields: str) -> list[dict[str, Any]] | None:
    """Every queue of the URL's virtual host with `name` and `fields` (`rabbitmqctl
    list_queues`), or None where rabbitmqctl cannot tell (a broker on another machine, say).

    With several URLs (a cluster's nodes) the first decides whether the broker is local.
    """
    return await listing(amqp_url, "list_queues", "name", *fields)


async def listing(amqp_url: str, command: str, *fields: str) -> list[dict[str, Any]] | None:
    """The rows of one `rabbitmqctl list_…` command (`list_queues`, `list_connections`,
    `list_channels`, ...) in the URL's virtual host, with `fields`; None where rabbitmqctl
    cannot tell."""
    parts = urlsplit(amqp_url.split(",", maxsplit=1)[0].strip())
    executable = shutil.which("rabbitmqctl")
    if executable is None or (parts.hostname or "localhost") not in LOCAL_HOSTS:
        return None
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    command_line = [executable, "-q", command, "-p", vhost, *fields]
    try:
        process = await asyncio.create_subprocess_exec(
            *command_line,
            "--formatter",
            "json",
            stdin=asyncio.subprocess.DEVNULL,  # it reads its stdin: the answer to a prompt
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return None
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), TIMEOUT)
        rows = json.loads(stdout)
    except (TimeoutError, ValueError):
        return None
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if not isinstance(rows, list) or process.returncode != 0:
        return None
    return [row for row in rows if isinstance(row, dict)]
