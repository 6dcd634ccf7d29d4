"""Connecting to the broker: named connections, start-up retries, and passwords kept out of logs."""

from __future__ import annotations

import logging
import socket
from urllib.parse import urlsplit, urlunsplit

import aio_pika
from aio_pika.abc import AbstractConnection
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from bridge.errors import BrokerUnavailableError

logger = logging.getLogger(__name__)

TRANSIENT = (aio_pika.exceptions.AMQPConnectionError, ConnectionError, OSError, TimeoutError)
"""Errors that mean "the broker is not reachable right now": worth retrying."""


def redact(url: str) -> str:
    """Return the URL with its password replaced by `***`, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def connection_name(role: str) -> str:
    """Name a connection so operators can tell it apart in the broker's connection list."""
    return f"eventbridge-{role}@{socket.gethostname()}"


async def connect(url: str, role: str, *, connect_timeout: float = 10.0) -> AbstractConnection:
    """Open one named connection, failing fast if the broker does not answer."""
    return await aio_pika.connect(
        url, timeout=connect_timeout, client_properties={"connection_name": connection_name(role)}
    )


async def connect_with_retry(url: str, role: str, *, within: float) -> AbstractConnection:
    """Connect, retrying with exponential backoff for up to `within` seconds.

    Raises:
        BrokerUnavailableError: the broker did not answer in time; the message says what to do.
    """
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(TRANSIENT),
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_delay(within),
        reraise=False,
        before_sleep=lambda state: logger.warning(
            "RabbitMQ at %s is not reachable yet (%s); retrying",
            redact(url),
            state.outcome.exception() if state.outcome else "unknown error",
        ),
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await connect(url, role)
    except RetryError as exc:
        cause = exc.last_attempt.exception()
        raise BrokerUnavailableError(
            f"Cannot reach RabbitMQ at {redact(url)} after {within:g} s ({cause or 'no answer'}): "
            "start the broker or point EVENTBRIDGE_AMQP_URL at a running one."
        ) from cause
    raise AssertionError("unreachable: tenacity either returns or raises")
