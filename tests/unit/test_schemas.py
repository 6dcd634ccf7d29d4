"""Unit tests of the wire contract in `schemas/`: envelope, event data, routing keys, rooms, ids."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import (
    ACTIVITY_FEED,
    EVENT_MODELS,
    Envelope,
    EventType,
    RoutingKeyError,
    exchange_name,
    format_timestamp,
    is_valid_project_id,
    new_event_id,
    parse_routing_key,
    project_room,
    rooms_for,
    routing_key,
    socketio_event_name,
)
from schemas.errors import EventBridgeError
from schemas.export import SCHEMA_DIR, rendered_schemas

MOMENT = datetime(2026, 11, 26, 12, 0, 0, 123000, tzinfo=UTC)

BAD_PROJECT_IDS = ["", "a.b", "a*", "a#", "a b", "proj/1", "ä", "x" * 65, "project:1"]

VALID_DATA: dict[str, dict[str, Any]] = {
    "agent_status": {"agent_id": "agent-1", "status": "running", "message": "working"},
    "progress_update": {"agent_id": "agent-1", "progress": 0.75, "stage": "plan"},
    "generation_complete": {
        "agent_id": "agent-1",
        "generation_id": "g-1",
        "artifacts": [{"name": "main.tf", "uri": "s3://b/main.tf", "kind": "terraform"}],
        "summary": "done",
    },
    "error": {"agent_id": "agent-1", "code": "quota", "message": "over quota", "retryable": True},
    "activity_created": {"actor": "alice", "action": "commented", "priority": "high"},
    "step_updated": {"workflow_id": "w-1", "step_id": "s-1", "changes": {}},
    "step_completed": {"workflow_id": "w-1", "step_id": "s-1", "result": {"ok": True}},
    "deployment_status": {"deployment_id": "d-1", "status": "rolling", "progress": 1.0},
    "deployment_log": {"deployment_id": "d-1", "stream": "stderr", "line": "warning: x"},
}

INVALID_DATA: list[tuple[str, dict[str, Any]]] = [
    ("agent_status", {"agent_id": "agent-1"}),
    ("agent_status", {"agent_id": "agent-1", "status": "done"}),
    ("agent_status", {"agent_id": "", "status": "idle"}),
    ("progress_update", {"agent_id": "agent-1", "progress": 1.5}),
    ("progress_update", {"agent_id": "agent-1", "progress": -0.1}),
    ("progress_update", {"agent_id": "agent-1", "progress": float("nan")}),
    ("generation_complete", {"agent_id": "agent-1"}),
    ("generation_complete", {"agent_id": "agent-1", "artifacts": [{"uri": "s3://x"}]}),
    ("generation_complete", {"agent_id": "agent-1", "artifacts": "main.tf"}),
    ("error", {"code": "quota", "message": "over quota"}),
    ("error", {"code": "quota", "message": "over quota", "retryable": [1]}),
    ("activity_created", {"actor": "alice"}),
    ("activity_created", {"actor": "alice", "action": "x", "priority": "urgent"}),
    ("step_updated", {"workflow_id": "w-1", "step_id": "s-1"}),
    ("step_updated", {"workflow_id": "w-1", "step_id": "s-1", "changes": [1, 2]}),
    ("step_completed", {"workflow_id": "w-1"}),
    ("deployment_status", {"deployment_id": "d-1", "status": "up", "progress": 2}),
    ("deployment_status", {"status": "up"}),
    ("deployment_log", {"deployment_id": "d-1", "stream": "stdin", "line": "x"}),
    ("deployment_log", {"deployment_id": "d-1", "stream": "stdout", "line": "x" * 16385}),
]


def envelope_fields(**overrides: Any) -> dict[str, Any]:
    """A valid envelope as a dict, with some fields replaced."""
    fields: dict[str, Any] = {
        "id": "0193f0c2-0000-7000-8000-000000000000",
        "type": "progress_update",
        "schema_version": 1,
        "project_id": "proj-123",
        "source": "iac-generator",
        "occurred_at": "2026-11-26T12:00:00.123Z",
        "data": {"agent_id": "agent-1", "progress": 0.75},
    }
    return {**fields, **overrides}


def test_valid_envelope_parses() -> None:
    """The contract's example envelope validates, with an aware UTC occurred_at."""
    envelope = Envelope.model_validate(envelope_fields())
    assert envelope.project_id == "proj-123"
    assert envelope.occurred_at == MOMENT
    assert envelope.data == {"agent_id": "agent-1", "progress": 0.75}


def test_global_envelope_has_null_project() -> None:
    """An envelope with project_id null is a valid global event."""
    assert Envelope.model_validate(envelope_fields(project_id=None)).project_id is None


@pytest.mark.parametrize("project_id", BAD_PROJECT_IDS)
def test_envelope_rejects_bad_project_id(project_id: str) -> None:
    """A project id outside 1-64 characters of [A-Za-z0-9_-] makes the envelope invalid."""
    with pytest.raises(ValidationError, match="project_id"):
        Envelope.model_validate(envelope_fields(project_id=project_id))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", ""),
        ("id", "x" * 65),
        ("schema_version", 2),
        ("source", ""),
        ("type", ""),
        ("occurred_at", "2026-11-26T12:00:00"),
        ("occurred_at", "yesterday"),
        ("data", ["not", "an", "object"]),
    ],
)
def test_envelope_rejects_bad_field(field: str, value: object) -> None:
    """Each envelope field is checked: id length, version 1, non-empty names, zoned time, object."""
    with pytest.raises(ValidationError, match=field):
        Envelope.model_validate(envelope_fields(**{field: value}))


@pytest.mark.parametrize("field", ["id", "type", "schema_version", "project_id", "source", "data"])
def test_envelope_requires_every_field(field: str) -> None:
    """Every envelope field is required, project_id included (null, not absent, for global)."""
    fields = envelope_fields()
    del fields[field]
    with pytest.raises(ValidationError, match=field):
        Envelope.model_validate(fields)


def test_envelope_keeps_extra_top_level_fields() -> None:
    """Unknown top-level envelope fields survive a parse and dump, for compatible extension."""
    envelope = Envelope.model_validate(envelope_fields(trace_id="t-1"))
    assert envelope.model_dump()["trace_id"] == "t-1"


def test_every_event_type_has_test_data() -> None:
    """The registry, the EventType enum and these tests cover the same event types."""
    assert set(EVENT_MODELS) == set(VALID_DATA) == {str(member) for member in EventType}
    assert {event_type for event_type, _ in INVALID_DATA} == set(EVENT_MODELS)


@pytest.mark.parametrize("event_type", sorted(VALID_DATA))
def test_valid_data_validates(event_type: str) -> None:
    """Each event type accepts a payload with its required and optional fields."""
    data = EVENT_MODELS[event_type].model_validate(VALID_DATA[event_type])
    assert data.model_dump(exclude_none=True) == VALID_DATA[event_type]


@pytest.mark.parametrize(("event_type", "data"), INVALID_DATA)
def test_invalid_data_is_rejected(event_type: str, data: dict[str, Any]) -> None:
    """Each event type rejects a missing required field or an out-of-range value."""
    with pytest.raises(ValidationError):
        EVENT_MODELS[event_type].model_validate(data)


@pytest.mark.parametrize("event_type", sorted(VALID_DATA))
def test_data_keeps_extra_fields(event_type: str) -> None:
    """Fields a producer adds to `data` are kept and dumped again, untouched."""
    extra = {"custom": {"nested": [1, 2]}, "note": "kept"}
    data = EVENT_MODELS[event_type].model_validate({**VALID_DATA[event_type], **extra})
    dumped = data.model_dump()
    assert {key: dumped[key] for key in extra} == extra


def test_activity_priority_defaults_to_normal() -> None:
    """An activity without a priority has priority `normal`."""
    data = EVENT_MODELS["activity_created"].model_validate({"actor": "a", "action": "b"})
    assert data.model_dump()["priority"] == "normal"


@pytest.mark.parametrize(
    ("event_type", "project_id", "key"),
    [
        ("progress_update", "proj-123", "project.proj-123.progress_update"),
        ("activity_created", None, "global.activity_created"),
        ("agent_status", "A_b-9", "project.A_b-9.agent_status"),
        ("deployment_log", "x" * 64, f"project.{'x' * 64}.deployment_log"),
    ],
)
def test_routing_key_round_trip(event_type: str, project_id: str | None, key: str) -> None:
    """routing_key builds the contract's key and parse_routing_key gives back its parts."""
    assert routing_key(event_type, project_id) == key
    assert parse_routing_key(key) == (project_id, event_type)


@pytest.mark.parametrize("project_id", BAD_PROJECT_IDS)
def test_routing_key_rejects_bad_project_id(project_id: str) -> None:
    """A project id that could break topic matching never makes it into a routing key."""
    with pytest.raises(RoutingKeyError, match="project id"):
        routing_key("agent_status", project_id)


@pytest.mark.parametrize("event_type", ["", "Agent", "agent.status", "1agent", "a*", "a" * 65])
def test_routing_key_rejects_bad_type(event_type: str) -> None:
    """An event type that is not lower_snake_case is refused."""
    with pytest.raises(RoutingKeyError, match="event type"):
        routing_key(event_type, "p1")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "global",
        "global.",
        "global.Agent",
        "project.p1",
        "project..agent_status",
        "project.p1.agent_status.extra",
        "projects.p1.agent_status",
        "global.p1.agent_status",
        "project.p*.agent_status",
    ],
)
def test_parse_routing_key_rejects_malformed(key: str) -> None:
    """A key of neither contract form is a RoutingKeyError, which is a ValueError and ours."""
    with pytest.raises(RoutingKeyError) as caught:
        parse_routing_key(key)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, EventBridgeError)


def test_is_valid_project_id_needs_a_string() -> None:
    """Non-string values are never valid project ids."""
    assert is_valid_project_id("proj-1")
    assert not is_valid_project_id(None)
    assert not is_valid_project_id(123)


@pytest.mark.parametrize(
    ("event_type", "project_id", "rooms"),
    [
        ("progress_update", "p1", ("project:p1",)),
        ("activity_created", "p1", ("project:p1", ACTIVITY_FEED)),
        ("activity_created", None, (ACTIVITY_FEED,)),
        ("agent_status", None, ()),
    ],
)
def test_rooms_for(event_type: str, project_id: str | None, rooms: tuple[str, ...]) -> None:
    """A project's events go to its room; activities also to the feed; other globals nowhere."""
    assert rooms_for(event_type, project_id) == rooms


def test_room_and_exchange_names() -> None:
    """Room, feed and exchange names follow the contract."""
    assert project_room("p1") == "project:p1"
    assert ACTIVITY_FEED == "activity-feed"
    assert exchange_name("eventbridge") == "eventbridge.events"


@pytest.mark.parametrize(
    ("event_type", "name"),
    [
        ("activity_created", "activity-created"),
        ("step_updated", "step-updated"),
        ("step_completed", "step-completed"),
        ("progress_update", "progress_update"),
        ("agent_status", "agent_status"),
        ("deployment_log", "deployment_log"),
    ],
)
def test_socketio_event_name(event_type: str, name: str) -> None:
    """Three types are renamed with dashes for Socket.IO; every other keeps its type name."""
    assert socketio_event_name(event_type) == name


def test_new_event_id_shape() -> None:
    """An event id is 36 characters in UUID version 7 layout, and a valid envelope id."""
    event_id = new_event_id()
    assert len(event_id) == 36
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", event_id
    )
    assert Envelope.model_validate(envelope_fields(id=event_id)).id == event_id


def test_new_event_id_is_time_ordered() -> None:
    """Ids made at later milliseconds sort after earlier ones, and ids do not repeat."""
    times = [1_700_000_000.000 + step / 1000 for step in range(50)]
    ids = [new_event_id(moment) for moment in times]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert len({new_event_id(times[0]) for _ in range(1000)}) == 1000


def test_format_timestamp() -> None:
    """Timestamps are RFC 3339 in UTC with milliseconds and a `Z`, whatever the input zone."""
    assert format_timestamp(MOMENT) == "2026-11-26T12:00:00.123Z"
    plus_two = MOMENT.astimezone(timezone(timedelta(hours=2)))
    assert format_timestamp(plus_two) == "2026-11-26T12:00:00.123Z"


def test_json_schema_files_are_current() -> None:
    """The files in schemas/jsonschema/ are exactly what the models render, and nothing else."""
    expected = rendered_schemas()
    on_disk = {path.name: path.read_text() for path in SCHEMA_DIR.glob("*")}
    stale = sorted(name for name, text in expected.items() if on_disk.get(name) != text)
    extra = sorted(set(on_disk) - set(expected))
    assert not stale, (
        f"JSON Schema files are stale or missing: {', '.join(stale)}; "
        "run `python -m schemas.export` and commit the result"
    )
    assert not extra, (
        f"unexpected files in {SCHEMA_DIR}: {', '.join(extra)}; delete them, then run "
        "`python -m schemas.export` to make sure the rest are current"
    )
