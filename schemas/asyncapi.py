"""The AsyncAPI 3.0 document of eventbridge, built from the models of this package.

It describes both sides, from the point of view of the bridge's users: producers publishing
events to the topic exchange (AMQP), and clients on the native WebSocket (`/ws`) and Socket.IO
(`/socket.io/`) sending requests, getting replies and receiving events. Nothing in it is written
by hand: every payload is a model's JSON Schema (`schemas.events`, `schemas.envelope`,
`schemas.protocol`). `python -m schemas.export` writes it to `schemas/asyncapi.json`; the bridge
can serve `asyncapi_document(prefix)` with its own exchange name.
"""

from __future__ import annotations

from typing import Any

from schemas.events import EVENT_MODELS, event_schema, socketio_event_name
from schemas.protocol import CLIENT_EVENT_MODELS, protocol_schema
from schemas.routing import exchange_name

ASYNCAPI_VERSION = "3.0.0"
DOCUMENT_VERSION = "1.0.0"
AMQP_BINDING = "0.3.0"
JSON = "application/json"
PRESENCE_NOTICES = ("presence", "presenceJoined", "presenceUpdated", "presenceLeft")


def _ref(*parts: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)}


def _relocate(node: Any) -> Any:
    """Point every `#/$defs/X` reference at `#/components/schemas/X`; drop `$schema`/`$id`."""
    if isinstance(node, dict):
        moved: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("$schema", "$id"):
                continue
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                moved[key] = "#/components/schemas/" + value.removeprefix("#/$defs/")
            else:
                moved[key] = _relocate(value)
        return moved
    if isinstance(node, list):
        return [_relocate(item) for item in node]
    return node


def _camel(event_type: str) -> str:
    return "".join(part.capitalize() for part in event_type.split("_"))


def _schemas() -> dict[str, Any]:
    """Every payload schema: one per event type (published and delivered) and every protocol
    message, under `components/schemas`."""
    schemas: dict[str, Any] = {}
    for event_type in EVENT_MODELS:
        schema = event_schema(event_type)
        schemas.update(_relocate(schema.pop("$defs", {})))
        schemas[f"{_camel(event_type)}Event"] = _relocate(schema)
        schemas[f"{_camel(event_type)}Delivered"] = {
            "title": f"{event_type} event as delivered",
            "description": "The published event plus its offset in the bridge's event log.",
            "allOf": [
                _ref("components", "schemas", f"{_camel(event_type)}Event"),
                {
                    "type": "object",
                    "properties": {"offset": {"type": "integer", "minimum": 0}},
                    "required": ["offset"],
                },
            ],
        }
    schemas.update(_relocate(protocol_schema()["$defs"]))
    return dict(sorted(schemas.items()))


def _message(name: str, schema: str, summary: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": JSON,
        "payload": _ref("components", "schemas", schema),
        **extra,
    }


def _event_messages() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(AMQP messages, WebSocket event frames, Socket.IO events), one per event type."""
    amqp: dict[str, Any] = {}
    frames: dict[str, Any] = {}
    sio: dict[str, Any] = {}
    for event_type, model in EVENT_MODELS.items():
        summary = (model.__doc__ or event_type).strip().splitlines()[0]
        camel = _camel(event_type)
        amqp[event_type] = _message(
            event_type,
            f"{camel}Event",
            summary,
            bindings={"amqp": {"contentEncoding": "utf-8", "bindingVersion": AMQP_BINDING}},
        )
        frames[f"{event_type}Frame"] = _message(event_type, f"{camel}Delivered", summary)
        sio_name = socketio_event_name(event_type)
        sio[f"{event_type}Event"] = _message(sio_name, f"{camel}Delivered", summary)
    return amqp, frames, sio


def _ws_messages() -> dict[str, Any]:
    return {
        "auth": _message("auth", "WsAuth", "The first message when tokens are required."),
        "ping": _message("ping", "WsPing", "Keep the connection alive."),
        "subscribe": _message("subscribe", "WsSubscribe", "Join a room, resuming after since."),
        "unsubscribe": _message("unsubscribe", "WsUnsubscribe", "Leave a room."),
        "authenticated": _message("authenticated", "WsAuthenticated", "The token's grant."),
        "pong": _message("pong", "WsPong", "The answer to ping."),
        "subscribed": _message("subscribed", "WsSubscribed", "Joined: epoch and head offset."),
        "unsubscribed": _message("unsubscribed", "WsUnsubscribed", "Left the room."),
        "requestError": _message(
            "request_error", "WsRequestError", "A refused request (a refused auth closes 4401)."
        ),
        "resyncRequired": _message(
            "resync_required", "WsResyncRequired", "A room cannot be resumed; its snapshot follows."
        ),
        "presenceRequest": _message(
            "presence", "WsPresenceRequest", "Ask for a project's current members."
        ),
        "presenceUpdate": _message(
            "presence_update", "WsPresenceUpdate", "Set your presence state in a project."
        ),
        "presenceState": _message("presence_state", "WsPresenceState", "Your state was set."),
        **_presence_notices(websocket=True),
    }


def _presence_notices(*, websocket: bool) -> dict[str, Any]:
    """The four presence notices of one transport (the WebSocket spells them with `_`)."""
    separator, model_prefix, key_suffix = ("_", "Ws", "") if websocket else ("-", "", "Notice")
    notices = {
        "": ("List", "A project's members: on joining its room, and on request."),
        "joined": ("Joined", "A user's first connection joined the room."),
        "updated": ("Updated", "A member's state or connections changed."),
        "left": ("Left", "A user's last connection left the room."),
    }
    messages: dict[str, Any] = {}
    for suffix, (model, summary) in notices.items():
        name = f"presence{separator}{suffix}" if suffix else "presence"
        schema = "WsPresence" if websocket and model == "List" else f"{model_prefix}Presence{model}"
        messages[f"presence{suffix.capitalize()}{key_suffix}"] = _message(name, schema, summary)
    return messages


def _sio_messages() -> dict[str, Any]:
    messages = {
        "join-project": _message("join-project", "SioJoinProject", "Join a project's room."),
        "leave-project": _message("leave-project", "SioLeaveProject", "Leave a project's room."),
        "join-activity-feed": _message(
            "join-activity-feed", "SioJoinActivityFeed", "Join the activity feed."
        ),
        "leave-activity-feed": {
            "name": "leave-activity-feed",
            "title": "leave-activity-feed",
            "summary": "Leave the activity feed (no payload).",
        },
        "joinAck": _message("ack", "SioJoinAck", "A join's acknowledgement."),
        "leaveAck": _message("ack", "SioLeaveAck", "A leave's acknowledgement."),
        "errorAck": _message("ack", "SioErrorAck", "A refused request's acknowledgement."),
        "clientEventAck": _message("ack", "SioClientEventAck", "A client event was published."),
        "resync-required": _message(
            "resync-required", "ResyncNotice", "A room cannot be resumed; its snapshot follows."
        ),
        "bridge-disconnect": _message(
            "bridge-disconnect", "SioBridgeDisconnect", "Why the bridge disconnects the client."
        ),
        "presenceRequest": _message(
            "presence", "PresenceRequest", "Ask for a project's current members."
        ),
        "presence-update": _message(
            "presence-update", "PresenceUpdate", "Set your presence state in a project."
        ),
        "presenceAck": _message("ack", "SioPresenceAck", "A project's current members."),
        "presenceUpdateAck": _message("ack", "SioPresenceUpdateAck", "Your state was set."),
        **_presence_notices(websocket=False),
    }
    for name, model in CLIENT_EVENT_MODELS.items():
        summary = (model.__doc__ or name).strip().splitlines()[0]
        messages[name] = _message(name, model.__name__, summary)
    return messages


def _operation(
    action: str, channel: str, messages: list[str], summary: str, replies: list[str] | None = None
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": action,
        "channel": _ref("channels", channel),
        "summary": summary,
        "messages": [_ref("channels", channel, "messages", name) for name in messages],
    }
    if replies:
        operation["reply"] = {
            "channel": _ref("channels", channel),
            "messages": [_ref("channels", channel, "messages", name) for name in replies],
        }
    return operation


def asyncapi_document(prefix: str = "eventbridge") -> dict[str, Any]:
    """The AsyncAPI 3.0 document for a bridge whose topology prefix is `prefix`."""
    amqp, frames, sio_events = _event_messages()
    ws = _ws_messages()
    sio = _sio_messages()
    exchange = {
        "name": exchange_name(prefix),
        "type": "topic",
        "durable": True,
        "autoDelete": False,
        "vhost": "/",
    }
    event_types = list(EVENT_MODELS)
    type_parameter = {"description": "The event type.", "enum": event_types}
    channels: dict[str, Any] = {
        "projectEvents": {
            "address": "project.{project_id}.{type}",
            "title": "Events of one project",
            "description": (
                f"Routing key of an event of a project on the topic exchange `{prefix}.events` "
                "(`<prefix>.events`). The body is the JSON envelope; publish persistent, "
                "with publisher confirms."
            ),
            "servers": [_ref("servers", "broker")],
            "parameters": {
                "project_id": {"description": "1-64 letters, digits, `_` or `-`."},
                "type": type_parameter,
            },
            "messages": {name: _ref("components", "messages", name) for name in amqp},
            "bindings": {
                "amqp": {"is": "routingKey", "exchange": exchange, "bindingVersion": AMQP_BINDING}
            },
        },
        "globalEvents": {
            "address": "global.{type}",
            "title": "Events of no project",
            "description": "Routing key of an event whose `project_id` is null.",
            "servers": [_ref("servers", "broker")],
            "parameters": {"type": type_parameter},
            "messages": {name: _ref("components", "messages", name) for name in amqp},
            "bindings": {
                "amqp": {"is": "routingKey", "exchange": exchange, "bindingVersion": AMQP_BINDING}
            },
        },
        "websocket": {
            "address": "/ws",
            "title": "Native WebSocket",
            "description": (
                "JSON text frames (alias `/ws/ai`; `/ws/ai/<project_id>` subscribes at once). "
                "Close codes: 4401 token refused or expired, 1012 restarting, 1013 slow "
                "consumer, 1008 flooding, 1009 frame too large, 1000 idle (docs/clients.md)."
            ),
            "servers": [_ref("servers", "bridge")],
            "messages": {**ws, **frames},
        },
        "socketio": {
            "address": "/socket.io/",
            "title": "Socket.IO v4, namespace /",
            "description": (
                "Requests are Socket.IO events answered through acknowledgements; the handshake's "
                "`auth` payload carries the token (SioAuth), a refused one gets `connect_error` "
                "with `err.data` (SioConnectErrorData)."
            ),
            "servers": [_ref("servers", "bridge")],
            "messages": {**sio, **sio_events},
        },
    }
    join_replies = ["joinAck", "errorAck"]
    leave_replies = ["leaveAck", "errorAck"]
    event_replies = ["clientEventAck", "errorAck"]
    operations: dict[str, Any] = {
        "publishProjectEvent": _operation(
            "send", "projectEvents", list(amqp), "A producer publishes an event of a project."
        ),
        "publishGlobalEvent": _operation(
            "send", "globalEvents", list(amqp), "A producer publishes an event of no project."
        ),
        "wsAuthenticate": _operation(
            "send", "websocket", ["auth"], "Authenticate (first message).", ["authenticated"]
        ),
        "wsPing": _operation("send", "websocket", ["ping"], "Ping the bridge.", ["pong"]),
        "wsSubscribe": _operation(
            "send", "websocket", ["subscribe"], "Join a room.", ["subscribed", "requestError"]
        ),
        "wsUnsubscribe": _operation(
            "send", "websocket", ["unsubscribe"], "Leave a room.", ["unsubscribed", "requestError"]
        ),
        "wsPresence": _operation(
            "send",
            "websocket",
            ["presenceRequest"],
            "A project's current members.",
            ["presence", "requestError"],
        ),
        "wsPresenceUpdate": _operation(
            "send",
            "websocket",
            ["presenceUpdate"],
            "Set your presence state.",
            ["presenceState", "requestError"],
        ),
        "wsReceive": _operation(
            "receive",
            "websocket",
            [*frames, "resyncRequired", "requestError", *PRESENCE_NOTICES],
            "Events of the joined rooms (envelope plus offset), notices and refusals.",
        ),
        "sioJoinProject": _operation(
            "send", "socketio", ["join-project"], "Join a project's room.", join_replies
        ),
        "sioLeaveProject": _operation(
            "send", "socketio", ["leave-project"], "Leave a project's room.", leave_replies
        ),
        "sioJoinActivityFeed": _operation(
            "send", "socketio", ["join-activity-feed"], "Join the activity feed.", join_replies
        ),
        "sioLeaveActivityFeed": _operation(
            "send", "socketio", ["leave-activity-feed"], "Leave the activity feed.", leave_replies
        ),
        "sioPresence": _operation(
            "send",
            "socketio",
            ["presenceRequest"],
            "A project's current members.",
            ["presenceAck", "errorAck"],
        ),
        "sioPresenceUpdate": _operation(
            "send",
            "socketio",
            ["presence-update"],
            "Set your presence state.",
            ["presenceUpdateAck", "errorAck"],
        ),
        "sioReceive": _operation(
            "receive",
            "socketio",
            [
                *sio_events,
                "resync-required",
                "bridge-disconnect",
                *(f"{name}Notice" for name in PRESENCE_NOTICES),
            ],
            "Events of the joined rooms (envelope plus offset, under their Socket.IO names) "
            "and notices.",
        ),
    }
    for name in CLIENT_EVENT_MODELS:
        camel = "".join(part.capitalize() for part in name.split("-"))
        operations[f"sio{camel}"] = _operation(
            "send",
            "socketio",
            [name],
            f"Publish a `{name}` event through the bridge (Socket.IO only).",
            event_replies,
        )
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "eventbridge",
            "version": DOCUMENT_VERSION,
            "description": (
                "RabbitMQ events to Socket.IO and native WebSocket rooms, with resume by offset. "
                "Written from the point of view of the bridge's users: producers `send` events "
                "to the topic exchange; clients `send` requests (answered by the replies) and "
                "`receive` events and notices. Generated by `python -m schemas.export` from "
                "the models in `schemas/`; the prose is in docs/clients.md and "
                "docs/delivery-guarantees.md."
            ),
            "license": {"name": "MIT"},
        },
        "defaultContentType": JSON,
        "servers": {
            "broker": {
                "host": "127.0.0.1:5672",
                "protocol": "amqp",
                "protocolVersion": "0-9-1",
                "description": "RabbitMQ (EVENTBRIDGE_AMQP_URL).",
            },
            "bridge": {
                "host": "127.0.0.1:8000",
                "protocol": "ws",
                "description": "The bridge's HTTP port (EVENTBRIDGE_HOST, EVENTBRIDGE_PORT).",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": _schemas(),
            "messages": amqp,
        },
    }
