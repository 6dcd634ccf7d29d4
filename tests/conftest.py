"""Shared fixtures: the real broker, a unique topology prefix per test, a private cluster.

The broker is the one at `EVENTBRIDGE_AMQP_URL`, else the local 127.0.0.1:5672; where none
answers and a Docker engine is present, testcontainers starts RabbitMQ. Where neither, the run
stops with one sentence saying so: tests that need a broker are never skipped silently.

Tests marked `cluster` get a private 3-node cluster (`private_cluster`, see tests/cluster.py):
the one `scripts/cluster.sh start` left running, else one started for the session.

Under pytest-xdist (`scripts/dev.sh test`) each worker is a process with a session of its own,
so session fixtures run once per worker. The workers share the broker: every test has its own
topology prefix, so they never meet in it. Only where no broker answers does each worker start
a container of its own; `scripts/dev.sh test` makes sure one answers before it starts pytest.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import aio_pika
import pytest
import pytest_asyncio

from tests.cluster import ClusterError, PrivateCluster
from tests.helpers import delete_prefix

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 2):
            return True
    except OSError:
        return False


def _docker_present() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception:  # noqa: BLE001 - any failure here means "no usable Docker engine"
        return False
    return True


@pytest.fixture(autouse=True)
def _grouped(request: pytest.FixtureRequest) -> None:
    """Under `--dist loadgroup`, fail a test marked xdist_group that pytest-xdist did not group.

    pytest-xdist groups tests by a suffix it adds to their node ids, which pytest 9.2 silently
    keeps it from adding (pytest-dev/pytest-xdist#1386): such tests would be spread over the
    workers as if they had no group, two browsers at once, say.
    """
    node = request.node
    if not getattr(request.config.option, "loadgroup", False):  # set in xdist's workers only
        return
    if node.get_closest_marker("xdist_group") is None:
        return
    if node.nodeid.rfind("@") <= node.nodeid.rfind("]"):  # how pytest-xdist finds a group
        pytest.fail(
            "pytest-xdist did not put this test in its xdist_group: this pytest and "
            "pytest-xdist do not work together (see the pytest version range in pyproject.toml)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """The URL of a real RabbitMQ for this test session (this worker's, under pytest-xdist)."""
    url = os.environ.get("EVENTBRIDGE_AMQP_URL", DEFAULT_URL)
    if _answers(url):
        yield url
        return
    if _docker_present():
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13-management") as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(5672)
            yield f"amqp://guest:guest@{host}:{port}/"
        return
    pytest.exit(
        f"No RabbitMQ answers at {url} and no Docker engine is available: start one with "
        "`rabbitmq-server -detached` or set EVENTBRIDGE_AMQP_URL.",
        returncode=3,
    )


@pytest.fixture
async def prefix(amqp_url: str) -> AsyncIterator[str]:
    """A topology prefix unique to this test; its broker objects are deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    await delete_prefix(amqp_url, name)


@pytest.fixture
async def amqp_connection(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    """A plain aio-pika connection for the test's own publishing and consuming."""
    connection = await aio_pika.connect_robust(
        amqp_url, client_properties={"connection_name": "eventbridge-tests"}
    )
    async with connection:
        yield connection


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def private_cluster() -> AsyncIterator[PrivateCluster]:
    """A private 3-node RabbitMQ cluster for the tests marked `cluster`.

    A cluster already running in `EVENTBRIDGE_CLUSTER_DIR` (default /tmp/eventbridge-cluster) is
    reused and left running; otherwise one is started (about 15 s) and stopped at the end.
    """
    cluster = PrivateCluster.from_environment()
    if await cluster.is_running():
        yield cluster
        return
    try:
        await cluster.start()
    except ClusterError as exc:
        # Three RabbitMQ containers sharing a cookie would do where Docker runs; that is not
        # built, so say how to get a cluster instead of skipping the tests.
        pytest.exit(
            f"No private RabbitMQ cluster for the tests marked `cluster`: {exc} Fix that, or "
            "deselect them with -m 'not cluster'.",
            returncode=3,
        )
    try:
        yield cluster
    finally:
        await cluster.stop()
