"""`decode`'s one-call validation never judges a body differently from the contract's checks.

`decode` first validates envelope and data in one pydantic call on the raw bytes; whatever that
refuses or cannot judge goes through the checks one by one, in the contract's order, which say
why. So the one-call path may only accept what the step-by-step checks accept, with the same
event. These properties compare the two on valid envelopes, on envelopes whose fields hold
values of a neighbouring JSON type (where a lax validator might differ) and on mutated ones.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from bridge.core.events import Event, _accepted_at_once, _decode_step_by_step, decode
from tests.unit.test_properties_decoding import (
    ENVELOPE_FIELDS,
    PROPERTIES,
    key_of,
    mutated_envelopes,
    offsets,
    valid_envelopes,
)

NEIGHBOURS = st.sampled_from(
    [
        *(True, False, 0, 1, 1.0, 0.5, 2, -1, "1", "0.5", "true", "", "x", None, [], {}, ["1"]),
        *("2026-12-07T06:30:00Z", "2026-12-07T06:30:00", "2026-12-07", 1_796_000_000, 1.5e9),
        *("running", "stdout", "high", "a" * 65, "a" * 257, {"a": 1}),
    ]
)
"""Values a field of the wrong but nearby type may hold: numbers as text, booleans as numbers,
dates as numbers or without a zone, texts just past a length limit."""


@st.composite
def nudged_envelopes(draw: st.DrawFn, *, in_data: bool) -> tuple[dict[str, Any], str]:
    """A valid envelope with one or two fields of its `data` (or of the envelope itself) set to
    a neighbouring value, under the routing key that fitted it before."""
    envelope = draw(valid_envelopes())
    key = key_of(envelope)
    target: dict[str, Any] = envelope["data"] if in_data else envelope
    fields = sorted(target) if in_data else list(ENVELOPE_FIELDS)
    for _ in range(draw(st.integers(1, 2))):
        target[draw(st.sampled_from(fields))] = draw(NEIGHBOURS)
    return envelope, key


def assert_same_judgement(body: bytes, key: str, offset: int) -> None:
    """`decode` and the step-by-step checks give the same event or the same dead letter."""
    assert decode(body, key, offset, max_bytes=len(body)) == _decode_step_by_step(
        body, key, offset, None
    )


@PROPERTIES
@given(envelope=valid_envelopes(), offset=offsets)
def test_valid_envelopes_are_accepted_in_one_call_as_the_same_event(
    envelope: dict[str, Any], offset: int
) -> None:
    """A valid envelope is accepted by the one-call path, as the very event the checks give."""
    body = json.dumps(envelope).encode()
    key = key_of(envelope)
    if b"NaN" not in body and b"Infinity" not in body and b"\\ud" not in body:
        assert _accepted_at_once(body) is not None  # the fast path serves ordinary events
    result = decode(body, key, offset, max_bytes=len(body))
    assert isinstance(result, Event)
    assert result == _decode_step_by_step(body, key, offset, None)


@PROPERTIES
@given(
    nudged=st.booleans().flatmap(lambda in_data: nudged_envelopes(in_data=in_data)), offset=offsets
)
@example(nudged=({"schema_version": True}, "global.error"), offset=0)
def test_fields_of_a_neighbouring_type_are_judged_as_the_checks_judge_them(
    nudged: tuple[dict[str, Any], str], offset: int
) -> None:
    """Numbers as text, booleans as numbers, zoneless dates, texts past a limit, in the envelope
    or in `data`: the same event or the same dead letter."""
    envelope, key = nudged
    assert_same_judgement(json.dumps(envelope).encode(), key, offset)


@PROPERTIES
@given(mutated=mutated_envelopes(), offset=offsets)
def test_mutated_envelopes_are_judged_as_the_checks_judge_them(
    mutated: tuple[dict[str, Any], str], offset: int
) -> None:
    """Fields dropped, replaced or added under any key: the same event or the same dead letter."""
    envelope, key = mutated
    assert_same_judgement(json.dumps(envelope).encode(), key, offset)


def test_what_the_fast_parser_would_accept_but_the_contract_refuses_is_refused() -> None:
    """NaN and Infinity (which pydantic's parser takes) and a lone surrogate are invalid_json."""
    base = {
        "id": "e",
        "type": "step_completed",
        "schema_version": 1,
        "project_id": None,
        "source": "s",
        "occurred_at": "2026-12-07T06:30:00Z",
    }
    for result in ("NaN", "-Infinity", '"\\ud800"'):
        body = (
            json.dumps(base)[:-1] + f', "data": {{"workflow_id": "w", "step_id": "s", '
            f'"result": {result}}}}}'
        ).encode()
        decoded = decode(body, "global.step_completed", 0, max_bytes=len(body))
        assert not isinstance(decoded, Event), result
        assert decoded.reason == "invalid_json", (result, decoded)
