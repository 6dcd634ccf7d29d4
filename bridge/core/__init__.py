"""The delivery core: events, rooms, history, resume and per-connection outboxes.

- `events`: a log record's bytes → a validated `Event` with its frames, or a `DeadLetter`.
- `history`: recent events per room and the latest state per project, bounded in memory.
- `connection`: `ClientConnection`, one client's bounded outbound queue and writer.
- `resume`: what a join sends before live events, and the `RangeReader` it reads the log with.
- `hub`: `Hub`, the one owner of rooms, subscriptions, history, state, head and epoch.
- `presence`: `Presence`, the one owner of who is in each project room, on every replica;
  `presence_messages`: what replicas tell each other about it.
- `tally`: the plain counts behind `/metrics`, kept where things happen.

May import: `schemas`, `bridge.errors` and the standard library — no AMQP, no HTTP, no settings
object (the hub is given its `HubLimits`). Everything here can be unit-tested without a broker.
"""
