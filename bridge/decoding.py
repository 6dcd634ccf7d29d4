"""Decoding: one log message → a validated `Event`, or a `DeadLetter` saying why not.

This is the one place that decides a message's fate: every reason it can be refused is a
`DeadLetterReason`, and the frames every client receives are encoded here, once per event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError

from bridge.eventlog import LogRecord
from schemas.envelope import Envelope
from schemas.events import EVENT_MODELS, SNAPSHOT_SUBJECTS, socketio_event_name
from schemas.routing import RoutingKeyError, parse_routing_key, rooms_for


class DeadLetterReason(StrEnum):
    """Why a message was refused; sent as the `x-eventbridge-reason` header."""

    INVALID_JSON = "invalid_json"
    INVALID_ENVELOPE = "invalid_envelope"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_DATA = "invalid_data"
    ROUTING_KEY_MISMATCH = "routing_key_mismatch"
    TOO_LARGE = "too_large"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that is not a valid event, and the sentence that says why."""

    reason: DeadLetterReason
    error: str


EVENT_OVERHEAD_BYTES = 400
"""What an `Event` costs besides its two frames: the object, its id, type and room strings."""


@dataclass(frozen=True, slots=True)
class Event:
    """A validated event at its place in the log, ready to deliver.

    Both transports' frames are encoded here, once per event, never per recipient; the event
    keeps no parsed JSON, so the thousands held in the history cost the garbage collector
    nothing to scan.

    Attributes:
        subject: for a state event (agent status, progress, deployment status), whose state it
            is (the agent or deployment id); None otherwise.
        json_frame: the native-WebSocket text frame: the envelope plus `offset`.
        socketio_frame: the Socket.IO EVENT packet carrying the same payload.
    """

    offset: int
    id: str
    type: str
    project_id: str | None
    rooms: tuple[str, ...]
    subject: str | None
    json_frame: str
    socketio_frame: str
    replayed: bool = False

    @property
    def size(self) -> int:
        """About how many bytes of memory holding this event costs (both frames and the rest)."""
        return len(self.json_frame) + len(self.socketio_frame) + EVENT_OVERHEAD_BYTES


def first_error(exc: ValidationError) -> str:
    """Describe the first problem of a validation error in one line: `where: what`."""
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "(root)"
    return f"{where}: {error['msg']}"


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number (RFC 8259); browsers cannot parse it")


def decode_record(record: LogRecord, *, max_bytes: int) -> Event | DeadLetter:
    """Decode one log record (see `decode`)."""
    return decode(
        record.message.body,
        record.routing_key,
        record.offset,
        max_bytes=max_bytes,
        replay_of=record.replay_of,
    )


def decode(  # noqa: PLR0911 - one check per dead-letter reason, in the contract's order
    body: bytes, routing_key: str, offset: int, *, max_bytes: int, replay_of: int | None = None
) -> Event | DeadLetter:
    """Decode and validate one message from the log.

    Args:
        body: the raw message body.
        routing_key: the key it was published with.
        offset: its position in the log.
        max_bytes: the largest body accepted.
        replay_of: for a replayed event, the offset of the original: the payload then says
            `"replayed": true` and `"replay_of": <offset>`.

    Returns:
        The event, ready to route, or the reason it must be dead-lettered.
    """
    if len(body) > max_bytes:
        return DeadLetter(
            DeadLetterReason.TOO_LARGE,
            f"the body is {len(body)} bytes; the limit is {max_bytes} bytes",
        )
    try:
        raw = json.loads(body, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        return DeadLetter(DeadLetterReason.INVALID_JSON, f"the body is not UTF-8 JSON: {exc}")
    except RecursionError:
        return DeadLetter(DeadLetterReason.INVALID_JSON, "the body nests JSON too deeply")
    if not isinstance(raw, dict):
        return DeadLetter(
            DeadLetterReason.INVALID_ENVELOPE,
            f"the body must be a JSON object, not {type(raw).__name__}",
        )
    try:
        envelope = Envelope.model_validate(raw)
    except ValidationError as exc:
        return DeadLetter(
            DeadLetterReason.INVALID_ENVELOPE, f"the envelope is invalid: {first_error(exc)}"
        )
    model = EVENT_MODELS.get(envelope.type)
    if model is None:
        known = ", ".join(sorted(EVENT_MODELS))
        return DeadLetter(
            DeadLetterReason.UNKNOWN_TYPE,
            f"event type {envelope.type!r} is not one of: {known}",
        )
    try:
        model.model_validate(envelope.data)
    except ValidationError as exc:
        return DeadLetter(
            DeadLetterReason.INVALID_DATA,
            f"data of a {envelope.type} event is invalid: {first_error(exc)}",
        )
    try:
        key_project, key_type = parse_routing_key(routing_key)
    except RoutingKeyError as exc:
        return DeadLetter(DeadLetterReason.ROUTING_KEY_MISMATCH, str(exc))
    if key_project != envelope.project_id or key_type != envelope.type:
        return DeadLetter(
            DeadLetterReason.ROUTING_KEY_MISMATCH,
            f"routing key {routing_key!r} does not match the envelope "
            f"(type {envelope.type!r}, project_id {envelope.project_id!r})",
        )
    raw["offset"] = offset
    if replay_of is not None:
        raw["replayed"] = True
        raw["replay_of"] = replay_of
    json_frame = json.dumps(raw, separators=(",", ":"), ensure_ascii=False)
    # A UTF-8 body holds no surrogates; only a `\uD800`-style escape can bring a lone one in,
    # so the (per-event) check for one runs only when such an escape is there.
    if (b"\\ud" in body or b"\\uD" in body) and not _encodable(json_frame):
        return DeadLetter(
            DeadLetterReason.INVALID_JSON,
            "the body escapes a lone UTF-16 surrogate (\\udXXX), which is not valid Unicode",
        )
    subject_field = SNAPSHOT_SUBJECTS.get(envelope.type)
    subject = envelope.data.get(subject_field) if subject_field else None
    return Event(
        offset=offset,
        id=envelope.id,
        type=envelope.type,
        project_id=envelope.project_id,
        rooms=rooms_for(envelope.type, envelope.project_id),
        subject=subject if isinstance(subject, str) else None,
        json_frame=json_frame,
        socketio_frame=f"2[{json.dumps(socketio_event_name(envelope.type))},{json_frame}]",
        replayed=replay_of is not None,
    )
