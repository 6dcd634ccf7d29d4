"""One message of the log as the log reader hands it out: aiormq's delivery, read lazily.

aio-pika wraps every delivery in an `IncomingMessage` (fourteen checked attribute writes) and
runs the consumer callback in a task of its own, on top of the task aiormq already runs per
delivery. For the log reader, which only queues the delivery for its own task, that wrapping
was about a fifth of the bridge's CPU per record on a drain (see
tests/performance/README.md, "Taking records in"). The reader therefore consumes on the aiormq
channel under its aio-pika channel (public `get_underlay_channel()`, aiormq's abstract
interface) and hands out this thin view instead, which reads what it is asked for and nothing
else.
"""

from __future__ import annotations

from typing import Any

from aiormq import spec
from aiormq.abc import DeliveredMessage


class LogMessage:
    """A delivered log record: its body, headers, routing key, delivery tag and properties."""

    __slots__ = ("_delivered",)

    def __init__(self, delivered: DeliveredMessage) -> None:
        self._delivered = delivered

    @property
    def body(self) -> bytes:
        """The message body."""
        return self._delivered.body

    @property
    def headers(self) -> dict[str, Any] | None:
        """The message's headers table."""
        return self._delivered.header.properties.headers

    @property
    def routing_key(self) -> str | None:
        """The routing key it was published with."""
        return self._delivered.routing_key

    @property
    def delivery_tag(self) -> int | None:
        """The channel's tag for this delivery (what an acknowledgement names)."""
        return self._delivered.delivery_tag

    @property
    def properties(self) -> spec.Basic.Properties:
        """Its AMQP properties (`content_type`, `message_id`, `timestamp`, `message_type`,
        `app_id`, ...), as aiormq decoded them."""
        return self._delivered.header.properties
