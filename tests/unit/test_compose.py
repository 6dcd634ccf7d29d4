"""Static checks of the Docker Compose deployment: compose file, Dockerfile, nginx configuration.

No Docker engine runs where these tests run, so they parse the files and check the wiring instead
of starting anything.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bridge.edge.auth import Authenticator, check_exposure
from bridge.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
DOCKERFILE = COMPOSE_DIR / "Dockerfile"
NGINX_CONF = COMPOSE_DIR / "nginx.conf"
DOCKERIGNORE = REPO / ".dockerignore"

RABBITMQ_CONF = COMPOSE_DIR / "rabbitmq.conf"

RABBITMQ_NODES = ("rabbitmq-1", "rabbitmq-2", "rabbitmq-3")
REPLICAS = ("bridge-1", "bridge-2")
SERVICES = (*RABBITMQ_NODES, *REPLICAS, "demo-producer", "nginx")
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


def _rabbitmq_conf() -> dict[str, str]:
    """compose/rabbitmq.conf (`key = value` lines) as a mapping."""
    entries: dict[str, str] = {}
    for raw in RABBITMQ_CONF.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            key, equals, value = line.partition("=")
            assert equals, f"not `key = value`: {raw!r}"
            entries[key.strip()] = value.strip()
    return entries


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


def _upstreams(nginx: list[Directive]) -> dict[str, list[Directive]]:
    """Upstream blocks by name → their directives."""
    return {
        directive.args[0]: directive.block
        for directive in _walk(nginx)
        if directive.name == "upstream" and directive.block is not None
    }


def _upstream_of(nginx: list[Directive], path: str) -> str:
    """The upstream a location proxies to (`proxy_pass http://<upstream>`)."""
    passes = _values(_location(nginx, path), "proxy_pass")
    assert len(passes) == 1, f"location {path} needs one proxy_pass"
    target = passes[0][0]
    assert target.startswith("http://"), target
    return target.removeprefix("http://").rstrip("/")


def _stickiness(upstream: list[Directive]) -> list[str] | None:
    """The directive that binds a client to one server (hash, ip_hash, sticky), if any."""
    for directive in upstream:
        if directive.name in ("hash", "ip_hash", "sticky"):
            return [directive.name, *directive.args]
    return None


def _longest_prefix(nginx: list[Directive], uri: str) -> str:
    matches = [path for path in _locations(nginx) if uri.startswith(path)]
    assert matches, f"no location matches {uri}"
    return max(matches, key=len)


# --- compose: services and ports -----------------------------------------------------------------


def test_compose_defines_the_cluster_the_replicas_the_producer_and_nginx(
    compose: dict[str, Any],
) -> None:
    """The compose file defines three RabbitMQ nodes, two bridge replicas, the demo producer and
    nginx, and no single `rabbitmq` or `bridge` service any more."""
    for name in SERVICES:
        _service(compose, name)
    assert not {"rabbitmq", "bridge"} & set(compose["services"])


@pytest.mark.parametrize("name", RABBITMQ_NODES)
def test_rabbitmq_nodes_run_the_313_management_image(compose: dict[str, Any], name: str) -> None:
    """Every RabbitMQ node runs the 3.13 management image."""
    assert str(_service(compose, name).get("image", "")).startswith("rabbitmq:3.13-management")


def test_rabbitmq_publishes_amqp_and_management_ports(compose: dict[str, Any]) -> None:
    """Node 1 publishes AMQP 5672 and the management UI 15672; the others publish AMQP on other
    host ports, so that no two services claim one host port."""
    assert {(5672, 5672), (15672, 15672)} <= _port_mappings(_service(compose, "rabbitmq-1"))
    for name in RABBITMQ_NODES[1:]:
        assert {target for _, target in _port_mappings(_service(compose, name))} == {5672}
    published = [
        host
        for service in compose["services"].values()
        for host, _ in _port_mappings(service)
        if host is not None
    ]
    assert len(published) == len(set(published)), f"a host port is published twice: {published}"


@pytest.mark.parametrize("name", RABBITMQ_NODES)
def test_rabbitmq_keeps_its_data_in_a_named_volume(compose: dict[str, Any], name: str) -> None:
    """Each RabbitMQ node's /var/lib/rabbitmq is a declared named volume of its own, under a
    fixed hostname equal to its service name (its node name is rabbit@<hostname>)."""
    rabbitmq = _service(compose, name)
    sources = [
        str(volume).split(":", 1)[0]
        for volume in rabbitmq.get("volumes") or []
        if str(volume).split(":")[1:2] == ["/var/lib/rabbitmq"]
    ]
    assert len(sources) == 1, "mount exactly one volume at /var/lib/rabbitmq"
    assert not sources[0].startswith((".", "/")), "use a named volume, not a bind mount"
    assert sources[0] in (compose.get("volumes") or {}), "declare the volume under `volumes:`"
    assert rabbitmq.get("hostname") == name, "the node name, and so its data, needs a hostname"
    others = [
        volume
        for other in RABBITMQ_NODES
        if other != name
        for volume in _service(compose, other).get("volumes") or []
    ]
    assert not any(str(volume).startswith(f"{sources[0]}:") for volume in others), "shared volume"


def test_rabbitmq_nodes_share_one_erlang_cookie(compose: dict[str, Any]) -> None:
    """The three nodes have the same, non-empty RABBITMQ_ERLANG_COOKIE: else they cannot cluster."""
    cookies = {
        _environment(_service(compose, name)).get("RABBITMQ_ERLANG_COOKIE")
        for name in RABBITMQ_NODES
    }
    assert len(cookies) == 1
    (cookie,) = cookies
    assert cookie, "no RABBITMQ_ERLANG_COOKIE"


@pytest.mark.parametrize("name", RABBITMQ_NODES)
def test_rabbitmq_nodes_mount_the_cluster_config(compose: dict[str, Any], name: str) -> None:
    """Every node mounts compose/rabbitmq.conf read-only as its rabbitmq.conf."""
    volumes = _service(compose, name).get("volumes") or []
    assert "./rabbitmq.conf:/etc/rabbitmq/rabbitmq.conf:ro" in volumes
    assert RABBITMQ_CONF.is_file()


def test_rabbitmq_config_forms_a_cluster_of_the_three_nodes(compose: dict[str, Any]) -> None:
    """rabbitmq.conf discovers peers from a classic config list naming exactly rabbit@<hostname>
    of every RabbitMQ service, and pauses a minority partition."""
    config = _rabbitmq_conf()
    assert config.get("cluster_formation.peer_discovery_backend") in (
        "classic_config",
        "rabbit_peer_discovery_classic_config",
    )
    listed = {
        value
        for key, value in config.items()
        if key.startswith("cluster_formation.classic_config.nodes.")
    }
    hostnames = {_service(compose, name).get("hostname") for name in RABBITMQ_NODES}
    assert listed == {f"rabbit@{hostname}" for hostname in hostnames}
    assert config.get("cluster_partition_handling") == "pause_minority"


@pytest.mark.parametrize("name", REPLICAS)
def test_bridge_exposes_port_8000(compose: dict[str, Any], name: str) -> None:
    """Each bridge replica exposes (or publishes) container port 8000."""
    assert 8000 in _container_ports(_service(compose, name))


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
        *((node, "rabbitmq-diagnostics -q ping") for node in RABBITMQ_NODES),
        *((replica, "http://127.0.0.1:8000/ready") for replica in REPLICAS),
        ("nginx", "http://127.0.0.1/health"),
    ],
)
def test_serving_services_have_a_healthcheck(
    compose: dict[str, Any], name: str, probe: str
) -> None:
    """Every RabbitMQ node, bridge replica and nginx has a health check probing the right thing."""
    service = _service(compose, name)
    assert probe in _healthcheck_test(service)
    check = service["healthcheck"]
    for key in ("interval", "timeout", "retries", "start_period"):
        assert key in check, f"{name}'s healthcheck has no {key}"


@pytest.mark.parametrize("name", REPLICAS)
def test_bridge_healthcheck_needs_no_curl(compose: dict[str, Any], name: str) -> None:
    """A replica's health check uses Python's urllib, since the image has no curl."""
    test = _healthcheck_test(_service(compose, name))
    assert test.startswith("python -c")
    assert "urllib.request.urlopen" in test


def test_demo_producer_disables_the_inherited_healthcheck(compose: dict[str, Any]) -> None:
    """The demo producer runs no HTTP server, so the image's /ready health check is disabled."""
    assert (_service(compose, "demo-producer").get("healthcheck") or {}).get("disable") is True


@pytest.mark.parametrize("name", REPLICAS)
def test_bridge_waits_for_a_healthy_cluster(compose: dict[str, Any], name: str) -> None:
    """Each replica starts only once every RabbitMQ node is healthy."""
    depends = _depends_on(_service(compose, name))
    assert {node: depends.get(node) for node in RABBITMQ_NODES} == dict.fromkeys(
        RABBITMQ_NODES, "service_healthy"
    )


@pytest.mark.parametrize("name", ["demo-producer", "nginx"])
def test_dependents_wait_for_healthy_replicas(compose: dict[str, Any], name: str) -> None:
    """The demo producer and nginx start only once both replicas are healthy (nginx resolves its
    upstream names once, at start)."""
    depends = _depends_on(_service(compose, name))
    assert {replica: depends.get(replica) for replica in REPLICAS} == dict.fromkeys(
        REPLICAS, "service_healthy"
    )


@pytest.mark.parametrize("name", [*REPLICAS, "demo-producer"])
def test_broker_urls_name_every_rabbitmq_node(compose: dict[str, Any], name: str) -> None:
    """Each replica's and the demo producer's EVENTBRIDGE_AMQP_URL is the comma-separated list
    of every RabbitMQ node, by service name, on port 5672, each once."""
    urls = [
        urlsplit(url.strip())
        for url in _environment(_service(compose, name)).get("EVENTBRIDGE_AMQP_URL", "").split(",")
    ]
    assert all(url.scheme == "amqp" for url in urls)
    assert all((url.port or 5672) == 5672 for url in urls)
    hosts = [url.hostname for url in urls]
    assert sorted(hosts, key=str) == sorted(RABBITMQ_NODES)


@pytest.mark.parametrize("name", REPLICAS)
def test_bridge_listens_on_all_interfaces_port_8000(compose: dict[str, Any], name: str) -> None:
    """Each replica binds 0.0.0.0:8000 so nginx and the health check can reach it."""
    environment = _environment(_service(compose, name))
    assert environment.get("EVENTBRIDGE_HOST") == "0.0.0.0"
    assert environment.get("EVENTBRIDGE_PORT") == "8000"


def _replica_settings(
    compose: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The settings `eventbridge serve` builds from a replica's environment (and nothing else)."""
    with monkeypatch.context() as patch:
        for variable in [key for key in os.environ if key.startswith("EVENTBRIDGE_")]:
            patch.delenv(variable)
        for variable, value in _environment(_service(compose, name)).items():
            patch.setenv(variable, value)
        return Settings()


@pytest.mark.parametrize("name", REPLICAS)
def test_bridge_settings_pass_the_start_up_checks(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Each replica's environment is one `eventbridge serve` accepts: bound to 0.0.0.0 it must
    say explicitly how clients authenticate (here: anonymous, on a trusted network)."""
    settings = _replica_settings(compose, name, monkeypatch)
    check_exposure(settings)
    Authenticator(settings)
    assert (settings.auth, settings.insecure) == ("anonymous", True)


def test_exactly_one_replica_writes_dead_letters(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One replica writes the dead-letter queue, the other says explicitly that it does not:
    each invalid message is dead-lettered once."""
    writers = [
        name
        for name in REPLICAS
        if _replica_settings(compose, name, monkeypatch).dead_letter_writer
    ]
    assert len(writers) == 1, writers
    for name in REPLICAS:
        environment = _environment(_service(compose, name))
        assert environment.get("EVENTBRIDGE_DEAD_LETTER_WRITER") in ("true", "false"), name


@pytest.mark.parametrize(
    ("name", "command"),
    [
        *((replica, ["eventbridge", "serve"]) for replica in REPLICAS),
        ("demo-producer", ["eventbridge", "demo", "--no-serve", "--rate", "5"]),
    ],
)
def test_python_services_build_the_repo_image(
    compose: dict[str, Any], name: str, command: list[str]
) -> None:
    """The replicas and the demo producer build compose/Dockerfile from the repo root into one
    image and run a command."""
    service = _service(compose, name)
    build = service.get("build")
    assert isinstance(build, dict), f"{name} must be built"
    assert (COMPOSE_DIR / build["context"]).resolve() == REPO
    assert (REPO / build["dockerfile"]).resolve() == DOCKERFILE
    assert service.get("image") == _service(compose, REPLICAS[0]).get("image")
    assert _command(service) == command


@pytest.mark.parametrize("name", REPLICAS)
def test_bridge_restarts_and_stops_gracefully(compose: dict[str, Any], name: str) -> None:
    """Each replica restarts unless stopped and gets 10 s to shut down after SIGTERM."""
    bridge = _service(compose, name)
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
    """/socket.io/ and /ws proxy to an upstream with HTTP/1.1 and pass Upgrade and Connection
    from the map."""
    block = _location(nginx, path)
    assert _upstream_of(nginx, path) in _upstreams(nginx)
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
    """`location /` proxies to an upstream of the replicas without asking for an upgrade."""
    assert _upstream_of(nginx, "/") in _upstreams(nginx)
    assert "upgrade" not in _headers(_location(nginx, "/"))


def test_nginx_upstreams_are_the_two_replicas(
    nginx: list[Directive], compose: dict[str, Any]
) -> None:
    """Every upstream lists both replicas, by compose service name and exposed port, and the
    server listens on port 80 (what the compose file publishes as 8080)."""
    upstreams = _upstreams(nginx)
    assert upstreams, "no upstream block"
    for name, block in upstreams.items():
        servers = [args[0] for args in _values(block, "server")]
        hosts = sorted(server.partition(":")[0] for server in servers)
        assert hosts == sorted(REPLICAS), f"upstream {name} lists {servers}"
        for server in servers:
            host, _, port = server.partition(":")
            assert host in compose["services"], f"{host} is no compose service"
            assert int(port) in _container_ports(_service(compose, host))
    listens = [
        args[0]
        for d in nginx
        if d.name == "server" and d.block
        for args in _values(d.block, "listen")
    ]
    assert listens == ["80"]


def test_nginx_socketio_is_sticky_and_the_websocket_is_not(nginx: list[Directive]) -> None:
    """/socket.io/ goes to an upstream that keeps a client on one replica (a hash of its
    address); /ws and / go to a different upstream without stickiness."""
    upstreams = _upstreams(nginx)
    sticky = _upstream_of(nginx, "/socket.io/")
    assert _stickiness(upstreams[sticky]) in (
        ["hash", "$remote_addr", "consistent"],
        ["hash", "$remote_addr"],
        ["ip_hash"],
    )
    for path in ("/ws", "/"):
        balanced = _upstream_of(nginx, path)
        assert balanced != sticky
        assert _stickiness(upstreams[balanced]) is None, f"{path} must not be sticky"


def test_nginx_balancing_method_comes_before_keepalive(nginx: list[Directive]) -> None:
    """In each upstream, hash/ip_hash/least_conn precede `keepalive` (nginx requires it)."""
    methods = ("hash", "ip_hash", "least_conn", "random")
    for name, block in _upstreams(nginx).items():
        names = [directive.name for directive in block]
        if "keepalive" in names:
            assert all(
                names.index(method) < names.index("keepalive")
                for method in methods
                if method in names
            ), name


def test_nginx_takes_a_failed_replica_out_passively(nginx: list[Directive]) -> None:
    """Every upstream server has max_fails and fail_timeout (nginx OSS has no active checks)."""
    for name, block in _upstreams(nginx).items():
        for args in _values(block, "server"):
            parameters = dict(arg.split("=", 1) for arg in args[1:] if "=" in arg)
            assert int(parameters.get("max_fails", "0")) >= 1, f"{name}: {args}"
            assert parameters.get("fail_timeout"), f"{name}: {args}"


@pytest.mark.parametrize("path", [*WEBSOCKET_LOCATIONS, "/"])
def test_nginx_retries_another_replica_but_never_a_sent_post(
    nginx: list[Directive], path: str
) -> None:
    """Each location moves on to the other replica on a connection error or timeout, and never
    enables `non_idempotent` (a POST that reached a replica is not sent twice)."""
    (retry,) = _values(_location(nginx, path), "proxy_next_upstream")
    assert {"error", "timeout"} <= set(retry)
    assert "non_idempotent" not in retry
    assert "off" not in retry
