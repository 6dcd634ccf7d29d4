"""The SDK's encoding: the body it builds field by field is the envelope pydantic would dump."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from producers.encoding import PERSISTENT, encode
from schemas import EVENT_MODELS, Envelope, format_timestamp
from tests.unit.test_properties_decoding import valid_envelopes

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def reference_body(envelope: Envelope) -> dict[str, Any]:
    """The body as pydantic dumps the envelope and its validated data (extras kept, None-valued
    optional data fields and a null traceparent left out)."""
    body = envelope.model_dump(mode="json", exclude={"data"})
    if body.get("traceparent") is None:
        body.pop("traceparent", None)
    body["occurred_at"] = format_timestamp(envelope.occurred_at)
    data = EVENT_MODELS[envelope.type].model_validate(envelope.data)
    dumped = data.model_dump(mode="json", exclude_none=True)
    body["data"] = {**dumped, **data.model_dump(mode="json", include=set(data.model_extra or {}))}
    return body


@given(valid_envelopes(), st.sampled_from([None, TRACEPARENT]))
def test_the_body_sent_is_the_envelope_as_pydantic_dumps_it(
    fields: dict[str, Any], traceparent: str | None
) -> None:
    """Every envelope field, extra top-level fields and extra data fields reach the body."""
    envelope = Envelope.model_validate({**fields, "traceparent": traceparent})
    outgoing = encode(envelope, None, max_body_bytes=None)
    assert json.loads(outgoing.body) == reference_body(envelope) == outgoing.event.envelope


def test_the_message_carries_the_contract_properties() -> None:
    """The message is persistent JSON with the envelope's id, type and time as properties."""
    envelope = Envelope.model_validate(
        {
            "id": "e-1",
            "type": "agent_status",
            "schema_version": 1,
            "project_id": "p1",
            "source": "test",
            "occurred_at": "2026-12-07T10:00:00.123+02:00",
            "data": {"agent_id": "a1", "status": "idle"},
        }
    )
    properties = encode(envelope, {"x-attempt": 2}, max_body_bytes=None).properties
    assert properties.delivery_mode == PERSISTENT
    assert properties.content_type == "application/json"
    assert properties.message_id == "e-1"
    assert properties.message_type == "agent_status"
    assert properties.timestamp == envelope.occurred_at
    assert properties.headers == {"x-attempt": 2}
