"""Client-originated events (`new-activity`, `step-updated`, `step-completed`): validate, build.

They are published to the exchange like any producer's event and reach rooms through the log.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import ValidationError

from bridge.core.events import first_error
from bridge.errors import RequestError
from schemas.codes import ErrorCode
from schemas.events import EVENT_MODELS, EventType
from schemas.routing import is_valid_project_id


class ClientEventSink(Protocol):
    """Publishes a client-originated event to the exchange with a confirm (the log consumer
    does, on its broker connection)."""

    async def __call__(
        self, event_type: str, data: dict[str, Any], project_id: str | None, *, source: str
    ) -> str:
        """Publish; return the event's id.

        Raises:
            RequestError: `broker_unavailable`, `invalid_data` or `publish_failed`.
        """
        ...


CLIENT_EVENTS: dict[str, tuple[str, bool]] = {
    "new-activity": (EventType.ACTIVITY_CREATED, False),
    "step-updated": (EventType.STEP_UPDATED, True),
    "step-completed": (EventType.STEP_COMPLETED, True),
}
"""Socket.IO event name → (event type, whether `project_id` is required)."""


def build_client_event(name: str, payload: Any) -> tuple[str, str | None, dict[str, Any]]:
    """Turn a client's payload into `(event_type, project_id, data)`.

    Raises:
        RequestError: the payload is not an object, the project id is missing or invalid, or
            the data does not fit the event type.
    """
    event_type, project_required = CLIENT_EVENTS[name]
    if not isinstance(payload, dict):
        raise RequestError(ErrorCode.INVALID_PAYLOAD, f"{name} takes a JSON object")
    data = dict(payload)
    project_id = data.pop("project_id", None)
    if project_id is None and project_required:
        raise RequestError(ErrorCode.INVALID_PAYLOAD, f"{name} needs project_id")
    if project_id is not None and not is_valid_project_id(project_id):
        raise RequestError(
            ErrorCode.INVALID_PROJECT_ID,
            "project_id must be 1-64 characters of letters, digits, '_' or '-'",
        )
    try:
        EVENT_MODELS[event_type].model_validate(data)
    except ValidationError as exc:
        raise RequestError(
            ErrorCode.INVALID_DATA, f"{name} data is invalid: {first_error(exc)}"
        ) from exc
    return event_type, project_id, data
