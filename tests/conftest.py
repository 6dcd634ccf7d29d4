"""Shared fixtures: the real broker, a unique topology prefix per test.

The broker is the one at `EVENTBRIDGE_AMQP_URL`, else the local 127.0.0.1:5672; where none
answers and a Docker engine is present, testcontainers starts RabbitMQ. Where neither, the run
stops with one sentence saying so: tests that need a broker are never skipped silently.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import aio_pika
import pytest

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


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """The URL of a real RabbitMQ for this test session."""
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
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        names = (f"{name}.log", f"{name}.dead-letters", f"{name}.epoch", f"{name}.checkpoint")
        for queue in names:
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.queue_delete(queue)
            if not channel.is_closed:
                await channel.close()
        channel = await connection.channel()
        with contextlib.suppress(aio_pika.exceptions.AMQPError):
            await channel.exchange_delete(f"{name}.events")


@pytest.fixture
async def amqp_connection(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    """A plain aio-pika connection for the test's own publishing and consuming."""
    connection = await aio_pika.connect_robust(
        amqp_url, client_properties={"connection_name": "eventbridge-tests"}
    )
    async with connection:
        yield connection
