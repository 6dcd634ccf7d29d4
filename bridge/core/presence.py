"""Presence: who is in each project room right now, across replicas (docs/clients.md,
"Presence").

`Presence` is the one owner of presence state:

- this replica's members: per project room, the users with connections here, each with its
  connections (and when each joined) and its ephemeral state;
- the other replicas' members, as their last snapshot and changes said, until the replica
  falls silent for `expiry` seconds.

A member is the merge of one user's entries on every replica: connections summed, the earliest
`since`, the most recently set state. Every change of a merged member is told to this replica's
connections in that room (`presence-joined`, `presence-left`, `presence-updated`), and every
change of this replica's own entries is handed to `publish` for the other replicas (the broker
layer, `bridge.broker.presence`, carries it). Nothing here is on the delivery path of events.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from bridge.core.connection import ClientConnection, Frame
from bridge.core.presence_local import LocalMember, PresenceLimits, StateBucket
from bridge.core.presence_messages import (
    PROJECT_ROOM_PREFIX,
    Entry,
    Message,
    RemoteReplica,
    check_entry,
    check_room,
    check_user,
)
from bridge.errors import RequestError
from schemas.codes import ErrorCode

logger = logging.getLogger(__name__)

JOINED, LEFT, UPDATED, LISTED = "presence-joined", "presence-left", "presence-updated", "presence"
"""The notices a client gets (the native WebSocket spells them with `_`)."""
FLUSH_EVERY = 0.1
"""Seconds over which changes are gathered before they are told (with a scheduler)."""


class Presence:
    """The members of every project room, on this replica and on the others."""

    def __init__(
        self,
        replica: str,
        limits: PresenceLimits,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        schedule: Callable[[float, Callable[[], None]], object] | None = None,
    ) -> None:
        self.replica = replica
        """This replica's id, unique per process start."""
        self.limits = limits
        self.publish: Callable[[Message], None] = lambda _: None
        """Where this replica's changes go (set by the broker side; nowhere until then)."""
        self._wall = wall
        self._monotonic = monotonic
        self._local: dict[str, dict[str, LocalMember]] = {}
        self._rooms_of: dict[ClientConnection, dict[str, str]] = {}
        self._remote: dict[str, RemoteReplica] = {}
        self._buckets: dict[ClientConnection, StateBucket] = {}
        self._schedule = schedule
        self._view: dict[str, dict[str, dict[str, Any]]] = {}
        """Room → user → merged member, kept by `_tell` (a join's list costs no merging)."""
        self._pending: dict[str, list[tuple[str, dict[str, Any], object]]] = {}
        self._flush_due = False
        self._listed: dict[tuple[ClientConnection, str], int] = {}
        self._unlisted: dict[ClientConnection, set[str]] = {}
        """Rooms each connection joined while they listed `max_members` other users."""

    # -- this replica's connections ------------------------------------------------------

    def enter(self, connection: ClientConnection, room: str, user: str, name: str | None) -> bool:
        """The connection joined a project room as `user`; False if it was in it already
        (entering twice changes nothing)."""
        if room in self._rooms_of.get(connection, {}) or room in self._unlisted.get(connection, ()):
            return False
        # A bound on who is listed keeps a crowd from making every join cost the whole room:
        # each join sends the list, and each member is told of each change.
        view = self._view.get(room, {})
        if user not in view and len(view) >= self.limits.max_members:
            self._unlisted.setdefault(connection, set()).add(room)
            return True
        rooms = self._rooms_of.setdefault(connection, {})
        rooms[room] = user
        before = self._merged(room, user)
        local = self._local.setdefault(room, {}).get(user)
        if local is None:
            local = self._local[room][user] = LocalMember(name)
        local.connections[connection] = self._wall()
        self._changed(room, user, before, skip=connection)
        return True

    def leave(self, connection: ClientConnection, room: str) -> None:
        """The connection left a room (leaving a room one is not in changes nothing)."""
        unlisted = self._unlisted.get(connection)
        if unlisted is not None:
            unlisted.discard(room)
            if not unlisted:
                del self._unlisted[connection]
        rooms = self._rooms_of.get(connection)
        if rooms is None or room not in rooms:
            return
        user = rooms.pop(room)
        if not rooms:
            del self._rooms_of[connection]
            self._buckets.pop(connection, None)
        before = self._merged(room, user)
        members = self._local[room]
        local = members[user]
        del local.connections[connection]
        if not local.connections:
            del members[user]
            if not members:
                del self._local[room]
        self._changed(room, user, before)

    def remove(self, connection: ClientConnection) -> None:
        """The connection closed: it leaves every room."""
        self._unlisted.pop(connection, None)
        for room in list(self._rooms_of.get(connection, ())):
            self.leave(connection, room)

    def set_state(self, connection: ClientConnection, room: str, state: object) -> None:
        """Set the state of the connection's member in `room` (None clears it).

        Raises:
            RequestError: the connection is not in the room (`not_joined`), the state is not an
                object (`invalid_payload`), too large (`too_large`) or set too often
                (`rate_limited`).
        """
        user = self._rooms_of.get(connection, {}).get(room)
        if user is None and room in self._unlisted.get(connection, ()):
            raise RequestError(
                ErrorCode.NOT_JOINED,
                f"{room} listed {self.limits.max_members} users when you joined, its most "
                "(EVENTBRIDGE_PRESENCE_MAX_MEMBERS): you get its events but are not listed in "
                "its presence; leave it and join again later to be listed",
            )
        if user is None:
            raise RequestError(
                ErrorCode.NOT_JOINED, f"join {room} before setting your presence state there"
            )
        if state is not None and not isinstance(state, dict):
            raise RequestError(ErrorCode.INVALID_PAYLOAD, "state must be a JSON object or null")
        size = len(json.dumps(state, separators=(",", ":")).encode())
        if size > self.limits.state_max_bytes:
            raise RequestError(
                ErrorCode.TOO_LARGE,
                f"the state is {size} bytes as JSON; at most {self.limits.state_max_bytes} "
                "are allowed",
            )
        self._take_token(connection)
        before = self._merged(room, user)
        local = self._local[room][user]
        local.state, local.state_at = state, self._wall()
        self._changed(room, user, before)

    def _take_token(self, connection: ClientConnection) -> None:
        rate, now = self.limits.state_per_second, self._monotonic()
        capacity = max(rate, 1.0)
        bucket = self._buckets.get(connection)
        if bucket is None:
            bucket = self._buckets[connection] = StateBucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens < 1:
            raise RequestError(
                ErrorCode.RATE_LIMITED,
                f"presence state may change at most {rate:g} times per second; send the "
                "latest state a little later",
            )
        bucket.tokens -= 1

    # -- reading -------------------------------------------------------------------------

    def members(self, room: str) -> list[dict[str, Any]]:
        """The members of a room, as clients see them, ordered by user id."""
        view = self._view.get(room, {})
        return [view[user] for user in sorted(view)]

    def listing(self, room: str, to: ClientConnection | None = None) -> dict[str, Any]:
        """The `presence` message of a room: its project id and current members. Sent `to` a
        connection, it holds the changes not yet told: that connection is not told them after."""
        if to is not None:
            self._listed[to, room] = len(self._pending.get(room, ()))
        return {"project_id": room.removeprefix(PROJECT_ROOM_PREFIX), "members": self.members(room)}

    def replicas(self) -> list[str]:
        """The other replicas heard from and not expired."""
        return sorted(self._remote)

    def snapshot(self) -> Message:
        """This replica's whole presence, for the other replicas."""
        rooms = {
            room: {user: local.entry() for user, local in members.items()}
            for room, members in self._local.items()
        }
        return {"kind": "snapshot", "replica": self.replica, "rooms": rooms}

    # -- the other replicas ----------------------------------------------------------------

    def receive(self, message: Message) -> None:
        """Apply a message of another replica (this replica's own are ignored).

        Raises:
            ValueError, TypeError: the message is malformed (the caller logs and drops it).
        """
        replica, kind = message.get("replica"), message.get("kind")
        if not isinstance(replica, str) or replica == self.replica:
            return
        if kind == "hello":
            self.publish(self.snapshot())
            return
        if kind == "bye":
            self._replace(replica, None)
            return
        if kind == "snapshot":
            rooms = message.get("rooms")
            if not isinstance(rooms, dict):
                raise ValueError("a snapshot without rooms")
            checked = {
                check_room(room): {
                    check_user(user): check_entry(raw) for user, raw in members.items()
                }
                for room, members in rooms.items()
                if isinstance(members, dict)
            }
            self._replace(replica, checked)
            return
        if kind == "change":
            room, user = check_room(message.get("room")), check_user(message.get("user"))
            raw = message.get("entry")
            entry = None if raw is None else check_entry(raw)
            remote = self._heard(replica)
            before = self._merged(room, user)
            members = remote.rooms.setdefault(room, {})
            if entry is None:
                members.pop(user, None)
                if not members:
                    del remote.rooms[room]
            else:
                members[user] = entry
            self._tell(room, user, before, self._merged(room, user))
            return
        raise ValueError(f"unknown presence message kind {kind!r}")

    def expire(self) -> list[str]:
        """Forget the replicas silent for longer than `expiry`; return their ids."""
        now = self._monotonic()
        gone = [replica for replica, remote in self._remote.items() if remote.expires < now]
        for replica in gone:
            logger.warning("presence: replica %s fell silent; its members expire", replica)
            self._replace(replica, None)
        return gone

    def _heard(self, replica: str) -> RemoteReplica:
        expires = self._monotonic() + self.limits.expiry
        remote = self._remote.get(replica)
        if remote is None:
            remote = self._remote[replica] = RemoteReplica(expires)
        remote.expires = expires
        return remote

    def _replace(self, replica: str, rooms: dict[str, dict[str, Entry]] | None) -> None:
        """Replace everything a replica holds (None: forget the replica)."""
        old = self._remote.get(replica)
        held = [old.rooms if old else {}, rooms or {}]
        touched = {
            (room, user) for each in held for room, members in each.items() for user in members
        }
        before = {key: self._merged(*key) for key in touched}
        if rooms is None:
            self._remote.pop(replica, None)
        else:
            self._heard(replica).rooms = {
                room: members for room, members in rooms.items() if members
            }
        for (room, user), was in before.items():
            self._tell(room, user, was, self._merged(room, user))

    # -- merging and telling -----------------------------------------------------------------

    def _merged(self, room: str, user: str) -> dict[str, Any] | None:
        """The member `user` of `room` over every replica, as clients see it (None: absent)."""
        parts: list[Entry] = []
        local = self._local.get(room, {}).get(user)
        if local is not None:
            parts.append(local.entry())
        for remote in self._remote.values():
            entry = remote.rooms.get(room, {}).get(user)
            if entry is not None:
                parts.append(entry)
        if not parts:
            return None
        newest = max(parts, key=lambda entry: entry["state_at"])
        names = [entry["name"] for entry in parts if entry["name"] is not None]
        return {
            "user_id": user,
            "name": names[0] if names else None,
            "connections": sum(entry["connections"] for entry in parts),
            "since": min(entry["since"] for entry in parts),
            "state": newest["state"],
        }

    def _changed(
        self, room: str, user: str, before: dict[str, Any] | None, skip: object = None
    ) -> None:
        """This replica's entry for (room, user) changed: tell the other replicas and the
        room's connections here."""
        local = self._local.get(room, {}).get(user)
        entry = None if local is None else local.entry()
        self.publish(
            {"kind": "change", "replica": self.replica, "room": room, "user": user, "entry": entry}
        )
        self._tell(room, user, before, self._merged(room, user), skip)

    def _tell(
        self,
        room: str,
        user: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        skip: object = None,
    ) -> None:
        if before == after:
            return
        view = self._view.setdefault(room, {})
        if after is None:
            view.pop(user, None)
            if not view:
                del self._view[room]
        else:
            view[user] = after
        project_id = room.removeprefix(PROJECT_ROOM_PREFIX)
        name: str
        payload: dict[str, Any]
        if after is None:
            name, payload = LEFT, {"project_id": project_id, "user_id": user}
        else:
            name = JOINED if before is None else UPDATED
            payload = {"project_id": project_id, "member": after}
        self._pending.setdefault(room, []).append((name, payload, skip))
        if self._schedule is None:
            self.flush()
        elif not self._flush_due:
            self._flush_due = True
            self._schedule(FLUSH_EVERY, self.flush)

    def flush(self) -> None:
        """Send the notices gathered since the last flush: each encoded once per kind of
        connection, and each connection's in one write (a room filling up costs a write per
        member and flush, not per member and change)."""
        self._flush_due = False
        pending, self._pending = self._pending, {}
        listed, self._listed = self._listed, {}
        for room, notices in pending.items():
            encoded: dict[tuple[object, int], Frame] = {}
            for local in self._local.get(room, {}).values():
                for connection in local.connections:
                    key = connection.notice_key()
                    frames: list[Frame] = []
                    for index in range(listed.get((connection, room), 0), len(notices)):
                        name, payload, skip = notices[index]
                        if connection is skip:
                            continue
                        frame = encoded.get((key, index))
                        if frame is None:
                            frame = encoded[key, index] = connection.notice(name, payload)
                        frames.append(frame)
                    if frames:
                        connection.push_all(frames)
