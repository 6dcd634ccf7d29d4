"""Routing keys and rooms: where an event is published and who receives it."""

from __future__ import annotations

import re

from schemas.errors import EventBridgeError

PROJECT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""A project id: 1-64 characters of letters, digits, `_` and `-` (no dots, no wildcards)."""

ACTIVITY_FEED = "activity-feed"
"""The room that receives every `activity_created` event, of any project or none."""

ACTIVITY_TYPE = "activity_created"

_PROJECT_ID = re.compile(PROJECT_ID_PATTERN)
_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class RoutingKeyError(EventBridgeError, ValueError):
    """A routing key or project id that does not follow the contract."""


def is_valid_project_id(value: object) -> bool:
    """Tell whether `value` is a project id the contract allows."""
    return isinstance(value, str) and _PROJECT_ID.fullmatch(value) is not None


def routing_key(event_type: str, project_id: str | None) -> str:
    """Build the routing key for an event: `project.<id>.<type>` or `global.<type>`.

    Raises:
        RoutingKeyError: the project id or the type cannot appear in a routing key.
    """
    if not _TYPE.fullmatch(event_type):
        raise RoutingKeyError(
            f"event type {event_type!r} must be lower_snake_case, 1-64 characters"
        )
    if project_id is None:
        return f"global.{event_type}"
    if not is_valid_project_id(project_id):
        raise RoutingKeyError(
            f"project id {project_id!r} must be 1-64 characters of letters, digits, '_' or '-'"
        )
    return f"project.{project_id}.{event_type}"


def parse_routing_key(key: str) -> tuple[str | None, str]:
    """Split a routing key into `(project_id, type)`; `project_id` is None for a global key.

    Raises:
        RoutingKeyError: the key has neither contract form.
    """
    parts = key.split(".")
    if len(parts) == 2 and parts[0] == "global" and _TYPE.fullmatch(parts[1]):
        return None, parts[1]
    if (
        len(parts) == 3
        and parts[0] == "project"
        and is_valid_project_id(parts[1])
        and _TYPE.fullmatch(parts[2])
    ):
        return parts[1], parts[2]
    raise RoutingKeyError(
        f"routing key {key!r} is neither 'project.<project_id>.<type>' nor 'global.<type>'"
    )


def exchange_name(prefix: str) -> str:
    """Name the topic exchange producers publish to: `<prefix>.events`."""
    return f"{prefix}.events"


def project_room(project_id: str) -> str:
    """Name the room of one project: `project:<project_id>`."""
    return f"project:{project_id}"


def rooms_for(event_type: str, project_id: str | None) -> tuple[str, ...]:
    """Name every room an event goes to (docs/clients.md, "Rooms, events and offsets")."""
    if project_id is None:
        return (ACTIVITY_FEED,) if event_type == ACTIVITY_TYPE else ()
    if event_type == ACTIVITY_TYPE:
        return (project_room(project_id), ACTIVITY_FEED)
    return (project_room(project_id),)
