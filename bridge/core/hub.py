"""The hub: the one owner of rooms, subscriptions, recent history, snapshot state, the room
index and the log position (head and epoch).

The log consumer hands it every record in log order (`advance`, `publish`); the transports add
and remove connections and join and leave rooms on their behalf; nothing else writes this state.
A join is answered at once and enters the room in a *held* state: live events of the room wait
in the subscription while what comes first (snapshot, missed events, or a resync notice) is
queued by a continuation that runs right after the reply. So a client sees reply → catch-up →
live events, with no gap and no duplicate at the switch (docs/delivery-guarantees.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterator, Sequence

from bridge.core import resume
from bridge.core.backfill import Backfill
from bridge.core.catchup import CatchUps
from bridge.core.connection import ClientConnection
from bridge.core.events import Event
from bridge.core.history import LastValues, RoomBuffers, RoomIndex
from bridge.core.rooms import Membership
from bridge.core.subscription import HubLimits, Joined, Subscription, nothing
from bridge.core.tally import Tally, bump
from bridge.errors import RequestError
from schemas.codes import CloseReason, ErrorCode, ResyncReason

logger = logging.getLogger(__name__)


class Hub:
    """Rooms, subscriptions, history, state and the log position of one bridge replica."""

    def __init__(self, limits: HubLimits, log: resume.RangeReader) -> None:
        self.limits = limits
        self.history = RoomBuffers(limits.history_max_events, limits.history_max_bytes)
        """Recent events per room (read-only outside the hub)."""
        self.state = LastValues(limits.state_max_entries, limits.state_max_bytes)
        """Latest state events per project (read-only outside the hub)."""
        self.index = RoomIndex(limits.room_index_max)
        """The newest offset of each room (read-only outside the hub)."""
        self.state_complete = asyncio.Event()
        """Set while the snapshot state is complete (cleared while a starting bridge rebuilds
        it)."""
        self.state_complete.set()
        self._log = log
        self._head = -1
        self._epoch = ""
        self._rooms = Membership()
        self._backfill: Backfill | None = None
        self._head_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.tally = Tally()
        """What this replica counts for `/metrics` (see `bridge.core.tally` for who writes what)."""
        self._catchups = CatchUps(self, self._rooms, log, limits, self.tally)
        self._batch: list[ClientConnection] | None = None
        self.events_routed = 0

    # -- the log position ----------------------------------------------------------------

    @property
    def head(self) -> int:
        """The newest log offset this bridge has handled (-1: none yet)."""
        return self._head

    @property
    def epoch(self) -> str:
        """The epoch of the log being read ("" before the first session)."""
        return self._epoch

    def advance(self, offset: int) -> None:
        """A record at `offset` was handled (event, marker or dead letter): the head moves."""
        if offset <= self._head:
            return
        self._head = offset
        if self._head_waiters:
            waiting, self._head_waiters = self._head_waiters, []
            for target, future in waiting:
                if target > offset:
                    self._head_waiters.append((target, future))
                elif not future.done():
                    future.set_result(None)

    def set_epoch(self, epoch: str) -> None:
        """Adopt the log's epoch. If it changed (the log was re-created), the position and the
        state start over, and every joined room restarts at its beginning: its members are told
        so (`epoch_mismatch`) before its new events."""
        previous, self._epoch = self._epoch, epoch
        if not previous or previous == epoch:
            return
        logger.warning("the log was re-created (epoch %s → %s)", previous, epoch)
        self._head = -1
        self._backfill = None
        self.state.reset()
        self.index.reset(floor=-1)
        self.state_complete.set()
        for connection, room, subscription in self._rooms.all_subscriptions():
            subscription.covered_after = -1
            payload = resume.notice(room, ResyncReason.EPOCH_MISMATCH, epoch, -1)
            connection.notify(resume.RESYNC_NOTICE, payload)

    def start_at(self, offset: int) -> None:
        """Live reading starts at `offset` (nothing older is in memory): the history and the
        room index are complete above it from now on."""
        self.history.reset(floor=offset - 1)
        self.index.reset(floor=offset - 1)

    # -- rebuilding what is older than the start -----------------------------------------

    def begin_backfill(
        self,
        *,
        live_from: int,
        history_from: int,
        state: LastValues | None = None,
        index: RoomIndex | None = None,
    ) -> Backfill:
        """Start rebuilding history, state and index from the records below `live_from` (see
        `bridge.core.backfill`); fresh joins wait for the state until `finish_backfill`."""
        self._backfill = Backfill(
            self.limits, live_from=live_from, history_from=history_from, state=state, index=index
        )
        self.state_complete.clear()
        return self._backfill

    def finish_backfill(self, backfill: Backfill) -> None:
        """Adopt what the backfill rebuilt, with the live events since appended, in one step."""
        if self._backfill is not backfill:
            return  # abandoned (the log was re-created meanwhile)
        backfill.absorb_live()
        self.history, self.state, self.index = backfill.history, backfill.state, backfill.index
        self._backfill = None
        self.state_complete.set()

    # -- live events -----------------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Deliver the events published inside in as few writes as possible: a client that
        keeps up gets all of its frames in one write, when the block ends (the consumer wraps
        the records the broker delivered together in one batch)."""
        if self._batch is not None:
            yield  # already inside one
            return
        batch: list[ClientConnection] = []
        self._batch = batch
        try:
            yield
        finally:
            self._batch = None
            for connection in batch:
                connection.flush_batch()

    def publish(self, event: Event) -> None:
        """A new valid event of the log: remember it and hand it to its rooms' members, once per
        connection (through the room it joined first, when it is in several)."""
        self.advance(event.offset)
        self.history.record(event)
        self.state.record(event)
        self.index.record(event)
        if self._backfill is not None:
            self._backfill.live.append(event)
        self.events_routed += 1
        tally = self.tally
        events = tally.events
        events[event.type] = events.get(event.type, 0) + 1
        if event.replayed:
            tally.replayed += 1
        rooms, batch = event.rooms, self._batch
        if len(rooms) == 1:
            # Deliveries are counted per transport here, once per event, not per client.
            for transport, count in self._rooms.transports_in(rooms[0]).items():
                counts = tally.transports.get(transport) or tally.transport(transport)
                counts.deliveries += count
                counts.bytes += count * len(event.payload)
            for connection, subscription in self._rooms.members_of(rooms[0]).items():
                self._deliver(connection, subscription, event, batch)
            return
        for room in rooms:
            for connection, subscription in self._rooms.members_of(room).items():
                if self._rooms.owner(connection, event) == room:
                    connection.tally.deliveries += 1
                    connection.tally.bytes += len(event.payload)
                    self._deliver(connection, subscription, event, batch)

    @staticmethod
    def _deliver(
        connection: ClientConnection,
        subscription: Subscription,
        event: Event,
        batch: list[ClientConnection] | None,
    ) -> None:
        held = subscription.held
        if held is None:
            connection.deliver(event, batch)
            return
        held.append(event)
        subscription.held_bytes += event.size
        if len(held) > connection.limit or subscription.held_bytes > connection.max_bytes:
            if subscription.spill:  # the catch-up reads these from the log instead
                subscription.spilled_upto = event.offset
                held.clear()
                subscription.held_bytes = 0
            else:
                connection.drop_as_slow()

    # -- connections and rooms -------------------------------------------------------------

    def add(self, connection: ClientConnection) -> None:
        """Register a new connection (in no room yet)."""
        self._rooms.add(connection)
        connection.tally = self.tally.transport(connection.transport)
        connection.tally.opened += 1

    def remove(self, connection: ClientConnection) -> None:
        """Forget a connection and take it out of every room."""
        if self._rooms.remove(connection):
            reason = connection.close_reason
            bump(connection.tally.closed, "client" if reason is None else str(reason))

    def rooms_of(self, connection: ClientConnection) -> Sequence[str]:
        """The rooms a connection is in, in the order it joined them."""
        return self._rooms.rooms_of(connection)

    def connections(self) -> Iterator[ClientConnection]:
        """Every registered connection."""
        return self._rooms.connections()

    def counts(self) -> Counter[str]:
        """Connections per transport."""
        return self._rooms.counts()

    def members(self, room: str) -> int:
        """How many connections are in `room`."""
        return self._rooms.size(room)

    async def join(
        self,
        connection: ClientConnection,
        room: str,
        since: int | None = None,
        epoch: str | None = None,
    ) -> Joined:
        """Put the connection in the room, live events held back; return the reply fields and
        the continuation to run right after the reply is queued.

        Raises:
            RequestError: the connection is closing (`not_connected`) or already in as many
                rooms as allowed (`too_many_rooms`).
        """
        subscriptions = self._rooms.subscriptions_of(connection)
        if room not in subscriptions:
            limit = self.limits.max_rooms_per_connection
            if len(subscriptions) >= limit:
                raise RequestError(
                    ErrorCode.TOO_MANY_ROOMS,
                    f"a connection may be in at most {limit} rooms; leave one first",
                )
            if since is not None and since > self._head and epoch in (None, self._epoch):
                await self._wait_for_head(since)
                subscriptions = self._rooms.subscriptions_of(connection)
        head = self._head
        reply = {"room": room, "epoch": self._epoch, "offset": head}
        if room in subscriptions:
            return Joined(reply, nothing)
        decided = resume.plan(
            room,
            since,
            epoch,
            head=head,
            current_epoch=self._epoch,
            history=self.history,
            state=self.state,
            limit=self.limits.catchup_max_events,
        )
        covered = head if since is None or isinstance(decided, resume.Snapshot) else since
        subscription = self._rooms.enter(connection, room, covered)
        return Joined(
            reply, lambda: self._catchups.begin(connection, room, subscription, decided, head)
        )

    def leave(self, connection: ClientConnection, room: str) -> None:
        """Take a connection out of a room (leaving a room one is not in is not an error)."""
        self._rooms.leave(connection, room)

    async def _wait_for_head(self, offset: int) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._head_waiters.append((offset, future))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(future, self.limits.future_grace)

    # -- shutdown ------------------------------------------------------------------------------

    async def close(self, reason: CloseReason, *, within: float) -> None:
        """Cancel catch-ups, close every connection with `reason` (waiting at most `within`
        seconds for the clients to take their close), then stop every writer."""
        await self._catchups.close()
        connections = list(self._rooms.connections())
        for connection in connections:
            if connection.close_reason is None:
                connection.close_reason = reason
        closing = asyncio.gather(
            *(connection.disconnect(reason) for connection in connections),
            return_exceptions=True,
        )
        try:
            await asyncio.wait_for(closing, within)
        except TimeoutError:
            logger.warning("some clients did not acknowledge the close in time")
        await asyncio.gather(
            *(connection.stop() for connection in connections), return_exceptions=True
        )
