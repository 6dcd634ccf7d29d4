"""The AsyncAPI document and the client-protocol models it is generated from (`schemas/`)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from schemas import presence
from schemas.asyncapi import asyncapi_document
from schemas.codes import ErrorCode
from schemas.events import EVENT_MODELS, socketio_event_name
from schemas.export import ASYNCAPI_FILE, rendered_asyncapi
from schemas.protocol import (
    PROTOCOL_MODELS,
    SioErrorAck,
    SioJoinAck,
    SioNewActivity,
    SioStepUpdated,
    WsAuthenticated,
    WsRequestError,
    WsResyncRequired,
    WsSubscribe,
    WsSubscribed,
    protocol_schema,
)

# Frames and acks exactly as docs/clients.md shows them (and the bridge sends them).
MEMBER = {
    "user_id": "u-alice",
    "name": "Alice",
    "connections": 2,
    "since": 1765049000.52,
    "state": {"editing": "step-3"},
}
DOCUMENTED: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (presence.PresenceMember, MEMBER),
    (presence.WsPresence, {"type": "presence", "project_id": "p1", "members": [MEMBER]}),
    (presence.PresenceLeft, {"project_id": "p1", "user_id": "u-alice"}),
    (presence.SioPresenceAck, {"ok": True, "project_id": "p1", "members": []}),
    (
        presence.WsPresenceUpdate,
        {"type": "presence_update", "project_id": "p1", "state": {"editing": "step-3"}},
    ),
    (presence.WsPresenceState, {"type": "presence_state", "project_id": "p1", "state": None}),
    (WsSubscribe, {"type": "subscribe", "project_id": "p1", "since": 1041, "epoch": "5eb3a80e"}),
    (WsSubscribe, {"type": "subscribe", "room": "activity-feed"}),
    (WsSubscribed, {"type": "subscribed", "room": "project:p1", "epoch": "e", "offset": 41}),
    (
        WsAuthenticated,
        {
            "type": "authenticated",
            "subject": "user-1",
            "projects": ["p1"],
            "activity_feed": True,
            "expires_at": 1767225600.0,
            "anonymous": False,
        },
    ),
    (
        WsAuthenticated,
        {
            "type": "authenticated",
            "subject": None,
            "projects": "*",
            "activity_feed": True,
            "expires_at": None,
            "anonymous": True,
        },
    ),
    (
        WsRequestError,
        {"type": "request_error", "code": "forbidden", "message": "no", "request": "subscribe"},
    ),
    (
        WsRequestError,
        {"type": "request_error", "code": "rate_limited", "message": "x", "request": None},
    ),
    (
        WsResyncRequired,
        {
            "type": "resync_required",
            "room": "activity-feed",
            "reason": "expired",
            "epoch": "e",
            "offset": -1,
        },
    ),
    (SioJoinAck, {"ok": True, "room": "activity-feed", "epoch": "e", "offset": 0}),
    (SioErrorAck, {"ok": False, "error": {"code": "invalid_data", "message": "bad"}}),
    (SioNewActivity, {"actor": "alice", "action": "commented"}),
    (SioStepUpdated, {"project_id": "p1", "workflow_id": "w", "step_id": "s", "changes": {}}),
]

REFUSED: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (presence.WsPresenceLeft, {"type": "presence_left", "project_id": "p1"}),
    (presence.PresenceMember, {**MEMBER, "connections": 0}),
    (presence.PresenceUpdate, {"project_id": "p1", "state": ["not", "an", "object"]}),
    (WsSubscribe, {"type": "subscribe", "room": "lobby"}),
    (WsSubscribe, {"type": "subscribe", "project_id": "p1", "since": -2}),
    (WsSubscribed, {"type": "subscribed", "room": "project:p1", "epoch": "e"}),
    (WsRequestError, {"type": "request_error", "code": "oops", "message": "x", "request": None}),
    (
        WsResyncRequired,
        {
            "type": "resync_required",
            "room": "activity-feed",
            "reason": "bored",
            "epoch": "e",
            "offset": 1,
        },
    ),
    (SioJoinAck, {"ok": False, "room": "activity-feed", "epoch": "e", "offset": 0}),
    (SioStepUpdated, {"workflow_id": "w", "step_id": "s", "changes": {}}),
]


@pytest.mark.parametrize(("model", "message"), DOCUMENTED)
def test_documented_messages_fit_their_models(
    model: type[BaseModel], message: dict[str, Any]
) -> None:
    """Every frame and ack shape docs/clients.md shows validates against its protocol model."""
    model.model_validate(message)


@pytest.mark.parametrize(("model", "message"), REFUSED)
def test_malformed_messages_do_not_fit(model: type[BaseModel], message: dict[str, Any]) -> None:
    """A wrong room, since, code, reason or missing field is refused by the protocol models."""
    with pytest.raises(ValidationError):
        model.model_validate(message)


def test_error_codes_cover_the_documented_table() -> None:
    """Every refusal code docs/clients.md lists is in ErrorCode, and nothing undocumented but
    `not_connected` (a Socket.IO connection that is closing)."""
    documented = {
        "invalid_json", "invalid_payload", "invalid_project_id", "invalid_data", "unknown_room",
        "unknown_type", "unknown_event", "forbidden", "already_authenticated", "too_many_rooms",
        "rate_limited", "broker_unavailable", "publish_failed", "auth_required",
        "invalid_token", "token_expired", "not_joined", "too_large",
    }  # fmt: skip
    assert {str(code) for code in ErrorCode} == documented | {"not_connected"}


def test_protocol_schema_holds_every_model() -> None:
    """protocol.json has one $defs entry per protocol model, and the refs it uses resolve."""
    schema = protocol_schema()
    assert set(PROTOCOL_MODELS) <= set(schema["$defs"])
    text = json.dumps(schema)
    for name in {part.split('"')[0] for part in text.split('"$ref": "#/$defs/')[1:]}:
        assert name in schema["$defs"], name


def test_asyncapi_file_is_current() -> None:
    """schemas/asyncapi.json is exactly what the models render."""
    assert ASYNCAPI_FILE.read_text() == rendered_asyncapi(), (
        "schemas/asyncapi.json is stale; run `python -m schemas.export` and commit the result"
    )


def refs_of(node: Any) -> list[str]:
    """Every `$ref` value in a JSON document."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs_of(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in refs_of(item)]
    return []


def resolve(document: dict[str, Any], ref: str) -> Any:
    """Follow a local JSON pointer."""
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_asyncapi_references_resolve() -> None:
    """Every `$ref` of the document points at something inside it."""
    document = asyncapi_document()
    refs = refs_of(document)
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        resolve(document, ref)


def test_asyncapi_describes_both_sides() -> None:
    """Producers: the topic exchange, both routing-key forms and a message per event type.
    Clients: /ws and /socket.io/ with each event under its wire name, requests with replies."""
    document = asyncapi_document(prefix="acme")
    assert document["asyncapi"] == "3.0.0"
    channels = document["channels"]
    project = channels["projectEvents"]
    assert project["address"] == "project.{project_id}.{type}"
    assert channels["globalEvents"]["address"] == "global.{type}"
    exchange = project["bindings"]["amqp"]["exchange"]
    assert (exchange["name"], exchange["type"]) == ("acme.events", "topic")
    assert set(project["messages"]) == set(EVENT_MODELS)
    ws = channels["websocket"]
    assert ws["address"] == "/ws"
    ws_names = {message["name"] for message in ws["messages"].values()}
    assert set(EVENT_MODELS) | {"subscribed", "request_error", "resync_required"} <= ws_names
    sio = channels["socketio"]
    assert sio["address"] == "/socket.io/"
    sio_names = {message["name"] for message in sio["messages"].values()}
    assert {socketio_event_name(t) for t in EVENT_MODELS} <= sio_names
    assert {"join-project", "new-activity", "step-updated", "step-completed"} <= sio_names
    assert {"resync-required", "bridge-disconnect"} <= sio_names
    operations = document["operations"]
    assert operations["publishProjectEvent"]["action"] == "send"
    replies = operations["wsSubscribe"]["reply"]["messages"]
    assert [resolve(document, r["$ref"])["name"] for r in replies] == [
        "subscribed",
        "request_error",
    ]
    assert operations["sioNewActivity"]["reply"]["messages"]
    delivered = resolve(document, "#/components/schemas/ProgressUpdateDelivered")
    assert delivered["allOf"][1]["required"] == ["offset"]
