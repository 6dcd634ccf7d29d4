"""The errors the publishing SDK raises: one per way a publish can fail.

```
EventBridgeError
├── InvalidEventError (also ValueError)   the event breaks the contract; nothing was sent
└── PublishError                          the broker did not take the event
    ├── UnroutableError                   no queue is bound for its routing key
    ├── PublishTimeoutError               no confirm within the publish timeout
    ├── BrokerUnavailableError            no node of the broker can be reached (after retries)
    │   └── BrokerAuthenticationError     a node refused the login: not retried
    ├── BatchPublishError                 some events of a batch failed; says which, by id
    └── PublisherClosedError (also RuntimeError)  used outside `async with`
```

Only `BrokerUnavailableError` (but not `BrokerAuthenticationError`) is worth retrying later as
is; the others need a change first.
"""

from __future__ import annotations

from producers.published import PublishedEvent
from schemas.errors import EventBridgeError


class InvalidEventError(EventBridgeError, ValueError):
    """The event does not follow the contract (unknown type, bad envelope or data).

    Raised before anything is sent; fix the event and publish it again.
    """


class PublishError(EventBridgeError):
    """The broker did not take the event: nothing guarantees that it was stored."""


class UnroutableError(PublishError):
    """The broker returned the event because no queue is bound for its routing key.

    Attributes:
        routing_key: The routing key the event was published with.
        exchange: The exchange it was published to.
    """

    def __init__(self, message: str, *, routing_key: str, exchange: str) -> None:
        super().__init__(message)
        self.routing_key = routing_key
        self.exchange = exchange


class PublishTimeoutError(PublishError):
    """The broker did not confirm the event within the publish timeout.

    The event may or may not have been stored; publishing it again with the same id is safe for
    consumers that de-duplicate by id.
    """


class BrokerUnavailableError(PublishError):
    """The broker could not be reached, or refused the connection, after every retry."""


class BrokerAuthenticationError(BrokerUnavailableError):
    """A node refused the login (user, password or virtual host), or the protocol: every node
    of the cluster would, so it is raised at once and never retried."""


class BatchPublishError(PublishError):
    """Some events of a `publish_batch` were not confirmed; the others were.

    An event that failed may or may not have been stored (its confirm was lost with the
    connection, or never came): publishing it again with the same id is the caller's choice.

    Attributes:
        confirmed: the events the broker confirmed, in input order.
        failed: the id of each event that was not confirmed, with why.
    """

    def __init__(
        self, message: str, *, confirmed: list[PublishedEvent], failed: dict[str, PublishError]
    ) -> None:
        super().__init__(message)
        self.confirmed = confirmed
        self.failed = failed


class PublisherClosedError(PublishError, RuntimeError):
    """The publisher was used outside its `async with` block."""
