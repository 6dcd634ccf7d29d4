"""Run the checked-in compose/nginx.conf with a local nginx, in front of local bridge replicas.

`local_config()` turns the file (written for Compose: included inside `http {}`, upstreams named
by service, `listen 80`) into a complete main configuration for one test: the same server and
upstream blocks, with each `server <service>:<port>` upstream line pointed at a local port, the
listener on a free local port, and the pid file, logs and temporary files under one directory.
The access log names the replica that served each request, so a test can check the routing.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NGINX_CONF = REPO / "compose" / "nginx.conf"

ACCESS_LOG_FORMAT = "$upstream_addr $status $request_method $uri $arg_transport $arg_sid"
"""One access-log line per request: the replica(s) tried (last one served), status, request,
and the Engine.IO transport and session id of a Socket.IO request ("-" where none)."""

# An upstream server line: `server host:port [parameters];` (the `server {` block has no port).
_UPSTREAM_SERVER = re.compile(
    r"^(?P<indent>\s*)server\s+(?P<host>[\w.-]+):(?P<port>\d+)(?=[\s;])", re.M
)
_LISTEN_80 = re.compile(r"^(?P<indent>\s*)listen\s+80\s*;", re.M)


class ConfigError(ValueError):
    """The configuration does not have the shape `local_config()` rewrites."""


def upstream_hosts(site: str) -> set[str]:
    """The host names of every upstream `server host:port` line of `site`."""
    return {match["host"] for match in _UPSTREAM_SERVER.finditer(site)}


def local_config(
    site: str,
    *,
    upstream_ports: Mapping[str, int],
    listen_port: int,
    directory: Path,
    user: str | None = None,
) -> str:
    """A complete nginx configuration that runs `site` on this machine.

    Args:
        site: the text of compose/nginx.conf (what goes inside `http {}`).
        upstream_ports: the local port standing in for each upstream host (`bridge-1` → 8123);
            every upstream host of `site` must have one, and each must be used.
        listen_port: where nginx listens instead of port 80 (on 127.0.0.1).
        directory: where the pid file, error and access logs and temporary files go.
        user: the `user` directive, for a master running as root (its workers must reach
            `directory`); None leaves nginx's default.

    Raises:
        ConfigError: an upstream host without a port, a port without its host, or not exactly
            one `listen 80`.
    """
    hosts = upstream_hosts(site)
    if missing := hosts - upstream_ports.keys():
        raise ConfigError(f"no local port for the upstream host(s) {sorted(missing)}")
    if unused := upstream_ports.keys() - hosts:
        raise ConfigError(f"no upstream server line names {sorted(unused)}")

    def to_local(match: re.Match[str]) -> str:
        return f"{match['indent']}server 127.0.0.1:{upstream_ports[match['host']]}"

    rendered = _UPSTREAM_SERVER.sub(to_local, site)
    rendered, listens = _LISTEN_80.subn(rf"\g<indent>listen 127.0.0.1:{listen_port};", rendered)
    if listens != 1:
        raise ConfigError(f"expected one `listen 80;`, found {listens}")
    paths = {
        name: directory / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    }
    main = [
        "# Rendered from compose/nginx.conf by tests/nginx.py for one test run.",
        *([f"user {user};"] if user else []),
        "worker_processes 1;",
        f"pid {directory / 'nginx.pid'};",
        f"error_log {directory / 'error.log'} info;",
        "events { worker_connections 1024; }",
        "http {",
        f"    log_format upstreams '{ACCESS_LOG_FORMAT}';",
        f"    access_log {directory / 'access.log'} upstreams;",
        f"    client_body_temp_path {paths['client_body']};",
        f"    proxy_temp_path {paths['proxy']};",
        f"    fastcgi_temp_path {paths['fastcgi']};",
        f"    uwsgi_temp_path {paths['uwsgi']};",
        f"    scgi_temp_path {paths['scgi']};",
        rendered,
        "}",
        "",
    ]
    return "\n".join(main)


@dataclass(frozen=True)
class Request:
    """One access-log line: which replica served which request."""

    upstream: str
    """The replica that answered (the last address nginx tried), e.g. `127.0.0.1:8123`."""
    tried: tuple[str, ...]
    """Every replica nginx tried for this request, in order."""
    status: int
    method: str
    path: str
    transport: str | None
    """Engine.IO's `transport` query parameter (`polling`, `websocket`), if any."""
    sid: str | None
    """Engine.IO's session id (`sid`), if any: the handshake has none yet."""


def read_access_log(directory: Path) -> list[Request]:
    """The requests nginx has logged (a request is logged when it ends)."""
    path = directory / "access.log"
    if not path.exists():
        return []
    requests = []
    for line in path.read_text(encoding="utf-8").splitlines():
        # `$upstream_addr` lists the attempts as "a, b" (or "a : b" across upstream groups).
        head, status, method, uri, transport, sid = line.rsplit(" ", 5)
        tried = tuple(re.split(r", | : ", head))
        requests.append(
            Request(
                upstream=tried[-1],
                tried=tried,
                status=int(status),
                method=method,
                path=uri,
                transport=None if transport == "-" else transport,
                sid=None if sid == "-" else sid,
            )
        )
    return requests


def nginx_executable() -> str:
    """The nginx to run (Debian puts it in /usr/sbin, which a user's PATH may lack).

    Raises:
        NginxMissingError: there is none; the message says how to install it.
    """
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if nginx is None:
        raise NginxMissingError(
            "nginx is not installed: run `apt-get install nginx` (CI's .ci/run does)."
        )
    return nginx


@asynccontextmanager
async def running_nginx(
    nginx: str, config: Path, directory: Path, port: int
) -> AsyncIterator[Path]:
    """Run `nginx -c config` in the foreground until the block ends; yields its directory.

    Waits until nginx accepts connections on 127.0.0.1:`port`; fails with nginx's own error
    if it exits instead.
    """
    process = await asyncio.create_subprocess_exec(
        nginx, "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log"),
        "-g", "daemon off;",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await _await_listening(process, directory, port)
        yield directory
    finally:
        if process.returncode is None:
            process.terminate()  # nginx's fast shutdown
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _await_listening(
    process: asyncio.subprocess.Process, directory: Path, port: int, timeout: float = 10
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if process.returncode is not None:
            assert process.stderr is not None
            said = (await process.stderr.read()).decode(errors="replace").strip()
            log = directory / "error.log"
            if log.exists():
                said += "\n" + log.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise AssertionError(f"nginx exited {process.returncode}: {said}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise AssertionError(f"nginx does not listen on {port} after {timeout} s") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


class NginxMissingError(RuntimeError):
    """No nginx executable: the message says how to install it."""
