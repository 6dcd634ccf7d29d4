"""Every machine-readable code the bridge puts on the wire, one enumeration per place.

Clients switch on these strings, so they are part of the contract: a code is only ever added,
never renamed. `docs/clients.md` says what each one means for a client and what to do.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Why a request was refused: `code` of a WebSocket `request_error`, of a Socket.IO error
    ack `{"ok": false, "error": {"code", "message"}}`, and of a refused connection."""

    INVALID_JSON = "invalid_json"
    INVALID_PAYLOAD = "invalid_payload"
    INVALID_PROJECT_ID = "invalid_project_id"
    INVALID_DATA = "invalid_data"
    UNKNOWN_ROOM = "unknown_room"
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_EVENT = "unknown_event"
    TOO_MANY_ROOMS = "too_many_rooms"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate_limited"
    NOT_CONNECTED = "not_connected"
    ALREADY_AUTHENTICATED = "already_authenticated"
    BROKER_UNAVAILABLE = "broker_unavailable"
    PUBLISH_FAILED = "publish_failed"
    AUTH_REQUIRED = "auth_required"
    INVALID_TOKEN = "invalid_token"
    TOKEN_EXPIRED = "token_expired"
    NOT_JOINED = "not_joined"
    TOO_LARGE = "too_large"


class ResyncReason(StrEnum):
    """Why a resume cannot be served; the `reason` of `resync-required` / `resync_required`."""

    EXPIRED = "expired"
    """The log no longer holds the events after `since` (retention removed them)."""
    EPOCH_MISMATCH = "epoch_mismatch"
    """`since` belongs to another incarnation of the log."""
    FUTURE_OFFSET = "future_offset"
    """`since` is newer than anything the bridge has seen."""
    TOO_MANY = "too_many"
    """More events were missed than the catch-up limit allows."""
    UNAVAILABLE = "unavailable"
    """The log could not be read (the broker is unreachable); try again later."""


class CloseReason(StrEnum):
    """Why the bridge ended a connection: the `reason` of Socket.IO `bridge-disconnect`, and the
    first word of a WebSocket close reason."""

    SLOW_CONSUMER = "slow_consumer"
    """The client did not read what it was sent; it resumes by offset when it returns."""
    SHUTDOWN = "shutdown"
    """The bridge is restarting; reconnect (to any replica) and resume by offset."""
    FLOODING = "flooding"
    """The client sent far more messages per second than allowed."""
    IDLE = "idle"
    """A native WebSocket stayed in no room without sending anything."""
    TOKEN_EXPIRED = "token_expired"
    """The connection's token expired; reconnect with a fresh one and resume by offset."""


class DeadLetterReason(StrEnum):
    """Why a message on the exchange is not a valid event: the `x-eventbridge-reason` header of
    its copy in `<prefix>.dead-letters`."""

    INVALID_JSON = "invalid_json"
    INVALID_ENVELOPE = "invalid_envelope"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_DATA = "invalid_data"
    ROUTING_KEY_MISMATCH = "routing_key_mismatch"
    TOO_LARGE = "too_large"
