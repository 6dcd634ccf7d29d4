"""Connecting to the broker: named connections to the first node of the cluster that answers,
start-up retries, and passwords kept out of logs.

The node list and the order nodes are tried in are the SDK's (`producers.connection.Nodes`):
each process starts at a random node of `EVENTBRIDGE_AMQP_URL`, so replicas spread over the
cluster, and moves on to the next node when its connection is lost. A refused login is the same
on every node: it is raised at once, never retried.
"""

from __future__ import annotations

import logging
import socket

from aio_pika.abc import AbstractConnection
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from producers.connection import UNREACHABLE, Nodes, connect_first, node_of, redact
from producers.errors import BrokerAuthenticationError, BrokerUnavailableError

__all__ = [
    "TRANSIENT",
    "BrokerAuthenticationError",
    "BrokerUnavailableError",
    "Nodes",
    "connect",
    "connect_with_retry",
    "connection_name",
    "heartbeat_for",
    "node_of",
    "open_connection",
    "redact",
    "redact_list",
    "unreachable",
]

logger = logging.getLogger(__name__)

TRANSIENT = UNREACHABLE
"""Errors that mean "the broker is not reachable right now": worth retrying."""


def unreachable(where: str | Nodes, error: object) -> str:
    """The one sentence for "the broker cannot be used": where (passwords redacted), what
    happened and what to do next."""
    text = str(error) or type(error).__name__
    nodes = redact_list(",".join(where.urls) if isinstance(where, Nodes) else where)
    if isinstance(error, BrokerAuthenticationError) or "ACCESS_REFUSED" in text:
        advice = "check the user name and password in EVENTBRIDGE_AMQP_URL"
    else:
        advice = "start the broker or point EVENTBRIDGE_AMQP_URL at a running one"
    return f"cannot reach RabbitMQ at {nodes} ({text}): {advice}."


def redact_list(urls: str) -> str:
    """A URL or comma-separated URL list for a message: each URL with its password redacted."""
    return ", ".join(redact(url.strip()) for url in urls.split(","))


def connection_name(role: str) -> str:
    """Name a connection so operators can tell it apart in the broker's connection list."""
    return f"eventbridge-{role}@{socket.gethostname()}"


def heartbeat_for(timeout: float) -> int:
    """The AMQP heartbeat that makes a silent connection count as dead after about `timeout`
    seconds (aiormq gives up after three heartbeats plus three seconds without a frame)."""
    return max(1, int(timeout // 3) - 1)


async def connect(
    nodes: Nodes,
    role: str,
    *,
    connect_timeout: float = 10.0,
    heartbeat: int | None = None,
) -> AbstractConnection:
    """Open one named connection to the first node that answers (each node tried once).

    Raises:
        BrokerAuthenticationError: a node refused the login; not worth retrying.
        BrokerUnavailableError: no node answered.
    """
    connection = await connect_first(
        nodes, name=connection_name(role), timeout=connect_timeout, heartbeat=heartbeat
    )
    if len(nodes.urls) > 1:
        logger.info("connected to RabbitMQ node %s", node_of(nodes.current or ""))
    return connection


async def open_connection(
    urls: str, role: str, *, connect_timeout: float = 10.0
) -> AbstractConnection:
    """Connect an operator command to the first node of `urls` that answers, once.

    Raises:
        BrokerAuthenticationError: a node refused the login.
        BrokerUnavailableError: no node answered; the message is the one `unreachable` wording.
    """
    nodes = Nodes(urls, shuffle=False)
    try:
        return await connect(nodes, role, connect_timeout=connect_timeout)
    except BrokerAuthenticationError:
        raise
    except BrokerUnavailableError as exc:
        raise BrokerUnavailableError(unreachable(nodes, exc)) from exc


async def connect_with_retry(
    nodes: Nodes, role: str, *, within: float, heartbeat: int | None = None
) -> AbstractConnection:
    """Connect, trying every node in turn with exponential backoff for up to `within` seconds.

    Raises:
        BrokerAuthenticationError: a node refused the login (at once, not retried).
        BrokerUnavailableError: no node answered in time; the message says what to do.
    """

    def log_retry(state: RetryCallState) -> None:
        # One line per attempt, whatever the number of nodes.
        logger.warning(
            "RabbitMQ is not reachable yet (%s); retrying",
            state.outcome.exception() if state.outcome else "no answer",
        )

    retrying = AsyncRetrying(
        retry=retry_if_exception(
            lambda exc: (
                isinstance(exc, BrokerUnavailableError)
                and not isinstance(exc, BrokerAuthenticationError)
            )
        ),
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_delay(within),
        reraise=False,
        before_sleep=log_retry,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await connect(nodes, role, heartbeat=heartbeat)
    except RetryError as exc:
        cause = exc.last_attempt.exception()
        raise BrokerUnavailableError(
            unreachable(nodes, f"no answer within {within:g} s: {cause or 'no answer'}")
        ) from cause
    raise AssertionError("unreachable: tenacity either returns or raises")
