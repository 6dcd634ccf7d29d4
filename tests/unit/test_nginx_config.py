"""tests/nginx.py: rendering compose/nginx.conf into a configuration a local nginx can run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.nginx import (
    NGINX_CONF,
    ConfigError,
    Request,
    local_config,
    read_access_log,
    upstream_hosts,
)

PORTS = {"bridge-1": 18001, "bridge-2": 18002}


@pytest.fixture
def site() -> str:
    """The checked-in nginx configuration."""
    return NGINX_CONF.read_text(encoding="utf-8")


def render(
    site: str, directory: Path, *, upstream_ports: dict[str, int] = PORTS, user: str | None = None
) -> str:
    """local_config() listening on 18080, with this module's ports unless told otherwise."""
    return local_config(
        site, upstream_ports=upstream_ports, listen_port=18080, directory=directory, user=user
    )


def test_the_checked_in_upstreams_name_the_two_replicas(site: str) -> None:
    """The compose nginx.conf's upstream servers are bridge-1 and bridge-2."""
    assert upstream_hosts(site) == {"bridge-1", "bridge-2"}


def test_upstream_servers_point_at_local_ports_keeping_their_parameters(
    site: str, tmp_path: Path
) -> None:
    """Every `server bridge-N:8000 ...;` becomes `server 127.0.0.1:<port N> ...;`, parameters
    (max_fails, fail_timeout) kept, in every upstream block."""
    rendered = render(site, tmp_path)
    assert not re.search(r"^\s*server bridge-", rendered, re.M)
    originals = re.findall(r"server (bridge-\d):8000([^;]*);", site)
    locals_ = re.findall(r"server 127\.0\.0\.1:(\d+)([^;]*);", rendered)
    assert [(PORTS[host], parameters) for host, parameters in originals] == [
        (int(port), parameters) for port, parameters in locals_
    ]
    assert len(locals_) == 4  # two upstreams of two replicas


def test_listens_on_the_given_local_port_only(site: str, tmp_path: Path) -> None:
    """`listen 80;` becomes `listen 127.0.0.1:<port>;`, and no other listener remains."""
    rendered = render(site, tmp_path)
    assert re.findall(r"^\s*listen\s+([^;]+);", rendered, re.M) == ["127.0.0.1:18080"]


def test_wraps_the_site_in_a_main_configuration_under_the_directory(
    site: str, tmp_path: Path
) -> None:
    """The result has events {} and http {} around the site, its pid file, logs and temporary
    paths under the directory, and the rest of the site unchanged."""
    rendered = render(site, tmp_path, user="root")
    assert re.search(r"^events \{.*\}$", rendered, re.M)
    assert rendered.index("http {") < rendered.index("upstream eventbridge_sticky")
    assert rendered.rstrip().endswith("}")
    for directive in ("pid", "error_log", "access_log", "client_body_temp_path", "proxy_temp_path"):
        assert re.search(rf"^\s*{directive} {re.escape(str(tmp_path))}/", rendered, re.M), directive
    assert "user root;" in rendered
    assert "user " not in render(site, tmp_path)
    # Apart from the rewritten lines, the site is as checked in.
    unchanged = [
        line for line in site.splitlines() if "bridge-" not in line and "listen" not in line
    ]
    body = rendered.splitlines()
    assert all(line in body for line in unchanged)


@pytest.mark.parametrize(
    ("ports", "message"),
    [
        ({"bridge-1": 1}, r"no local port for the upstream host\(s\) \['bridge-2'\]"),
        ({**PORTS, "bridge-3": 3}, r"no upstream server line names \['bridge-3'\]"),
    ],
)
def test_a_host_without_a_port_or_a_port_without_a_host_is_an_error(
    site: str, tmp_path: Path, ports: dict[str, int], message: str
) -> None:
    """Every upstream host needs a local port and every port its host: nothing is guessed."""
    with pytest.raises(ConfigError, match=message):
        render(site, tmp_path, upstream_ports=ports)


def test_a_site_without_listen_80_is_an_error(tmp_path: Path) -> None:
    """A configuration whose server does not listen on 80 is refused, not run on port 80."""
    site = "upstream u {\n    server bridge-1:8000;\n}\nserver {\n    listen 8080;\n}\n"
    with pytest.raises(ConfigError, match="expected one `listen 80;`, found 0"):
        render(site, tmp_path, upstream_ports={"bridge-1": 1})


def test_reads_the_access_log_with_retries(tmp_path: Path) -> None:
    """Access-log lines give the replica that answered, every replica tried and the session."""
    (tmp_path / "access.log").write_text(
        "127.0.0.1:8001 200 GET /socket.io/ polling -\n"
        + "127.0.0.1:8001, 127.0.0.1:8002 101 GET /socket.io/ websocket abc\n"
        + "127.0.0.1:8002 200 GET /health - -\n",
        encoding="utf-8",
    )
    assert read_access_log(tmp_path) == [
        Request("127.0.0.1:8001", ("127.0.0.1:8001",), 200, "GET", "/socket.io/", "polling", None),
        Request(
            "127.0.0.1:8002",
            ("127.0.0.1:8001", "127.0.0.1:8002"),
            101,
            "GET",
            "/socket.io/",
            "websocket",
            "abc",
        ),
        Request("127.0.0.1:8002", ("127.0.0.1:8002",), 200, "GET", "/health", None, None),
    ]
