"""Room membership: which connection is in which room, with what subscription, and through which
of its rooms a connection gets an event. Owned and written by the hub only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

from bridge.core.connection import ClientConnection
from bridge.core.events import Event
from bridge.core.subscription import Subscription
from bridge.errors import RequestError
from schemas.codes import ErrorCode


class Membership:
    """Every connection of this bridge and its subscriptions, both transports together."""

    def __init__(self) -> None:
        self._members: dict[str, dict[ClientConnection, Subscription]] = {}
        self._transports: dict[str, dict[str, int]] = {}
        """Per room, its members per transport (kept at joins and leaves, so counting a live
        event's deliveries costs one step per transport, not per member)."""
        self._rooms: dict[ClientConnection, dict[str, Subscription]] = {}
        self._joins = 0

    def add(self, connection: ClientConnection) -> None:
        """Register a new connection (in no room yet)."""
        self._rooms.setdefault(connection, {})

    def remove(self, connection: ClientConnection) -> bool:
        """Forget a connection and take it out of every room; False if it was not registered."""
        subscriptions = self._rooms.pop(connection, None)
        if subscriptions is None:
            return False
        for room in tuple(subscriptions):
            self._drop_member(connection, room)
        return True

    def subscriptions_of(self, connection: ClientConnection) -> dict[str, Subscription]:
        """The connection's subscriptions by room.

        Raises:
            RequestError: `not_connected`, the connection was removed (it is closing).
        """
        subscriptions = self._rooms.get(connection)
        if subscriptions is None:
            raise RequestError(ErrorCode.NOT_CONNECTED, "the connection is closing")
        return subscriptions

    def enter(self, connection: ClientConnection, room: str, covered_after: int) -> Subscription:
        """Put a connection in a room, held (live events wait until `go_live`)."""
        self._joins += 1
        subscription = Subscription(covered_after=covered_after, joined=self._joins, held=[])
        self._rooms[connection][room] = subscription
        self._members.setdefault(room, {})[connection] = subscription
        kinds = self._transports.setdefault(room, {})
        kinds[connection.transport] = kinds.get(connection.transport, 0) + 1
        return subscription

    def leave(self, connection: ClientConnection, room: str) -> None:
        """Take a connection out of a room (not being in it is not an error)."""
        subscriptions = self._rooms.get(connection)
        if subscriptions is not None and subscriptions.pop(room, None) is not None:
            self._drop_member(connection, room)

    def _drop_member(self, connection: ClientConnection, room: str) -> None:
        members = self._members.get(room)
        if members is not None and members.pop(connection, None) is not None:
            kinds = self._transports[room]
            kinds[connection.transport] -= 1
            if not members:
                del self._members[room]
                del self._transports[room]

    def current(self, connection: ClientConnection, room: str, subscription: Subscription) -> bool:
        """Whether `subscription` is still the connection's place in the room."""
        return self._rooms.get(connection, {}).get(room) is subscription

    def members_of(self, room: str) -> dict[ClientConnection, Subscription]:
        """The room's members and their subscriptions (not to be changed by the caller)."""
        return self._members.get(room, _EMPTY)

    def transports_in(self, room: str) -> dict[str, int]:
        """The room's members per transport (not to be changed by the caller)."""
        return self._transports.get(room, _NO_TRANSPORTS)

    def owner(self, connection: ClientConnection, event: Event) -> str | None:
        """The room through which a connection gets `event`: of the event's rooms that cover it,
        the one joined first, so a connection in two matching rooms gets each event once,
        whichever it joined or resumed first."""
        subscriptions = self._rooms.get(connection, _EMPTY_SUBSCRIPTIONS)
        owner: str | None = None
        earliest = 0
        for room in event.rooms:
            subscription = subscriptions.get(room)
            if subscription is None or subscription.covered_after >= event.offset:
                continue
            if owner is None or subscription.joined < earliest:
                owner, earliest = room, subscription.joined
        return owner

    def rooms_of(self, connection: ClientConnection) -> Sequence[str]:
        """The rooms a connection is in, in the order it joined them."""
        return tuple(self._rooms.get(connection, ()))

    def all_subscriptions(self) -> Iterator[tuple[ClientConnection, str, Subscription]]:
        """Every (connection, room, subscription)."""
        for connection, subscriptions in self._rooms.items():
            for room, subscription in subscriptions.items():
                yield connection, room, subscription

    def connections(self) -> Iterator[ClientConnection]:
        """Every registered connection."""
        return iter(tuple(self._rooms))

    def counts(self) -> Counter[str]:
        """Connections per transport."""
        return Counter(connection.transport for connection in self._rooms)

    def size(self, room: str) -> int:
        """How many connections are in `room`."""
        return len(self._members.get(room, ()))


_EMPTY: dict[ClientConnection, Subscription] = {}
_EMPTY_SUBSCRIPTIONS: dict[str, Subscription] = {}
_NO_TRANSPORTS: dict[str, int] = {}
