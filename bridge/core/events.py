"""Events: one log message → a validated `Event`, or a `DeadLetter` saying why not.

This is the one place that decides a message's fate: every reason it can be refused is a
`DeadLetterReason`, and the frames every client receives are encoded here, once per event.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NamedTuple, Union

from pydantic import Field, TypeAdapter, ValidationError, create_model

from schemas.codes import DeadLetterReason
from schemas.envelope import Envelope
from schemas.events import EVENT_MODELS, SNAPSHOT_SUBJECTS
from schemas.routing import RoutingKeyError, parse_routing_key, rooms_for


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that is not a valid event, and the sentence that says why."""

    reason: DeadLetterReason
    error: str


EVENT_OVERHEAD_BYTES = 200
"""What an `Event` costs besides its payload: the tuple, its id, type and room strings."""


class Event(NamedTuple):
    """A validated event at its place in the log, ready to deliver.

    The payload — the producer's JSON envelope with the event's `offset` added — is encoded
    once here; each transport wraps it in its own framing once per event (see
    `bridge.edge.transports`), never per recipient. The history keeps events as plain tuples
    of these fields, which the garbage collector does not track (`bridge.core.history`).

    Attributes:
        subject: for a state event (agent status, progress, deployment status), whose state it
            is (the agent or deployment id); None otherwise.
        payload: the UTF-8 JSON every client receives: the envelope plus `offset`.
    """

    offset: int
    id: str
    type: str
    project_id: str | None
    rooms: tuple[str, ...]
    subject: str | None
    payload: bytes
    replayed: bool = False
    occurred_at: float = 0.0
    """The envelope's `occurred_at` as Unix seconds (0: unknown), for the latency metrics."""

    @property
    def size(self) -> int:
        """About how many bytes of memory holding this event costs."""
        return len(self.payload) + EVENT_OVERHEAD_BYTES


def first_error(exc: ValidationError) -> str:
    """Describe the first problem of a validation error in one line: `where: what`."""
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "(root)"
    return f"{where}: {error['msg']}"


UTF8_BOM = b"\xef\xbb\xbf"


def _encodable(raw: object) -> bool:
    """Whether the parsed body is valid Unicode throughout (no lone surrogate)."""
    try:
        json.dumps(raw, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number (RFC 8259); browsers cannot parse it")


def decode(
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
    if body.startswith(UTF8_BOM):
        body = body[len(UTF8_BOM) :]  # allowed in, but browsers' JSON.parse refuses it
    accepted = _accepted_at_once(body)
    if accepted is None:
        return _decode_step_by_step(body, routing_key, offset, replay_of)
    envelope, subject = accepted
    mismatch = _key_mismatch(routing_key, envelope)
    if mismatch is not None:
        return mismatch
    return _event(envelope, subject, body, offset, replay_of)


def _typed_envelopes() -> TypeAdapter[Any]:
    """One validator for the envelope and the data of every event type at once."""
    typed: list[Any] = []
    for name, model in EVENT_MODELS.items():
        tag: Any = Literal[str(name)]
        typed.append(
            create_model(
                f"{model.__name__}Envelope", __base__=Envelope, type=(tag, ...), data=(model, ...)
            )
        )
    union: Any = Annotated[Union[tuple(typed)], Field(discriminator="type")]  # noqa: UP007
    return TypeAdapter(union)


_TYPED_ENVELOPES = _typed_envelopes()
_STEP_BY_STEP_MARKS = re.compile(rb"\\u[dD]|NaN|Infinity")
"""A body holding any of these goes straight to the step-by-step checks: NaN and Infinity
(the contract refuses them as invalid_json; pydantic's parser accepts them), and any
`\\uD800`-style escape (the checks decide whether it is a lone surrogate, which the contract
refuses)."""


def _accepted_at_once(body: bytes) -> tuple[Envelope, str | None] | None:
    """The envelope (with typed data) and subject of a valid body, found in one validation
    (JSON parsed and checked inside pydantic's core: about a third of the step-by-step cost),
    or None: the body is invalid, or needs the step-by-step checks to be judged (they then say
    why it is refused, or accept it: this only ever accepts what they accept, which
    tests/unit/test_decoding_fast_path.py checks for any envelope)."""
    if _STEP_BY_STEP_MARKS.search(body):
        return None
    try:
        envelope: Envelope = _TYPED_ENVELOPES.validate_json(body)
    except ValidationError:
        return None
    subject_field = SNAPSHOT_SUBJECTS.get(envelope.type)
    subject = getattr(envelope.data, subject_field, None) if subject_field else None
    return envelope, subject if isinstance(subject, str) else None


def _decode_step_by_step(  # noqa: PLR0911 - one check per dead-letter reason, in the contract's order
    body: bytes, routing_key: str, offset: int, replay_of: int | None
) -> Event | DeadLetter:
    """Check a (size-checked, BOM-stripped) body one contract rule after the other, in the
    contract's order, and say which one it breaks first."""
    try:
        raw = json.loads(body.decode(), parse_constant=_refuse_constant)
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
            f"data of the {envelope.type} event is invalid: {first_error(exc)}",
        )
    mismatch = _key_mismatch(routing_key, envelope)
    if mismatch is not None:
        return mismatch
    # A UTF-8 body holds no surrogates; only a `\uD800`-style escape can bring a lone one in,
    # so the (per-event) check for one runs only when such an escape is there.
    if (b"\\ud" in body or b"\\uD" in body) and not _encodable(raw):
        return DeadLetter(
            DeadLetterReason.INVALID_JSON,
            "the body escapes a lone UTF-16 surrogate (\\udXXX), which is not valid Unicode",
        )
    subject_field = SNAPSHOT_SUBJECTS.get(envelope.type)
    subject = envelope.data.get(subject_field) if subject_field else None
    return _event(envelope, subject if isinstance(subject, str) else None, body, offset, replay_of)


def _key_mismatch(routing_key: str, envelope: Envelope) -> DeadLetter | None:
    """Why the routing key does not fit the envelope, or None if it does."""
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
    return None


def _event(
    envelope: Envelope, subject: str | None, body: bytes, offset: int, replay_of: int | None
) -> Event:
    return Event(
        offset=offset,
        id=envelope.id,
        type=envelope.type,
        project_id=envelope.project_id,
        rooms=rooms_for(envelope.type, envelope.project_id),
        subject=subject,
        payload=_with_offset(body, offset, replay_of),
        replayed=replay_of is not None,
        occurred_at=envelope.occurred_at.timestamp(),
    )


def traceparent_of(body: bytes) -> str | None:
    """The `traceparent` a message body carries, if it is a JSON object with one (for log
    lines about an event; never on the delivery path)."""
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError):
        return None
    value = raw.get("traceparent") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


def _with_offset(body: bytes, offset: int, replay_of: int | None) -> bytes:
    """The body with `offset` (and for a replay `replayed` and `replay_of`) added as its last
    members: no re-encoding of the rest. Added last, they win over members of the same name a
    producer may have sent (JSON parsers keep the last of duplicate names)."""
    closed = body.rstrip()
    extra = b',"offset":%d' % offset
    if replay_of is not None:
        extra += b',"replayed":true,"replay_of":%d' % replay_of
    return closed[:-1] + extra + b"}"
