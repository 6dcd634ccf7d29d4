"""The envelope every event travels in, and the time-ordered event id."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from schemas.routing import PROJECT_ID_PATTERN

TRACEPARENT_PATTERN = r"^([0-9a-e][0-9a-f]|f[0-9a-e])-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
"""A W3C Trace Context `traceparent`: version (not ff), trace id, parent span id, flags."""

EventId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
TraceParent = Annotated[str, StringConstraints(pattern=TRACEPARENT_PATTERN)]
ProjectId = Annotated[str, StringConstraints(pattern=PROJECT_ID_PATTERN)]


class Envelope(BaseModel):
    """The JSON object every event is published as (README, "Publishing events").

    Unknown top-level fields are kept, so newer producers can add optional fields without
    breaking older bridges.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    id: EventId = Field(description="Unique per event, 1-64 characters.")
    type: str = Field(
        min_length=1, max_length=64, description="The event type, e.g. progress_update."
    )
    schema_version: Literal[1] = Field(description="Version of the envelope and data schema.")
    project_id: ProjectId | None = Field(
        description="The project the event belongs to; null for a global event."
    )
    source: str = Field(min_length=1, max_length=128, description="The producer's name.")
    occurred_at: AwareDatetime = Field(description="When the event happened (RFC 3339, with zone).")
    data: dict[str, Any] = Field(description="The type-specific payload.")
    traceparent: TraceParent | None = Field(
        None,
        description="Optional W3C trace context (`00-<trace id>-<span id>-<flags>`) of the "
        "operation that published the event; delivered with the event unchanged.",
    )


def new_event_id(now: float | None = None) -> str:
    """Return a new time-ordered event id (UUID version 7 layout, RFC 9562).

    Ids generated later sort after ids generated earlier (to the millisecond), which keeps
    logs and dead-letter listings readable.
    """
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = rand >> 68 & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    value = (millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """Format an aware datetime as the contract's RFC 3339 text with milliseconds and `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
