"""Connecting to one RabbitMQ cluster through a list of its nodes' URLs.

`EVENTBRIDGE_AMQP_URL` (and `EventPublisher`'s URL) may name several nodes of one cluster,
comma-separated. `Nodes` keeps that list, starting at a random node (so replicas and producers
spread over the cluster) and moving to the next one when a connection is lost. `connect_first`
tries each node once in that order: a node that does not answer is skipped, but a refused login
is the same on every node and is raised at once, never retried.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
from aio_pika import exceptions as amqp
from aio_pika.abc import AbstractConnection

from producers.errors import BrokerAuthenticationError, BrokerUnavailableError

REFUSALS = (
    amqp.AuthenticationError,
    amqp.ProbableAuthenticationError,
    amqp.IncompatibleProtocolError,
)
"""Connection errors that no retry and no other node of the cluster will change."""

UNREACHABLE = (amqp.AMQPConnectionError, ConnectionError, OSError, TimeoutError)
"""Errors that mean "this node is not reachable right now": worth trying another or later."""


def redact(url: str) -> str:
    """The URL with its password replaced by `***`, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def node_of(url: str) -> str:
    """The node a URL names, as `host:port` (no credentials)."""
    parts = urlsplit(url)
    default = 5671 if parts.scheme == "amqps" else 5672
    return f"{parts.hostname}:{parts.port or default}"


def parse_urls(text: str | Sequence[str]) -> tuple[str, ...]:
    """Split and check a comma-separated list of AMQP URLs of one cluster.

    Raises:
        ValueError: a URL is empty, not amqp:// or amqps://, has no host or a bad port, or
            the URLs name different virtual hosts (one cluster's topology lives in one).
    """
    items = [item.strip() for item in text.split(",")] if isinstance(text, str) else list(text)
    if not items or not any(items):
        raise ValueError("give at least one URL, e.g. amqp://guest:guest@127.0.0.1:5672/")
    vhosts: set[str] = set()
    for number, url in enumerate(items, start=1):
        which = f"URL {number} ({redact(url)[:120]!r})" if len(items) > 1 else repr(redact(url))
        if not url:
            raise ValueError(f"URL {number} of the list is empty (two commas in a row?)")
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps"):
            raise ValueError(f"{which} must start with amqp:// or amqps://")
        try:
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError as exc:
            raise ValueError(f"{which} has a bad port: {exc}") from None
        if not parts.hostname:
            raise ValueError(f"{which} names no host")
        vhosts.add(parts.path.lstrip("/") or "/")
    if len(vhosts) > 1:
        raise ValueError(
            f"the URLs name different virtual hosts ({', '.join(sorted(vhosts))}); list the "
            "nodes of one cluster with the same virtual host"
        )
    return tuple(items)


class Nodes:
    """The nodes of one cluster, and which to try next.

    Args:
        urls: one URL or a comma-separated list (checked with `parse_urls`).
        shuffle: start at a random node (so that several clients spread over the cluster).
    """

    def __init__(self, urls: str | Sequence[str], *, shuffle: bool = True) -> None:
        self.urls = parse_urls(urls)
        self._next = random.randrange(len(self.urls)) if shuffle else 0
        self.current: str | None = None
        """The URL of the node connected to last, if any."""

    def order(self) -> list[str]:
        """Every URL once, starting at the one to try next."""
        return [*self.urls[self._next :], *self.urls[: self._next]]

    def connected(self, url: str) -> None:
        """Note that `url` answered: it is the node in use, and the one to try first again."""
        self.current = url
        self._next = self.urls.index(url)

    def lost(self) -> None:
        """The node in use went away: try the next one first."""
        if self.current is not None:
            self._next = (self.urls.index(self.current) + 1) % len(self.urls)

    def describe(self) -> str:
        """The nodes, for messages: `host:port` each, comma-separated."""
        return ", ".join(node_of(url) for url in self.urls)


async def connect_first(
    nodes: Nodes,
    *,
    name: str,
    timeout: float,  # noqa: ASYNC109 - each node gets its own connect timeout, not the whole call
    heartbeat: int | None = None,
) -> AbstractConnection:
    """Connect to the first node that answers, in `nodes.order()`; note it as the one in use.

    Args:
        nodes: the cluster's nodes.
        name: the connection name operators see in the broker's connection list.
        timeout: seconds each node has to answer.
        heartbeat: the AMQP heartbeat to negotiate, in seconds (None: the broker's).

    Raises:
        BrokerAuthenticationError: a node refused the login (or the protocol); not retried.
        BrokerUnavailableError: no node answered; the message names each node's error.
    """
    failures: list[str] = []
    options: dict[str, Any] = {} if heartbeat is None else {"heartbeat": heartbeat}
    for url in nodes.order():
        try:
            connection: AbstractConnection = await aio_pika.connect(
                url, timeout=timeout, client_properties={"connection_name": name}, **options
            )
        except REFUSALS as exc:
            raise BrokerAuthenticationError(
                f"RabbitMQ at {node_of(url)} refused the connection ({exc}): check the user "
                "name, password and virtual host in the URL (EVENTBRIDGE_AMQP_URL); this is "
                "not retried"
            ) from exc
        except UNREACHABLE as exc:
            failures.append(f"{node_of(url)}: {str(exc) or type(exc).__name__}")
            continue
        nodes.connected(url)
        return connection
    raise BrokerUnavailableError(f"no node answered ({'; '.join(failures)})")
