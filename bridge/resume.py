"""Resume and snapshots: what a join sends before the room's live events.

A join is answered at once; what follows is queued by a *continuation* that runs right after the
reply, while live events of the room are held back (`Subscription.pending`), so the client sees:
reply → catch-up (or resync notice, or snapshot) → live events, with no gap and no duplicate.

- Join without `since`: the project's snapshot (latest agent and deployment state).
- Join with `since`: every event of the room after `since`, from memory when the buffers still
  cover it, else read from the log; or `resync-required` with a reason, then the snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bridge.decoding import DeadLetter, Event, decode_record
from bridge.delivery import ClientConnection, Subscription
from bridge.eventlog import LogClosedError, LogGapError, read_range
from bridge.history import TooManyEventsError
from schemas.routing import ACTIVITY_FEED

if TYPE_CHECKING:
    from bridge.service import BridgeService

logger = logging.getLogger(__name__)

Continuation = Callable[[], None]
RESYNC_NOTICE = "resync-required"


class ResyncReason(StrEnum):
    """Why a resume cannot be served; sent in `resync-required`."""

    EXPIRED = "expired"
    """The log no longer holds the events after `since` (retention removed them)."""
    EPOCH_MISMATCH = "epoch_mismatch"
    """`since` belongs to another incarnation of the log."""
    FUTURE_OFFSET = "future_offset"
    """`since` is newer than anything the bridge has seen."""
    TOO_MANY = "too_many"
    """More events were missed than the catch-up limit allows."""
    UNAVAILABLE = "unavailable"
    """The log could not be read (the broker is unreachable); try again later."""


class Resumer:
    """Plans and runs what each join sends before live events."""

    def __init__(self, service: BridgeService) -> None:
        self._service = service
        self._log_reads = asyncio.Semaphore(service.settings.catchup_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    def join(
        self, connection: ClientConnection, room: str, since: int | None, epoch: str | None
    ) -> tuple[dict[str, Any], Continuation]:
        """Put the connection in the room (live events held back) and return the reply fields
        and the continuation to run right after the reply is queued."""
        service = self._service
        head = service.head
        reply = {"room": room, "epoch": service.epoch, "offset": head}
        if room in connection.rooms:
            return reply, _nothing
        reason = self._refusal(since, epoch, head)
        covered = head if since is None or reason is not None else since
        service.rooms.join(connection, room, Subscription(covered_after=covered, pending=[]))
        if since is None or reason is not None:
            snapshot = self._snapshot(room, head)
            notice = None if reason is None else self._notice(room, reason, head)
            return reply, lambda: self._send(
                connection, room, head, snapshot=snapshot, notice=notice
            )
        if service.history.covers(since):
            try:
                events = service.history.between(
                    room, since, head, limit=service.settings.catchup_max_events
                )
            except TooManyEventsError:
                snapshot = self._snapshot(room, head)
                notice = self._notice(room, ResyncReason.TOO_MANY, head)
                return reply, lambda: self._send(
                    connection, room, head, snapshot=snapshot, notice=notice
                )
            return reply, lambda: self._send(connection, room, head, missed=events)
        return reply, lambda: self._spawn(connection, room, since, head)

    def _refusal(self, since: int | None, epoch: str | None, head: int) -> ResyncReason | None:
        if since is None:
            return None
        if epoch is not None and epoch != self._service.epoch:
            return ResyncReason.EPOCH_MISMATCH
        if since > head:
            return ResyncReason.FUTURE_OFFSET
        return None

    def _snapshot(self, room: str, upto: int) -> list[Event]:
        if room == ACTIVITY_FEED:
            return []
        project_id = room.removeprefix("project:")
        return [e for e in self._service.state.snapshot(project_id) if e.offset <= upto]

    def _notice(self, room: str, reason: ResyncReason, upto: int) -> dict[str, Any]:
        """The resync notice; its `offset` is where live delivery of the room resumes after."""
        return {"room": room, "reason": reason.value, "epoch": self._service.epoch, "offset": upto}

    def epoch_changed(self) -> None:
        """The log was re-created: every joined room restarts at its beginning, and its members
        are told so (`epoch_mismatch`) before its new events."""
        for connection in self._service.rooms.connections():
            for room, subscription in connection.rooms.items():
                subscription.covered_after = -1
                notice = self._notice(room, ResyncReason.EPOCH_MISMATCH, -1)
                connection.push(connection.notice(RESYNC_NOTICE, notice))

    def _send(
        self,
        connection: ClientConnection,
        room: str,
        upto: int,
        *,
        missed: Sequence[Event] = (),
        snapshot: Sequence[Event] = (),
        notice: dict[str, Any] | None = None,
    ) -> None:
        """Queue the resync notice, the snapshot and the missed events (whichever are given),
        then release the live events held meanwhile."""
        subscription = connection.rooms.get(room)
        if subscription is None or subscription.pending is None:
            return  # left the room meanwhile
        if notice is not None:
            subscription.covered_after = max(subscription.covered_after, upto)
            connection.push(connection.notice(RESYNC_NOTICE, notice))
        # The snapshot is older than what the room covers: it is sent as it is.
        connection.push_backlog(connection.frame(event) for event in snapshot)
        connection.catch_up(room, missed)
        connection.go_live(room)

    def _spawn(self, connection: ClientConnection, room: str, since: int, upto: int) -> None:
        task = asyncio.create_task(
            self._from_log(connection, room, since, upto), name=f"catch-up-{connection.id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _from_log(
        self, connection: ClientConnection, room: str, since: int, upto: int
    ) -> None:
        """Read the room's events after `since` from the log, then go live; all or nothing."""
        service = self._service
        limit = service.settings.catchup_max_events
        subscription = connection.rooms.get(room)
        reason: ResyncReason | None = None
        events: list[Event] = []
        try:
            async with self._log_reads:
                events = await self._read(room, since, upto, limit)
        except TooManyEventsError:
            reason = ResyncReason.TOO_MANY
        except LogGapError:
            reason = ResyncReason.EXPIRED
        except (LogClosedError, ConnectionError, OSError, TimeoutError, RuntimeError) as exc:
            logger.warning("catch-up of %s for %s failed: %s", room, connection.id, exc)
            reason = ResyncReason.UNAVAILABLE
        if connection.rooms.get(room) is not subscription:
            return
        if reason is None:
            self._send(connection, room, upto, missed=events)
        else:
            snapshot = self._snapshot(room, upto)
            notice = self._notice(room, reason, upto)
            self._send(connection, room, upto, snapshot=snapshot, notice=notice)

    async def _read(self, room: str, since: int, upto: int, limit: int) -> list[Event]:
        service = self._service
        connection = service.amqp_connection
        if connection is None:
            raise LogClosedError("the bridge is not connected to the broker")
        events: list[Event] = []
        wanted = _routing_key_filter(room)
        async for record in read_range(
            connection, service.names.log, since, upto, prefetch=service.settings.consumer_prefetch
        ):
            if record.marker is not None or not wanted(record.routing_key):
                continue  # skipped before decoding: other rooms' records are most of a scan
            event = decode_record(record, max_bytes=service.settings.max_message_bytes)
            if isinstance(event, DeadLetter) or room not in event.rooms:
                continue
            events.append(event)
            if len(events) > limit:
                raise TooManyEventsError
        return events

    async def close(self) -> None:
        """Cancel catch-ups still reading the log."""
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _routing_key_filter(room: str) -> Callable[[str], bool]:
    """A cheap test on routing keys that keeps every record of `room` (and a few others, which
    decoding then sorts out)."""
    if room == ACTIVITY_FEED:
        return lambda key: key.endswith(".activity_created")
    prefix = f"project.{room.removeprefix('project:')}."
    return lambda key: key.startswith(prefix)


def _nothing() -> None:
    return None
