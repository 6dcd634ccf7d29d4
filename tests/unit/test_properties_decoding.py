"""Properties of `decode`: whatever a producer publishes, the bridge gets an event or a reason.

Every body and routing key, however broken, must come back as an `Event` whose frames carry the
envelope unchanged plus its offset, or as a `DeadLetter` with one of the contract's six reasons
and a sentence saying why; `decode` itself must never raise (it runs in the log consumer, where
an exception stops the flow of every event behind the bad one).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bridge.core.events import DeadLetter, Event, decode
from bridge.edge.transports import frames
from schemas.codes import DeadLetterReason
from schemas.events import EVENT_MODELS, EventType, socketio_event_name
from schemas.routing import RoutingKeyError, parse_routing_key, rooms_for, routing_key

# Hypothesis keeps caches in `.hypothesis/` under the working directory even without an example
# database; in the repository root that directory makes every later pytest run fail collection
# (this project replaces `norecursedirs` and turns warnings into errors). Keep it in /tmp.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "eventbridge-hypothesis")
)

MAX_BYTES = 65_536
"""The default body limit (`max_message_bytes`)."""

CONTRACT_REASONS = {
    "invalid_json",
    "invalid_envelope",
    "unknown_type",
    "invalid_data",
    "routing_key_mismatch",
    "too_large",
}
"""The six `x-eventbridge-reason` values of the README ("Publishing events")."""

PROPERTIES = settings(max_examples=100, deadline=None, database=None)
"""Shared by every property here: no example database written into the repository, and no
per-example deadline (a 64 KiB body legitimately takes a few milliseconds)."""

# -- strategies: JSON values -----------------------------------------------------------------

SPECIAL_TEXT = st.sampled_from(
    ["", " ", ".", "*", "#", "a.b", "a*", "a#", "project", "global", "ä", "☃", "\u202e", "\x00"]
)
texts = st.one_of(
    st.text(max_size=12),
    SPECIAL_TEXT,
    # A long text cheaply: a short unit repeated (hypothesis caps what it draws directly).
    st.builds(
        lambda unit, times: unit * times, st.text(min_size=1, max_size=3), st.integers(1, 4000)
    ),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    # Python's json writes and reads NaN and ±Infinity, so a hand-rolled producer may send them.
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# What a valid event may carry in free-form fields: JSON as RFC 8259 has it (finite numbers).
finite_json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=False, allow_infinity=False),
        texts,
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
offsets = st.integers(min_value=0, max_value=2**63 - 1)

# -- strategies: valid envelopes, built from the shapes of `schemas` ---------------------------

text_field = st.text(min_size=1, max_size=24)  # `Text`: 1-256 characters
long_text = st.text(max_size=64)  # `LongText`: up to 8192
fraction = st.floats(min_value=0.0, max_value=1.0)


def data_of(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with every required field, some optional ones, and maybe unknown extra fields."""
    known = set(required) | set(optional)
    extras = st.dictionaries(
        st.text(max_size=10).filter(lambda key: key not in known), finite_json_values, max_size=2
    )
    return st.builds(
        lambda fields, more: {**more, **fields},
        st.fixed_dictionaries(required, optional=optional),
        extras,
    )


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """An optional field: the value, or an explicit null."""
    return st.none() | strategy


artifacts = data_of({"name": text_field}, {"uri": maybe(long_text), "kind": maybe(text_field)})
DATA: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    EventType.AGENT_STATUS: data_of(
        {
            "agent_id": text_field,
            "status": st.sampled_from(
                ["idle", "queued", "running", "waiting", "succeeded", "failed", "cancelled"]
            ),
        },
        {"message": maybe(long_text)},
    ),
    EventType.PROGRESS_UPDATE: data_of(
        {"agent_id": text_field, "progress": fraction},
        {"stage": maybe(text_field), "message": maybe(long_text)},
    ),
    EventType.GENERATION_COMPLETE: data_of(
        {"agent_id": text_field, "artifacts": st.lists(artifacts, max_size=3)},
        {"generation_id": maybe(text_field), "summary": maybe(long_text)},
    ),
    EventType.ERROR: data_of(
        {"code": text_field, "message": long_text, "retryable": st.booleans()},
        {"agent_id": maybe(text_field)},
    ),
    EventType.ACTIVITY_CREATED: data_of(
        {"actor": text_field, "action": text_field},
        {
            "target": maybe(text_field),
            "activity_type": maybe(text_field),
            "priority": st.sampled_from(["low", "normal", "high", "critical"]),
            "summary": maybe(long_text),
        },
    ),
    EventType.STEP_UPDATED: data_of(
        {
            "workflow_id": text_field,
            "step_id": text_field,
            "changes": st.dictionaries(st.text(max_size=8), finite_json_values, max_size=3),
        },
        {"user_id": maybe(text_field), "status": maybe(text_field)},
    ),
    EventType.STEP_COMPLETED: data_of(
        {"workflow_id": text_field, "step_id": text_field},
        {"user_id": maybe(text_field), "result": finite_json_values},
    ),
    EventType.DEPLOYMENT_STATUS: data_of(
        {"deployment_id": text_field, "status": text_field},
        {"progress": maybe(fraction), "message": maybe(long_text)},
    ),
    EventType.DEPLOYMENT_LOG: data_of(
        {
            "deployment_id": text_field,
            "stream": st.sampled_from(["stdout", "stderr"]),
            "line": st.text(max_size=200),
        },
        {},
    ),
}
"""A strategy of valid `data` for every event type of `schemas.events`."""

project_ids = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
zones = st.just(UTC) | st.builds(  # RFC 3339 offsets are whole minutes
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-23 * 60, 23 * 60)
)
moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=zones
)
ENVELOPE_FIELDS = ("id", "type", "schema_version", "project_id", "source", "occurred_at", "data")


@st.composite
def valid_envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A valid envelope of any event type, as the JSON object a producer publishes."""
    event_type = draw(st.sampled_from(sorted(str(name) for name in DATA)))
    envelope = {
        "id": draw(st.text(min_size=1, max_size=64)),
        "type": event_type,
        "schema_version": 1,
        "project_id": draw(st.none() | project_ids),
        "source": draw(st.text(min_size=1, max_size=40)),
        "occurred_at": draw(moments).isoformat(),
        "data": draw(DATA[event_type]),
    }
    extras = draw(
        st.dictionaries(
            st.text(max_size=10).filter(lambda key: key not in ENVELOPE_FIELDS),
            finite_json_values,
            max_size=2,
        )
    )
    return {**extras, **envelope}


def key_of(envelope: dict[str, Any]) -> str:
    """The routing key a well-behaved producer uses for this envelope."""
    return routing_key(envelope["type"], envelope["project_id"])


key_parts = st.one_of(
    st.sampled_from(["project", "global", "p1", "agent_status", "activity_created", "*", "#", ""]),
    st.sampled_from(sorted(EVENT_MODELS)),
    project_ids,
    st.text(max_size=8),
)
routing_keys = st.one_of(
    st.lists(key_parts, min_size=1, max_size=5).map(".".join),
    st.text(max_size=40),
    st.builds(
        lambda unit, times: unit * times, st.text(min_size=1, max_size=3), st.integers(1, 400)
    ),
)


@st.composite
def mutated_envelopes(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid envelope with one to three fields dropped, replaced or added (top level or in
    `data`), and either the routing key that fitted it before the mutation or a random one."""
    envelope = draw(valid_envelopes())
    key = key_of(envelope) if draw(st.booleans()) else draw(routing_keys)
    for _ in range(draw(st.integers(1, 3))):
        target: dict[str, Any] = envelope
        if isinstance(envelope.get("data"), dict) and draw(st.booleans()):
            target = envelope["data"]
        mutation = draw(st.sampled_from(["drop", "replace", "add"]))
        if mutation == "add" or not target:
            target[draw(st.text(max_size=10) | st.sampled_from(ENVELOPE_FIELDS))] = draw(
                json_values
            )
        elif mutation == "drop":
            del target[draw(st.sampled_from(sorted(target)))]
        else:
            target[draw(st.sampled_from(sorted(target)))] = draw(json_values)
    return envelope, key


# -- what every outcome must look like -------------------------------------------------------


def same_json(left: Any, right: Any) -> bool:
    """Equal as JSON documents (NaN equals NaN; key order does not matter)."""
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)


def check_outcome(result: Event | DeadLetter, body: bytes, key: str, offset: int) -> None:
    """An `Event` that faithfully carries the body, or a `DeadLetter` with a reason and a
    sentence."""
    if isinstance(result, DeadLetter):
        assert isinstance(result.reason, DeadLetterReason)
        assert result.reason in CONTRACT_REASONS
        assert isinstance(result.error, str)
        assert result.error.strip(), "a dead letter must say why"
        return
    assert isinstance(result, Event)
    check_event(result, json.loads(body), key, offset)


def check_event(event: Event, sent: dict[str, Any], key: str, offset: int) -> None:
    """The event's frames are the envelope plus `offset`, and its routing agrees with the key."""
    assert same_json(json.loads(event.payload), {**sent, "offset": offset})
    key_project, key_type = parse_routing_key(key)
    assert event.type == key_type == sent["type"]
    assert event.project_id == key_project == sent["project_id"]
    assert event.offset == offset
    assert event.id == sent["id"]
    assert event.rooms == rooms_for(event.type, event.project_id)
    name = json.dumps(socketio_event_name(event.type))
    assert frames.socketio_text(event) == f"2[{name},{event.payload.decode()}]"
    assert frames.websocket_text(event) == event.payload.decode()
    assert not event.replayed


def strict_json(text: str) -> Any:
    """Parse `text` as RFC 8259 JSON, the way a browser's `JSON.parse` does: no NaN or
    Infinity, and only text that can be sent as UTF-8 (no lone surrogates)."""
    text.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


# -- properties ------------------------------------------------------------------------------


@PROPERTIES
@given(body=st.binary(max_size=300), key=routing_keys, offset=offsets)
@example(body=b"", key="", offset=0)
@example(body=b"\xff\xfe{}", key="global.error", offset=1)
def test_arbitrary_bytes_decode_to_an_event_or_a_dead_letter(
    body: bytes, key: str, offset: int
) -> None:
    """Any bytes with any routing key give an Event or a DeadLetter with a reason; never raise."""
    check_outcome(decode(body, key, offset, max_bytes=MAX_BYTES), body, key, offset)


@PROPERTIES
@given(value=finite_json_values, key=routing_keys, offset=offsets)
def test_arbitrary_json_values_are_refused_as_bad_envelopes(
    value: Any, key: str, offset: int
) -> None:
    """A JSON body that is not an object is invalid_envelope; any other value is an outcome."""
    body = json.dumps(value).encode()
    result = decode(body, key, offset, max_bytes=MAX_BYTES)
    check_outcome(result, body, key, offset)
    if not isinstance(value, dict) and len(body) <= MAX_BYTES:
        assert isinstance(result, DeadLetter)
        assert result.reason is DeadLetterReason.INVALID_ENVELOPE


@PROPERTIES
@given(mutated=mutated_envelopes(), offset=offsets)
def test_mutated_envelopes_decode_faithfully_or_say_why_not(
    mutated: tuple[dict[str, Any], str], offset: int
) -> None:
    """An envelope with fields dropped, replaced or added, under any key, is carried unchanged
    (plus offset, routed as its key says) or dead-lettered with a reason; never an exception."""
    envelope, key = mutated
    body = json.dumps(envelope).encode()
    check_outcome(decode(body, key, offset, max_bytes=MAX_BYTES), body, key, offset)


@PROPERTIES
@given(envelope=valid_envelopes(), offset=offsets)
def test_valid_envelopes_always_decode_to_events(envelope: dict[str, Any], offset: int) -> None:
    """Every envelope that follows the contract, under its own routing key, is an Event."""
    key = key_of(envelope)
    body = json.dumps(envelope, ensure_ascii=False).encode()
    result = decode(body, key, offset, max_bytes=len(body))
    assert isinstance(result, Event), result
    check_event(result, envelope, key, offset)


@PROPERTIES
@given(envelope=valid_envelopes(), key=routing_keys, offset=offsets)
def test_a_key_that_disagrees_with_a_valid_envelope_is_a_routing_key_mismatch(
    envelope: dict[str, Any], key: str, offset: int
) -> None:
    """A valid envelope under any key but its own is dead-lettered as routing_key_mismatch."""
    body = json.dumps(envelope).encode()
    result = decode(body, key, offset, max_bytes=len(body))
    try:
        fits = parse_routing_key(key) == (envelope["project_id"], envelope["type"])
    except RoutingKeyError:
        fits = False
    if fits:
        assert isinstance(result, Event)
    else:
        assert isinstance(result, DeadLetter)
        assert result.reason is DeadLetterReason.ROUTING_KEY_MISMATCH


@PROPERTIES
@given(
    body=st.one_of(
        st.binary(max_size=2000),
        valid_envelopes().map(lambda envelope: json.dumps(envelope).encode()),
    ),
    max_bytes=st.integers(min_value=0, max_value=2000),
)
def test_the_size_limit_is_checked_first_and_exactly(body: bytes, max_bytes: int) -> None:
    """A body over the limit is too_large whatever it holds; one within it never is."""
    result = decode(body, "global.error", 0, max_bytes=max_bytes)
    if len(body) > max_bytes:
        assert isinstance(result, DeadLetter)
        assert result.reason is DeadLetterReason.TOO_LARGE
        assert f"{len(body)} bytes" in result.error
        assert f"{max_bytes} bytes" in result.error
    else:
        assert not (isinstance(result, DeadLetter) and result.reason is DeadLetterReason.TOO_LARGE)


def test_every_event_type_has_a_data_strategy() -> None:
    """The valid-envelope strategies cover exactly the event types the schema registers."""
    assert set(DATA) == set(EVENT_MODELS)


@PROPERTIES
@given(depth=st.integers(min_value=1, max_value=60_000), opener=st.sampled_from(["[", '{"a":']))
@example(depth=50_000, opener="[")  # "[" * 50_000: 50 kB, well within the default body limit
def test_deeply_nested_json_is_dead_lettered_not_raised(depth: int, opener: str) -> None:
    """A body nested deeper than the parser can follow is a dead letter, not an exception."""
    body = (opener * depth).encode()
    key = "global.error"
    check_outcome(decode(body, key, 0, max_bytes=1_000_000), body, key, 0)


@PROPERTIES
@given(envelope=valid_envelopes(), offset=offsets)
@example(  # smallest case: NaN (or ±Infinity) in a field the schema leaves free
    envelope={
        "id": "e",
        "type": "step_completed",
        "schema_version": 1,
        "project_id": None,
        "source": "s",
        "occurred_at": "2026-01-01T00:00:00+00:00",
        "data": {"workflow_id": "w", "step_id": "s", "result": math.nan},
    },
    offset=0,
)
@example(  # smallest case: a lone surrogate, sent as the JSON escape \ud800
    envelope={
        "id": "e",
        "type": "step_completed",
        "schema_version": 1,
        "project_id": None,
        "source": "s",
        "occurred_at": "2026-01-01T00:00:00+00:00",
        "data": {"workflow_id": "w", "step_id": "s", "result": "\ud800"},
    },
    offset=0,
)
def test_event_frames_are_json_a_browser_can_read(envelope: dict[str, Any], offset: int) -> None:
    """An accepted event's frame is RFC 8259 JSON in UTF-8: no NaN/Infinity, no lone surrogate."""
    key = key_of(envelope)
    result = decode(json.dumps(envelope).encode(), key, offset, max_bytes=MAX_BYTES)
    if isinstance(result, Event):
        strict_json(result.payload.decode())
        strict_json(frames.socketio_text(result)[1:])
