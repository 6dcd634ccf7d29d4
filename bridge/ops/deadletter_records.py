"""What an operator sees of one dead letter, and which dead letters an operation selects.

A dead letter is read once, from the headers the bridge's writer added (`bridge.deadletters`)
and, where it parses, its JSON body; filters match on what was read.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from bridge.broker.deadletters import (
    EPOCH_HEADER,
    ERROR_HEADER,
    OFFSET_HEADER,
    REASON_HEADER,
    ROUTING_KEY_HEADER,
)


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    """One message of the dead-letter queue, with its reason headers read out.

    Attributes:
        reason: the `x-eventbridge-reason` header, or "" if it has none.
        routing_key: the routing key it was first published with ("" if unknown).
        document: the body parsed as JSON, when `is_json`.
        projects: the project ids it concerns: from the routing key and the body's
            `project_id` (they differ for a `routing_key_mismatch`).
        timestamp: the AMQP timestamp, else the envelope's `occurred_at`, else None.
    """

    message: AbstractIncomingMessage
    reason: str
    error: str
    offset: int | None
    epoch: str | None
    routing_key: str
    is_json: bool
    document: Any
    projects: frozenset[str]
    timestamp: datetime | None

    @classmethod
    def from_message(cls, message: AbstractIncomingMessage) -> StoredDeadLetter:
        """Read the headers and, where it parses, the body of a dead-lettered message."""
        headers = message.headers or {}
        offset = headers.get(OFFSET_HEADER)
        epoch = headers.get(EPOCH_HEADER)
        routing_key = _text(headers.get(ROUTING_KEY_HEADER, ""))
        try:
            document, is_json = json.loads(message.body), True
        except (UnicodeDecodeError, ValueError):
            document, is_json = None, False
        projects = set()
        parts = routing_key.split(".")
        if len(parts) >= 3 and parts[0] == "project" and parts[1]:
            projects.add(parts[1])
        fields = document if isinstance(document, dict) else {}
        if isinstance(fields.get("project_id"), str):
            projects.add(fields["project_id"])
        return cls(
            message=message,
            reason=_text(headers.get(REASON_HEADER, "")),
            error=_text(headers.get(ERROR_HEADER, "")),
            offset=offset if isinstance(offset, int) and not isinstance(offset, bool) else None,
            epoch=_text(epoch) if epoch is not None else None,
            routing_key=routing_key,
            is_json=is_json,
            document=document,
            projects=frozenset(projects),
            timestamp=_timestamp(message.timestamp, fields.get("occurred_at")),
        )

    @property
    def body(self) -> bytes:
        """The original body, as the producer sent it."""
        return self.message.body

    @property
    def message_id(self) -> str | None:
        """The message id (the event id, or `<epoch>:<offset>` if the producer set none)."""
        return self.message.message_id


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _timestamp(amqp: datetime | None, occurred_at: object) -> datetime | None:
    if amqp is not None:
        return amqp if amqp.tzinfo else amqp.replace(tzinfo=UTC)
    if isinstance(occurred_at, str):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(occurred_at)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


@dataclass(frozen=True, slots=True)
class LetterFilter:
    """Which dead letters an operation applies to; empty filters select everything.

    Attributes:
        reasons: keep those with one of these reasons.
        project: keep those concerning this project (see `StoredDeadLetter.projects`).
        limit: act on at most this many matching messages.
    """

    reasons: frozenset[str] = frozenset()
    project: str | None = None
    limit: int | None = None

    @property
    def filtered(self) -> bool:
        """Whether any filter (reason or project) narrows the selection."""
        return bool(self.reasons) or self.project is not None

    def matches(self, letter: StoredDeadLetter) -> bool:
        """Tell whether the filters keep this dead letter (the limit aside)."""
        if self.reasons and letter.reason not in self.reasons:
            return False
        return self.project is None or self.project in letter.projects
