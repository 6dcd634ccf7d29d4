"""The errors the publishing SDK raises: one per way a publish can fail.

```
EventBridgeError
├── InvalidEventError (also ValueError)   the event breaks the contract; nothing was sent
└── PublishError                          the broker did not take the event
    ├── UnroutableError                   no queue is bound for its routing key
    ├── PublishTimeoutError               no confirm within the publish timeout
    ├── BrokerUnavailableError            the broker cannot be reached (after retries)
    └── PublisherClosedError (also RuntimeError)  used outside `async with`
```

Only `BrokerUnavailableError` is worth retrying later as is; the others need a change first.
"""

from __future__ import annotations

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


class PublisherClosedError(PublishError, RuntimeError):
    """The publisher was used outside its `async with` block."""
