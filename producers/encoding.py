"""Turn an event into the AMQP message that carries it: build, validate and encode the envelope.

Pure functions, no I/O: everything here runs before the broker is contacted, so a contract
violation is raised as `InvalidEventError` and nothing is sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aio_pika
from pydantic import BaseModel, ValidationError

from producers.errors import InvalidEventError
from producers.published import PublishedEvent
from producers.tracing import current_traceparent
from schemas import EVENT_MODELS, Envelope, format_timestamp, new_event_id, utc_now
from schemas import routing_key as build_routing_key

HeaderValue = str | int | bool


def _describe(errors: ValidationError) -> str:
    """List a validation error's problems as `field.path: message; ...`."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}"
        for error in errors.errors()
    )


def _dump_data(model: BaseModel) -> dict[str, Any]:
    """Dump validated data as JSON: None-valued optional fields are left out, extras kept."""
    data = model.model_dump(mode="json", exclude_none=True)
    if not model.model_extra:
        return data
    extras = model.model_dump(mode="json", include=set(model.model_extra))
    return {**data, **extras}


def build_envelope(
    event_type: str,
    data: Mapping[str, Any] | BaseModel,
    *,
    project_id: str | None,
    source: str,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    traceparent: str | None = None,
) -> Envelope:
    """Wrap a payload in a v1 envelope, with a new id and the current time unless given, and
    the active OpenTelemetry span's trace context unless given (`producers.tracing`).

    Only the envelope is validated here; `encode` validates `data` against its event type.

    Raises:
        InvalidEventError: the envelope breaks the contract (e.g. a bad project id or naive time).
    """
    fields = data.model_dump() if isinstance(data, BaseModel) else dict(data)
    try:
        return Envelope(
            id=new_event_id() if event_id is None else event_id,
            type=event_type,
            schema_version=1,
            project_id=project_id,
            source=source,
            occurred_at=utc_now() if occurred_at is None else occurred_at,
            data=fields,
            traceparent=current_traceparent() if traceparent is None else traceparent,
        )
    except ValidationError as exc:
        raise InvalidEventError(f"invalid event envelope: {_describe(exc)}") from None


def encode(
    envelope: Envelope,
    headers: Mapping[str, HeaderValue] | None,
    *,
    max_body_bytes: int | None,
) -> tuple[PublishedEvent, aio_pika.Message]:
    """Validate an envelope's data against its type and build the persistent AMQP message.

    Args:
        envelope: The envelope to send; its id, source and time are kept.
        headers: Extra AMQP headers, or None.
        max_body_bytes: Refuse bodies larger than this; None disables the check.

    Returns:
        The event as it will be reported once confirmed, and the message to publish.

    Raises:
        InvalidEventError: unknown type, data that breaks the type's schema, or a body too large.
    """
    model = EVENT_MODELS.get(envelope.type)
    if model is None:
        raise InvalidEventError(
            f"unknown event type {envelope.type!r}: use one of {', '.join(EVENT_MODELS)}"
        )
    try:
        data = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise InvalidEventError(
            f"invalid data for the {envelope.type} event: {_describe(exc)}; fix these fields"
        ) from None
    key = build_routing_key(envelope.type, envelope.project_id)
    body_dict = envelope.model_dump(mode="json", exclude={"data"})
    if body_dict.get("traceparent") is None:
        body_dict.pop("traceparent", None)  # optional: absent rather than null
    body_dict["occurred_at"] = format_timestamp(envelope.occurred_at)
    body_dict["data"] = _dump_data(data)
    try:
        body = json.dumps(
            body_dict, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidEventError(
            f"{envelope.type} event {envelope.id} cannot be sent as JSON: {exc}; use finite "
            "numbers and valid Unicode text"
        ) from None
    if max_body_bytes is not None and len(body) > max_body_bytes:
        raise InvalidEventError(
            f"{envelope.type} event {envelope.id} is {len(body)} bytes, over the "
            f"{max_body_bytes}-byte limit: send large content by reference (e.g. a URI)"
        )
    message = aio_pika.Message(
        body,
        headers=dict(headers) if headers else None,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=envelope.id,
        type=envelope.type,
        timestamp=envelope.occurred_at,
    )
    return PublishedEvent(envelope.id, key, body_dict), message
