"""Routing: which connections are in which room, and handing each event to its rooms' members."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from bridge.decoding import Event
from bridge.delivery import ClientConnection, Subscription


class Rooms:
    """Room membership for every connection of this bridge, both transports together."""

    def __init__(self) -> None:
        self._members: dict[str, set[ClientConnection]] = {}
        self._connections: set[ClientConnection] = set()
        self._joins = 0

    def add(self, connection: ClientConnection) -> None:
        """Register a new connection (in no room yet)."""
        self._connections.add(connection)

    def remove(self, connection: ClientConnection) -> None:
        """Forget a connection and take it out of every room."""
        for room in tuple(connection.rooms):
            self.leave(connection, room)
        self._connections.discard(connection)

    def join(self, connection: ClientConnection, room: str, subscription: Subscription) -> None:
        """Put a connection in a room; from now on it gets the room's events."""
        self._members.setdefault(room, set()).add(connection)
        self._joins += 1
        subscription.joined = self._joins
        connection.rooms[room] = subscription

    def leave(self, connection: ClientConnection, room: str) -> None:
        """Take a connection out of a room."""
        members = self._members.get(room)
        if members is not None:
            members.discard(connection)
            if not members:
                del self._members[room]
        connection.rooms.pop(room, None)

    def dispatch(self, event: Event) -> None:
        """Hand a live event to every member of its rooms, once per connection.

        A connection in several of the event's rooms gets it through the one it joined first
        (`ClientConnection.owner`), the same rule catch-ups follow.
        """
        if len(event.rooms) == 1:
            room = event.rooms[0]
            for connection in self._members.get(room, ()):
                connection.deliver(event, room)
            return
        for room in event.rooms:
            for connection in self._members.get(room, ()):
                if connection.owner(event) == room:
                    connection.deliver(event, room)

    def connections(self) -> Iterator[ClientConnection]:
        """Every registered connection."""
        return iter(tuple(self._connections))

    def counts(self) -> Counter[str]:
        """Connections per transport."""
        return Counter(connection.transport for connection in self._connections)
