"""Trace context on events: the SDK takes it from the active OpenTelemetry span, and works the
same without OpenTelemetry; the contract accepts only a well-formed `traceparent`."""

from __future__ import annotations

import json
import sys

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from bridge.core.events import DeadLetter, Event, decode, traceparent_of
from producers import tracing
from producers.encoding import build_envelope, encode
from schemas.codes import DeadLetterReason

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def progress_body(**extra: object) -> bytes:
    """An encoded progress update of project p1."""
    envelope = build_envelope(
        "progress_update", {"agent_id": "a", "progress": 0.5}, project_id="p1", source="t"
    )
    body = json.loads(encode(envelope, None, max_body_bytes=None).body)
    body.update(extra)
    return json.dumps(body).encode()


def test_the_sdk_sets_traceparent_from_the_active_span() -> None:
    """An event built inside an active span carries that span's trace context."""
    context = SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_flags=TraceFlags(1))
    with trace.use_span(NonRecordingSpan(context)):
        body = json.loads(progress_body())
    assert body["traceparent"] == TRACEPARENT


def test_outside_a_span_events_carry_no_traceparent() -> None:
    """Outside any span the envelope has no `traceparent` member at all (not null)."""
    assert "traceparent" not in json.loads(progress_body())


def test_without_opentelemetry_the_sdk_publishes_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With opentelemetry-api not installed, building and encoding an event works and it
    carries no `traceparent`."""
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)  # makes the import fail
    monkeypatch.setattr(tracing, "_looked", False)
    monkeypatch.setattr(tracing, "_trace", None)
    assert tracing.current_traceparent() is None
    assert "traceparent" not in json.loads(progress_body())


def test_the_bridge_delivers_a_valid_traceparent_unchanged() -> None:
    """A valid `traceparent` passes validation and stays in the payload clients receive."""
    decoded = decode(progress_body(traceparent=TRACEPARENT), "project.p1.progress_update", 7,
                     max_bytes=65_536)  # fmt: skip
    assert isinstance(decoded, Event)
    assert json.loads(decoded.payload)["traceparent"] == TRACEPARENT
    assert traceparent_of(decoded.payload) == TRACEPARENT


@pytest.mark.parametrize(
    "bad", ["", "00-xyz", TRACEPARENT.upper(), "ff" + TRACEPARENT[2:], 12, TRACEPARENT + "-00"]
)
def test_a_malformed_traceparent_is_dead_lettered(bad: object) -> None:
    """A `traceparent` that is not W3C trace context makes the envelope invalid."""
    decoded = decode(progress_body(traceparent=bad), "project.p1.progress_update", 7,
                     max_bytes=65_536)  # fmt: skip
    assert isinstance(decoded, DeadLetter)
    assert decoded.reason is DeadLetterReason.INVALID_ENVELOPE
