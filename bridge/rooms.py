"""Routing: which connections are in which room, and handing each event to its rooms' members."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from bridge.decoding import Event
from bridge.delivery import ClientConnection


class Rooms:
    """Room membership for every connection of this bridge, both transports together."""

    def __init__(self) -> None:
        self._members: dict[str, set[ClientConnection]] = {}
        self._connections: set[ClientConnection] = set()

    def add(self, connection: ClientConnection) -> None:
        """Register a new connection (in no room yet)."""
        self._connections.add(connection)

    def remove(self, connection: ClientConnection) -> None:
        """Forget a connection and take it out of every room."""
        for room in tuple(connection.rooms):
            self.leave(connection, room)
        self._connections.discard(connection)

    def join(self, connection: ClientConnection, room: str) -> None:
        """Put a connection in a room; from now on it gets the room's events."""
        self._members.setdefault(room, set()).add(connection)
        connection.rooms.add(room)

    def leave(self, connection: ClientConnection, room: str) -> None:
        """Take a connection out of a room."""
        members = self._members.get(room)
        if members is not None:
            members.discard(connection)
            if not members:
                del self._members[room]
        connection.rooms.discard(room)

    def dispatch(self, event: Event) -> int:
        """Offer an event to every member of its rooms; return how many offers were made.

        A connection in two of the event's rooms is offered it twice and queues it once
        (see `ClientConnection.offer`).
        """
        offers = 0
        for room in event.rooms:
            members = self._members.get(room)
            if members:
                for connection in members:
                    connection.offer(event)
                offers += len(members)
        return offers

    def connections(self) -> Iterator[ClientConnection]:
        """Every registered connection."""
        return iter(tuple(self._connections))

    def counts(self) -> Counter[str]:
        """Connections per transport."""
        return Counter(connection.transport for connection in self._connections)
