"""What a publish returns: the event as the broker confirmed it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PublishedEvent:
    """An event the broker confirmed.

    Attributes:
        id: The envelope id (also the AMQP `message_id`).
        routing_key: The routing key it was published with.
        envelope: The JSON-able envelope exactly as sent.
    """

    id: str
    routing_key: str
    envelope: dict[str, Any]
