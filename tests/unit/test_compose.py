"""Static checks of the Docker Compose deployment: compose file, Dockerfile, nginx configuration.

No Docker engine runs where these tests run, so they parse the files and check the wiring instead
of starting anything.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bridge.auth import Authenticator, check_exposure
from bridge.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
DOCKERFILE = COMPOSE_DIR / "Dockerfile"
NGINX_CONF = COMPOSE_DIR / "nginx.conf"
DOCKERIGNORE = REPO / ".dockerignore"

SERVICES = ("rabbitmq", "bridge", "demo-producer", "nginx")
WEBSOCKET_LOCATIONS = ("/socket.io/", "/ws")


# --- compose helpers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file, parsed."""
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict), "the compose file must be a mapping"
    return document


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    services = compose.get("services") or {}
    assert name in services, f"service {name!r} is missing from {COMPOSE_FILE.name}"
    service = services[name]
    assert isinstance(service, dict), f"service {name!r} must be a mapping"
    return service


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment`, whether written as a mapping or as a list of `KEY=value`."""
    raw = service.get("environment") or {}
    if isinstance(raw, dict):
        return {str(key): "" if value is None else str(value) for key, value in raw.items()}
    pairs = (str(item).split("=", 1) for item in raw)
    return {pair[0]: pair[1] if len(pair) == 2 else "" for pair in pairs}


def _command(service: dict[str, Any]) -> list[str]:
    raw = service.get("command") or []
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


def _port_mappings(service: dict[str, Any]) -> set[tuple[int | None, int]]:
    """(published host port or None, container port) for each entry of `ports`."""
    mappings: set[tuple[int | None, int]] = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            published = entry.get("published")
            mappings.add((int(published) if published else None, int(entry["target"])))
            continue
        spec = str(entry).split("/", 1)[0]
        parts = spec.rsplit(":", 2)  # [ip:]published:target or target
        target = int(parts[-1])
        mappings.add((int(parts[-2]) if len(parts) >= 2 and parts[-2] else None, target))
    return mappings


def _container_ports(service: dict[str, Any]) -> set[int]:
    """Every container port a service exposes to the network or publishes to the host."""
    exposed = {int(str(port).split("/", 1)[0]) for port in service.get("expose") or []}
    return exposed | {target for _, target in _port_mappings(service)}


def _healthcheck_test(service: dict[str, Any]) -> str:
    """The health-check command of a service as one string; fails if it has none."""
    check = service.get("healthcheck")
    assert isinstance(check, dict), "no healthcheck"
    assert not check.get("disable"), "healthcheck is disabled"
    test = check.get("test")
    if isinstance(test, list):
        assert test, "test is empty"
        assert test[0] in ("CMD", "CMD-SHELL"), "test must start with CMD or CMD-SHELL"
        assert len(test) > 1, "test has no command"
        return " ".join(str(part) for part in test[1:])
    assert isinstance(test, str), "test must be a list or a string"
    assert test.strip(), "test has no command"
    return test


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Dependency name → start condition (`service_started` for the short list syntax)."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {str(name): "service_started" for name in raw}
    return {
        str(name): str((spec or {}).get("condition", "service_started"))
        for name, spec in raw.items()
    }


# --- Dockerfile helpers --------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def _arguments(instruction: str) -> list[str]:
    return [arguments for keyword, arguments in _dockerfile() if keyword == instruction]


def _exec_or_shell(arguments: str) -> list[str]:
    """The argv of a CMD/ENTRYPOINT/HEALTHCHECK CMD in exec (JSON) or shell form."""
    if arguments.startswith("["):
        parsed = json.loads(arguments)
        assert isinstance(parsed, list)
        return [str(part) for part in parsed]
    return shlex.split(arguments)


def _env_values(arguments: str) -> dict[str, str]:
    """The variables an ENV instruction sets (`ENV K=V K2=V2` or the legacy `ENV K V`)."""
    words = shlex.split(arguments)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


# --- nginx helpers -------------------------------------------------------------------------------


@dataclass
class Directive:
    """One nginx directive; `block` holds the children of a block directive (`name args { }`)."""

    name: str
    args: list[str]
    block: list[Directive] | None = None


_TOKEN = re.compile(r"""#[^\n]*|'([^']*)'|"([^"]*)"|([{};])|([^\s{};'"#][^\s{};'"]*)""")


def _parse_nginx(text: str) -> list[Directive]:
    """A small brace-aware parser of nginx configuration: enough for blocks and directives."""
    root: list[Directive] = []
    stack: list[list[Directive]] = [root]
    words: list[str] = []
    for match in _TOKEN.finditer(text):
        single, double, punctuation, word = match.groups()
        if single is None and double is None and punctuation is None and word is None:
            continue  # a comment
        if punctuation == ";":
            assert words, "empty directive"
            stack[-1].append(Directive(words[0], words[1:]))
            words = []
        elif punctuation == "{":
            assert words, "block without a name"
            children: list[Directive] = []
            stack[-1].append(Directive(words[0], words[1:], children))
            stack.append(children)
            words = []
        elif punctuation == "}":
            assert not words, f"directive {words} lacks its ';'"
            assert len(stack) > 1, "unbalanced '}'"
            stack.pop()
        else:
            words.append(next(part for part in (single, double, word) if part is not None))
    assert not words, f"directive {words} lacks its ';'"
    assert len(stack) == 1, "unclosed '{'"
    return root


@pytest.fixture(scope="module")
def nginx() -> list[Directive]:
    """The nginx configuration, parsed into directives."""
    return _parse_nginx(NGINX_CONF.read_text(encoding="utf-8"))


def _walk(directives: list[Directive]) -> list[Directive]:
    found: list[Directive] = []
    for directive in directives:
        found.append(directive)
        if directive.block is not None:
            found.extend(_walk(directive.block))
    return found


def _locations(nginx: list[Directive]) -> dict[str, list[Directive]]:
    """Prefix locations (no modifier, or `^~`) by path → their directives."""
    locations: dict[str, list[Directive]] = {}
    for directive in _walk(nginx):
        if directive.name != "location" or directive.block is None:
            continue
        if len(directive.args) == 1 or directive.args[0] == "^~":
            locations[directive.args[-1]] = directive.block
    return locations


def _location(nginx: list[Directive], path: str) -> list[Directive]:
    locations = _locations(nginx)
    assert path in locations, f"nginx.conf has no `location {path}`"
    return locations[path]


def _values(block: list[Directive], name: str) -> list[list[str]]:
    return [directive.args for directive in block if directive.name == name]


def _headers(block: list[Directive]) -> dict[str, str]:
    return {args[0].lower(): " ".join(args[1:]) for args in _values(block, "proxy_set_header")}


def _longest_prefix(nginx: list[Directive], uri: str) -> str:
    matches = [path for path in _locations(nginx) if uri.startswith(path)]
    assert matches, f"no location matches {uri}"
    return max(matches, key=len)


# --- compose: services and ports -----------------------------------------------------------------


def test_compose_defines_the_four_services(compose: dict[str, Any]) -> None:
    """The compose file defines rabbitmq, bridge, demo-producer and nginx."""
    for name in SERVICES:
        _service(compose, name)


def test_rabbitmq_publishes_amqp_and_management_ports(compose: dict[str, Any]) -> None:
    """RabbitMQ runs the 3.13 management image and publishes AMQP 5672 and management 15672."""
    rabbitmq = _service(compose, "rabbitmq")
    assert str(rabbitmq.get("image", "")).startswith("rabbitmq:3.13-management")
    mappings = _port_mappings(rabbitmq)
    assert (5672, 5672) in mappings
    assert (15672, 15672) in mappings


def test_rabbitmq_keeps_its_data_in_a_named_volume(compose: dict[str, Any]) -> None:
    """RabbitMQ's /var/lib/rabbitmq is a declared named volume under a fixed node hostname."""
    rabbitmq = _service(compose, "rabbitmq")
    sources = [
        str(volume).split(":", 1)[0]
        for volume in rabbitmq.get("volumes") or []
        if str(volume).split(":")[1:2] == ["/var/lib/rabbitmq"]
    ]
    assert len(sources) == 1, "mount exactly one volume at /var/lib/rabbitmq"
    assert not sources[0].startswith((".", "/")), "use a named volume, not a bind mount"
    assert sources[0] in (compose.get("volumes") or {}), "declare the volume under `volumes:`"
    assert rabbitmq.get("hostname"), "the node name, and so the data directory, needs a hostname"


def test_bridge_exposes_port_8000(compose: dict[str, Any]) -> None:
    """The bridge exposes (or publishes) container port 8000."""
    assert 8000 in _container_ports(_service(compose, "bridge"))


def test_nginx_publishes_8080_and_mounts_the_config(compose: dict[str, Any]) -> None:
    """nginx publishes host 8080 to container 80 and mounts nginx.conf read-only as the default."""
    nginx = _service(compose, "nginx")
    assert str(nginx.get("image", "")).startswith("nginx:1.27")
    assert (8080, 80) in _port_mappings(nginx)
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in (nginx.get("volumes") or [])
    assert (COMPOSE_DIR / "nginx.conf").is_file()


# --- compose: health, order, wiring --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "probe"),
    [
        ("rabbitmq", "rabbitmq-diagnostics -q ping"),
        ("bridge", "http://127.0.0.1:8000/ready"),
        ("nginx", "http://127.0.0.1/health"),
    ],
)
def test_serving_services_have_a_healthcheck(
    compose: dict[str, Any], name: str, probe: str
) -> None:
    """rabbitmq, bridge and nginx each have a health-check command probing the right thing."""
    service = _service(compose, name)
    assert probe in _healthcheck_test(service)
    check = service["healthcheck"]
    for key in ("interval", "timeout", "retries", "start_period"):
        assert key in check, f"{name}'s healthcheck has no {key}"


def test_bridge_healthcheck_needs_no_curl(compose: dict[str, Any]) -> None:
    """The bridge's health check uses Python's urllib, since the image has no curl."""
    test = _healthcheck_test(_service(compose, "bridge"))
    assert test.startswith("python -c")
    assert "urllib.request.urlopen" in test


def test_demo_producer_disables_the_inherited_healthcheck(compose: dict[str, Any]) -> None:
    """The demo producer runs no HTTP server, so the image's /ready health check is disabled."""
    assert (_service(compose, "demo-producer").get("healthcheck") or {}).get("disable") is True


def test_bridge_waits_for_a_healthy_rabbitmq(compose: dict[str, Any]) -> None:
    """The bridge starts only once rabbitmq is healthy."""
    assert _depends_on(_service(compose, "bridge")).get("rabbitmq") == "service_healthy"


@pytest.mark.parametrize("name", ["demo-producer", "nginx"])
def test_dependents_wait_for_a_healthy_bridge(compose: dict[str, Any], name: str) -> None:
    """The demo producer and nginx start only once the bridge is healthy."""
    assert _depends_on(_service(compose, name)).get("bridge") == "service_healthy"


@pytest.mark.parametrize("name", ["bridge", "demo-producer"])
def test_broker_url_points_at_the_rabbitmq_service(compose: dict[str, Any], name: str) -> None:
    """The bridge and the demo producer reach the broker by the rabbitmq service's name."""
    url = urlsplit(_environment(_service(compose, name)).get("EVENTBRIDGE_AMQP_URL", ""))
    assert url.scheme == "amqp"
    assert url.hostname == "rabbitmq"
    assert url.hostname in compose["services"]
    assert (url.port or 5672) == 5672


def test_bridge_listens_on_all_interfaces_port_8000(compose: dict[str, Any]) -> None:
    """The bridge binds 0.0.0.0:8000 so nginx and the health check can reach it."""
    environment = _environment(_service(compose, "bridge"))
    assert environment.get("EVENTBRIDGE_HOST") == "0.0.0.0"
    assert environment.get("EVENTBRIDGE_PORT") == "8000"


def test_bridge_settings_pass_the_start_up_checks(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bridge's environment is one `eventbridge serve` accepts: bound to 0.0.0.0 it must
    say explicitly how clients authenticate (here: anonymous, on a trusted network)."""
    environment = _environment(_service(compose, "bridge"))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    check_exposure(settings)
    Authenticator(settings)
    assert (settings.auth, settings.insecure) == ("anonymous", True)


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("bridge", ["eventbridge", "serve"]),
        ("demo-producer", ["eventbridge", "demo", "--no-serve", "--rate", "5"]),
    ],
)
def test_python_services_build_the_repo_image(
    compose: dict[str, Any], name: str, command: list[str]
) -> None:
    """bridge and demo-producer build compose/Dockerfile from the repo root and run a command."""
    service = _service(compose, name)
    build = service.get("build")
    assert isinstance(build, dict), f"{name} must be built"
    assert (COMPOSE_DIR / build["context"]).resolve() == REPO
    assert (REPO / build["dockerfile"]).resolve() == DOCKERFILE
    assert service.get("image") == _service(compose, "bridge").get("image")
    assert _command(service) == command


def test_bridge_restarts_and_stops_gracefully(compose: dict[str, Any]) -> None:
    """The bridge restarts unless stopped and gets 10 s to shut down after SIGTERM."""
    bridge = _service(compose, "bridge")
    assert bridge.get("restart") == "unless-stopped"
    assert bridge.get("stop_grace_period") == "10s"


# --- Dockerfile ----------------------------------------------------------------------------------


def test_dockerfile_builds_on_python_311_slim() -> None:
    """The image is based on python:3.11-slim."""
    assert _arguments("FROM"), "no FROM"
    assert _arguments("FROM")[-1].split()[0] == "python:3.11-slim"


def test_dockerfile_runs_as_a_non_root_user() -> None:
    """The image's final USER is neither root nor uid 0."""
    users = _arguments("USER")
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":", 1)[0]
    assert user not in ("root", "0")


def test_dockerfile_exposes_8000_and_binds_all_interfaces() -> None:
    """The image exposes 8000 and sets EVENTBRIDGE_HOST=0.0.0.0."""
    exposed = {
        port.split("/", 1)[0] for arguments in _arguments("EXPOSE") for port in arguments.split()
    }
    assert "8000" in exposed
    environment: dict[str, str] = {}
    for arguments in _arguments("ENV"):
        environment.update(_env_values(arguments))
    assert environment.get("EVENTBRIDGE_HOST") == "0.0.0.0"


def test_dockerfile_healthcheck_probes_ready() -> None:
    """The image's HEALTHCHECK runs a Python probe of /ready."""
    checks = _arguments("HEALTHCHECK")
    assert checks, "no HEALTHCHECK"
    options, _, command = checks[-1].partition("CMD ")
    assert command, "HEALTHCHECK has no CMD"
    argv = _exec_or_shell(command.strip())
    assert argv[0] == "python"
    assert "/ready" in " ".join(argv)
    assert "--interval=" in options


def test_dockerfile_stops_with_sigterm_and_serves_by_default() -> None:
    """STOPSIGNAL is SIGTERM and the default CMD is `eventbridge serve`."""
    assert _arguments("STOPSIGNAL") == ["SIGTERM"]
    commands = _arguments("CMD")
    assert commands, "no CMD"
    assert _exec_or_shell(commands[-1]) == ["eventbridge", "serve"]


def test_dockerfile_copies_what_pip_install_needs() -> None:
    """The image copies pyproject.toml, its readme and every package, then pip-installs them."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [
        pattern.rstrip("*")
        for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    copied: set[str] = set()
    for arguments in _arguments("COPY"):
        sources = [word for word in shlex.split(arguments) if not word.startswith("--")][:-1]
        copied.update(source.rstrip("/") for source in sources)
    for needed in ["pyproject.toml", project["project"]["readme"], *packages]:
        assert needed in copied, f"the Dockerfile does not COPY {needed}"
    assert any(
        re.search(r"pip install\b.*--no-cache-dir.*\s\.(\s|$)", run) for run in _arguments("RUN")
    ), "no `pip install --no-cache-dir .`"


def test_dockerignore_excludes_local_state_but_not_the_sources() -> None:
    """.dockerignore keeps .venv, .git, caches and tests out but lets the build inputs in."""
    patterns = [
        line.strip().lstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(
            fnmatch.fnmatch(path, pattern.removeprefix("**/")) or path.startswith(f"{pattern}/")
            for pattern in patterns
            if not pattern.startswith("!")
        )

    for path in (".venv", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache", "tests"):
        assert ignored(path), f"{path} is sent to the Docker build"
    assert ignored("test-artifacts")
    for path in ("pyproject.toml", "README.md", "schemas", "producers", "bridge"):
        assert not ignored(path), f"{path} is excluded but the Dockerfile copies it"


# --- nginx ---------------------------------------------------------------------------------------


def test_nginx_maps_upgrade_to_connection_header(nginx: list[Directive]) -> None:
    """The map derives $connection_upgrade: `upgrade` by default, `close` without Upgrade."""
    maps = [
        directive
        for directive in nginx
        if directive.name == "map" and directive.args == ["$http_upgrade", "$connection_upgrade"]
    ]
    assert len(maps) == 1, "no `map $http_upgrade $connection_upgrade { ... }` block"
    block = maps[0].block
    assert block is not None
    entries = {directive.name: directive.args for directive in block}
    assert entries.get("default") == ["upgrade"]
    assert entries.get("") == ["close"]


@pytest.mark.parametrize("path", WEBSOCKET_LOCATIONS)
def test_nginx_websocket_locations_forward_the_upgrade(nginx: list[Directive], path: str) -> None:
    """/socket.io/ and /ws proxy with HTTP/1.1 and pass Upgrade and Connection from the map."""
    block = _location(nginx, path)
    assert _values(block, "proxy_pass") == [["http://eventbridge"]]
    assert _values(block, "proxy_http_version") == [["1.1"]]
    headers = _headers(block)
    assert headers.get("upgrade") == "$http_upgrade"
    assert headers.get("connection") == "$connection_upgrade"


@pytest.mark.parametrize("path", WEBSOCKET_LOCATIONS)
def test_nginx_websocket_locations_keep_long_lived_streams(
    nginx: list[Directive], path: str
) -> None:
    """/socket.io/ and /ws do not buffer and allow an hour between frames."""
    block = _location(nginx, path)
    assert _values(block, "proxy_buffering") == [["off"]]
    assert _values(block, "proxy_read_timeout") == [["3600s"]]


@pytest.mark.parametrize("path", [*WEBSOCKET_LOCATIONS, "/"])
def test_nginx_locations_forward_client_identity(nginx: list[Directive], path: str) -> None:
    """Every proxied location passes Host, X-Forwarded-For and X-Forwarded-Proto."""
    headers = _headers(_location(nginx, path))
    assert headers.get("host") == "$host"
    assert headers.get("x-forwarded-for") == "$proxy_add_x_forwarded_for"
    assert headers.get("x-forwarded-proto") == "$scheme"


@pytest.mark.parametrize(
    ("uri", "location"),
    [
        ("/ws", "/ws"),
        ("/ws/ai", "/ws"),
        ("/ws/ai/proj-123", "/ws"),
        ("/socket.io/?EIO=4&transport=websocket", "/socket.io/"),
        ("/health", "/"),
        ("/ready", "/"),
    ],
)
def test_nginx_routes_contract_paths(nginx: list[Directive], uri: str, location: str) -> None:
    """Each contract path lands in the location meant for it (longest prefix wins)."""
    assert _longest_prefix(nginx, uri) == location


def test_nginx_root_location_proxies_plain_http(nginx: list[Directive]) -> None:
    """`location /` proxies to the bridge without asking for a WebSocket upgrade."""
    block = _location(nginx, "/")
    assert _values(block, "proxy_pass") == [["http://eventbridge"]]
    assert "upgrade" not in _headers(block)


def test_nginx_upstream_is_the_bridge_service(
    nginx: list[Directive], compose: dict[str, Any]
) -> None:
    """The `eventbridge` upstream is the bridge service's port 8000, served on port 80."""
    upstreams = [d for d in nginx if d.name == "upstream" and d.args == ["eventbridge"]]
    assert len(upstreams) == 1, "no `upstream eventbridge { ... }` block"
    block = upstreams[0].block
    assert block is not None
    servers = [args[0] for args in _values(block, "server")]
    assert servers, "the upstream has no server"
    for server in servers:
        host, _, port = server.partition(":")
        assert host == "bridge"
        assert int(port) in _container_ports(_service(compose, host))
    listens = [
        args[0]
        for d in nginx
        if d.name == "server" and d.block
        for args in _values(d.block, "listen")
    ]
    assert "80" in listens
