"""What replicas tell each other about presence: the shapes of entries and messages, checked
on receipt (another replica's message is data from the network like any other).

A message is a JSON object with `kind` and `replica` (the sender's id):

- `hello`: a replica started; every other answers with its snapshot at once;
- `snapshot`: `rooms`, room → user → entry: everything the sender holds (also its heartbeat);
- `change`: one `room`, one `user`, and the sender's `entry` for them now (null: gone);
- `bye`: the sender stops; its members leave at once.

An entry is `{"name", "connections", "since", "state", "state_at"}`: one user's connections on
the sender in one room, since when (Unix seconds), and their state and when it was set. A
receiver keeps each other replica's entries in a `RemoteReplica` until it expires.
"""

from __future__ import annotations

from typing import Any

from schemas.routing import project_room

PROJECT_ROOM_PREFIX = project_room("")

Entry = dict[str, Any]
"""One user's presence on one replica in one room."""
Message = dict[str, Any]
"""What replicas send each other (see the module docstring)."""


class RemoteReplica:
    """Another replica's entries: room → user → entry, and when they expire."""

    __slots__ = ("expires", "rooms")

    def __init__(self, expires: float) -> None:
        self.expires = expires
        self.rooms: dict[str, dict[str, Entry]] = {}


def check_room(value: object) -> str:
    if not isinstance(value, str) or not value.startswith(PROJECT_ROOM_PREFIX):
        raise ValueError(f"not a project room: {value!r:.80}")
    return value


def check_user(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"not a user id: {value!r:.80}")
    return value


def check_entry(raw: object) -> Entry:
    """Check an entry another replica sent."""
    if not isinstance(raw, dict):
        raise TypeError("an entry must be an object")
    name, connections, since = raw.get("name"), raw.get("connections"), raw.get("since")
    state, state_at = raw.get("state"), raw.get("state_at")
    if (
        (name is not None and not isinstance(name, str))
        or not isinstance(connections, int)
        or connections < 1
        or not isinstance(since, (int, float))
        or (state is not None and not isinstance(state, dict))
        or not isinstance(state_at, (int, float))
    ):
        raise ValueError("a malformed presence entry")
    return {
        "name": name,
        "connections": connections,
        "since": since,
        "state": state,
        "state_at": state_at,
    }
