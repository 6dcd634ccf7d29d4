"""The eventbridge wire contract: the envelope, every v1 event type, routing keys and rooms.

This package imports nothing else of eventbridge, so producers in Python can depend on it alone.
"""

from __future__ import annotations

from schemas.envelope import Envelope, format_timestamp, new_event_id, utc_now
from schemas.errors import EventBridgeError
from schemas.events import (
    EVENT_MODELS,
    SOCKETIO_EVENT_NAMES,
    ActivityCreated,
    AgentStatus,
    Artifact,
    DeploymentLog,
    DeploymentStatus,
    ErrorEvent,
    EventType,
    GenerationComplete,
    ProgressUpdate,
    StepCompleted,
    StepUpdated,
    socketio_event_name,
)
from schemas.routing import (
    ACTIVITY_FEED,
    PROJECT_ID_PATTERN,
    RoutingKeyError,
    exchange_name,
    is_valid_project_id,
    parse_routing_key,
    project_room,
    rooms_for,
    routing_key,
)

__all__ = [
    "ACTIVITY_FEED",
    "EVENT_MODELS",
    "PROJECT_ID_PATTERN",
    "SOCKETIO_EVENT_NAMES",
    "ActivityCreated",
    "AgentStatus",
    "Artifact",
    "DeploymentLog",
    "DeploymentStatus",
    "Envelope",
    "ErrorEvent",
    "EventBridgeError",
    "EventType",
    "GenerationComplete",
    "ProgressUpdate",
    "RoutingKeyError",
    "StepCompleted",
    "StepUpdated",
    "exchange_name",
    "format_timestamp",
    "is_valid_project_id",
    "new_event_id",
    "parse_routing_key",
    "project_room",
    "rooms_for",
    "routing_key",
    "socketio_event_name",
    "utc_now",
]
