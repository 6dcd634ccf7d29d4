"""The eventbridge publishing SDK: publish contract-valid events with confirms.

```python
async with EventPublisher(amqp_url, prefix="eventbridge", source="iac-generator") as events:
    await events.progress_update("proj-123", agent_id="agent-1", progress=0.75)
```
"""

from __future__ import annotations

from producers.encoding import HeaderValue
from producers.errors import (
    BatchPublishError,
    BrokerAuthenticationError,
    BrokerUnavailableError,
    InvalidEventError,
    PublisherClosedError,
    PublishError,
    PublishTimeoutError,
    UnroutableError,
)
from producers.published import PublishedEvent
from producers.publisher import EventPublisher

__all__ = [
    "BatchPublishError",
    "BrokerAuthenticationError",
    "BrokerUnavailableError",
    "EventPublisher",
    "HeaderValue",
    "InvalidEventError",
    "PublishError",
    "PublishTimeoutError",
    "PublishedEvent",
    "PublisherClosedError",
    "UnroutableError",
]
