"""Turn an event into the AMQP message that carries it: build, validate and encode the envelope.

Pure functions, no I/O: everything here runs before the broker is contacted, so a contract
violation is raised as `InvalidEventError` and nothing is sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from aiormq import spec
from pydantic import BaseModel, ValidationError

from producers.errors import InvalidEventError
from producers.published import PublishedEvent
from producers.tracing import current_traceparent
from schemas import EVENT_MODELS, Envelope, format_timestamp, new_event_id, utc_now
from schemas import routing_key as build_routing_key

HeaderValue = str | int | bool

PERSISTENT = 2
"""AMQP delivery mode 2: the broker stores the message on disk."""


class Outgoing(NamedTuple):
    """One event ready to publish: what is reported once confirmed, and its AMQP message."""

    event: PublishedEvent
    body: bytes
    properties: spec.Basic.Properties


def _describe(errors: ValidationError) -> str:
    """List a validation error's problems as `field.path: message; ...`."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}"
        for error in errors.errors()
    )


def _dump_data(model: BaseModel) -> dict[str, Any]:
    """Dump validated data as JSON: None-valued optional fields are left out, extras kept."""
    data = model.model_dump(mode="json", exclude_none=True)
    for name, value in (model.model_extra or {}).items():
        if value is None:  # an extra given as None is kept, as null
            data[name] = None
    return data


def _body(envelope: Envelope, data: BaseModel) -> dict[str, Any]:
    """The envelope as the JSON object sent: the time in the contract's form, no null
    `traceparent`, extra top-level fields kept, and `data` dumped from its validated model.

    Built field by field rather than with `model_dump`, which costs more on every event;
    `tests/unit/test_encoding.py` checks that the two agree for every envelope field.
    """
    body: dict[str, Any] = {
        "id": envelope.id,
        "type": envelope.type,
        "schema_version": envelope.schema_version,
        "project_id": envelope.project_id,
        "source": envelope.source,
        "occurred_at": format_timestamp(envelope.occurred_at),
    }
    if envelope.traceparent is not None:  # optional: absent rather than null
        body["traceparent"] = envelope.traceparent
    if envelope.model_extra:
        body.update(envelope.model_dump(mode="json", include=set(envelope.model_extra)))
    body["data"] = _dump_data(data)
    return body


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
) -> Outgoing:
    """Validate an envelope's data against its type and build the persistent AMQP message.

    The message is a body and aiormq's properties, what `basic_publish` takes, rather than an
    `aio_pika.Message`: building one of those costs several times more than the properties, on
    every event.

    Args:
        envelope: The envelope to send; its id, source and time are kept.
        headers: Extra AMQP headers, or None.
        max_body_bytes: Refuse bodies larger than this; None disables the check.

    Returns:
        The event as it will be reported once confirmed, and the message to publish: persistent,
        JSON, with the contract's `message_id`, `type` and `timestamp` properties.

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
    body_dict = _body(envelope, data)
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
    properties = spec.Basic.Properties(
        content_type="application/json",
        headers=dict(headers) if headers else None,
        delivery_mode=PERSISTENT,
        message_id=envelope.id,
        message_type=envelope.type,
        timestamp=envelope.occurred_at,
    )
    return Outgoing(PublishedEvent(envelope.id, key, body_dict), body, properties)
