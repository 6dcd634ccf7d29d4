"""What a join sends before the room's live events, once `resume.plan` has decided: missed
events from memory or read from the log (sent as they are read), the snapshot, a resync notice.

Run by the hub for each join (`CatchUps.begin`, the continuation a transport calls right after
the reply); it writes nothing of the hub's but each subscription's switch from held to live.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from bridge.core import resume
from bridge.core.connection import ClientConnection
from bridge.core.events import Event
from bridge.core.history import LastValues, RoomIndex
from bridge.core.rooms import Membership
from bridge.core.subscription import HubLimits, Subscription
from bridge.core.tally import Tally, bump
from bridge.errors import LogGapError, LogUnavailableError, TooManyEventsError
from schemas.codes import ResyncReason

logger = logging.getLogger(__name__)

CATCH_UP_QUEUE = 512
"""Frames a catch-up read from the log lets pile up for a client before it waits for the
client to take them (so a slow reader slows the read instead of filling memory)."""


class HubView(Protocol):
    """What a catch-up reads of the hub (structures a starting bridge swaps when its backfill
    is done, so they are read through the hub each time)."""

    @property
    def epoch(self) -> str:
        """The log's epoch."""
        ...

    state: LastValues
    index: RoomIndex
    state_complete: asyncio.Event


class CatchUps:
    """Runs what each join sends before live events, and cancels what is running at shutdown."""

    def __init__(
        self,
        hub: HubView,
        rooms: Membership,
        log: resume.RangeReader,
        limits: HubLimits,
        tally: Tally,
    ) -> None:
        self._hub = hub
        self._rooms = rooms
        self._log = log
        self._limits = limits
        self._log_reads = asyncio.Semaphore(limits.catchup_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._tally = tally

    def begin(
        self,
        connection: ClientConnection,
        room: str,
        subscription: Subscription,
        decided: resume.Plan,
        upto: int,
    ) -> None:
        if not self._rooms.current(connection, room, subscription):
            return  # left the room (or the bridge) meanwhile
        started = time.perf_counter()
        if isinstance(decided, resume.Missed):
            self._catch_up(connection, room, decided.events)
            self._go_live(connection, subscription)
            self._count("memory", started)
            return
        if isinstance(decided, resume.Snapshot) and self._hub.state_complete.is_set():
            self._resync(connection, room, subscription, decided.resync, upto)
            self._go_live(connection, subscription)
            self._count(_outcome(decided.resync, "live"), started)
            return
        if isinstance(decided, resume.Snapshot):
            # It waits for a starting bridge's state, which is not the client's doing: a busy
            # room must not cut it off meanwhile.
            subscription.spill = True
        task = asyncio.create_task(
            self._prepare(connection, room, subscription, decided, upto, started=started),
            name=f"catch-up-{connection.id}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _prepare(
        self,
        connection: ClientConnection,
        room: str,
        subscription: Subscription,
        decided: resume.Plan,
        upto: int,
        *,
        started: float,
    ) -> None:
        """What cannot be sent at once: missed events read from the log, or a snapshot that
        waits for a starting bridge's state."""
        reason: ResyncReason | None = None
        if isinstance(decided, resume.FromLog):
            reason = await self._from_log(connection, room, subscription, decided.since, upto)
        else:
            assert isinstance(decided, resume.Snapshot)
            reason = decided.resync
            try:
                await asyncio.wait_for(self._hub.state_complete.wait(), self._limits.snapshot_wait)
            except TimeoutError:
                reason = ResyncReason.UNAVAILABLE
        if not self._rooms.current(connection, room, subscription):
            return
        if reason is not None or not isinstance(decided, resume.FromLog):
            self._resync(connection, room, subscription, reason, upto)
        if subscription.spill:
            reason = await self._spilled(connection, room, subscription, upto) or reason
            if not self._rooms.current(connection, room, subscription):
                return
        self._go_live(connection, subscription)
        fresh = "log" if isinstance(decided, resume.FromLog) else "live"
        self._count(_outcome(reason, fresh), started)

    def _count(self, outcome: str, started: float) -> None:
        """Count a join's outcome and how long its catch-up took."""
        bump(self._tally.joins, outcome)
        self._tally.catchup.observe(time.perf_counter() - started)

    async def _from_log(
        self,
        connection: ClientConnection,
        room: str,
        subscription: Subscription,
        since: int,
        upto: int,
    ) -> ResyncReason | None:
        """Send the room's missed events read from the log, as they are read; the reason to
        resync if it cannot be done (a failure mid-way ends with the notice, never silently).

        The read ends at the room's newest event (the room index), so a quiet room's resume is
        short; one that would read more than `catchup_max_records` records is refused at once.
        """
        bound = min(upto, self._hub.index.bound(room))
        if bound <= since:
            return None  # nothing of this room was published after `since`
        if bound - since > self._limits.catchup_max_records:
            return ResyncReason.TOO_MANY
        try:
            async with self._log_reads:
                await self._stream(connection, room, subscription, since, bound)
        except TooManyEventsError:
            return ResyncReason.TOO_MANY
        except LogGapError:
            return ResyncReason.EXPIRED
        except LogUnavailableError as exc:
            logger.warning(
                "catch-up of %s for %s failed: %s",
                room,
                connection.id,
                exc,
                extra={"room": room, "connection_id": connection.id},
            )
            return ResyncReason.UNAVAILABLE
        return None

    async def _spilled(
        self, connection: ClientConnection, room: str, subscription: Subscription, after: int
    ) -> ResyncReason | None:
        """Send from the log the live events that overflowed the held ones (all of the room
        after `after` up to `spilled_upto`), range by range while more spill meanwhile; then
        stop spilling. If a range cannot be read, the client gets a resync notice (at the
        range's end) instead, never a silent gap; return its reason."""
        while (bound := subscription.spilled_upto) is not None:
            # Every event still held is newer than `bound`: the spill cleared them all.
            subscription.spilled_upto = None
            reason = await self._from_log(connection, room, subscription, after, bound)
            if not self._rooms.current(connection, room, subscription):
                return None
            if reason is not None:
                subscription.spill = False
                if subscription.spilled_upto is not None:  # spilled meanwhile: lost as well
                    bound = subscription.spilled_upto
                self._resync(connection, room, subscription, reason, bound)
                return reason
            after = bound
        subscription.spill = False
        return None

    async def _stream(
        self,
        connection: ClientConnection,
        room: str,
        subscription: Subscription,
        since: int,
        bound: int,
    ) -> None:
        """Send the room's events `since < offset <= bound` as the log yields them (each batch
        of the reader in one write), at the pace the client takes them; stop if it leaves the
        room."""
        sent, limit = 0, self._limits.catchup_max_events
        async for events in self._log.read(room, since, bound):
            if not self._rooms.current(connection, room, subscription):
                return
            owner = self._rooms.owner
            mine = [event for event in events if owner(connection, event) == room]
            if sent + len(mine) > limit:
                connection.deliver_backlog(mine[: limit - sent])
                raise TooManyEventsError(f"more than {limit} events to resume {room}")
            sent += len(mine)
            connection.deliver_backlog(mine)
            await connection.wait_drained(CATCH_UP_QUEUE)

    def _catch_up(self, connection: ClientConnection, room: str, events: Sequence[Event]) -> None:
        """Queue a room's missed events, skipping those another of its rooms delivers."""
        connection.deliver_backlog(
            event for event in events if self._rooms.owner(connection, event) == room
        )

    def _resync(
        self,
        connection: ClientConnection,
        room: str,
        subscription: Subscription,
        reason: ResyncReason | None,
        upto: int,
    ) -> None:
        """Queue the resync notice (if any) and the room's snapshot, which is older than what
        the room covers and is sent as it is."""
        if reason is not None:
            subscription.covered_after = max(subscription.covered_after, upto)
            payload = resume.notice(room, reason, self._hub.epoch, upto)
            connection.notify(resume.RESYNC_NOTICE, payload)
        if reason is not ResyncReason.UNAVAILABLE or self._hub.state_complete.is_set():
            connection.deliver_backlog(resume.snapshot_of(self._hub.state, room, upto))

    @staticmethod
    def _go_live(connection: ClientConnection, subscription: Subscription) -> None:
        """End the catch-up: queue the live events held meanwhile, then deliver directly."""
        held, subscription.held = subscription.held, None
        subscription.held_bytes = 0
        subscription.spill = False
        for event in held or ():
            connection.deliver(event)

    async def close(self) -> None:
        """Cancel every catch-up still running."""
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _outcome(reason: ResyncReason | None, otherwise: str) -> str:
    """A join's outcome label: `resync_<reason>` when it ended in a resync notice."""
    return otherwise if reason is None else f"resync_{reason}"
