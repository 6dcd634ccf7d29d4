"""The AMQP side of the bridge: connections, topology, the event log, dead letters, and the
consumer that tails the log into the hub.

- `connect`: named connections, start-up retries, passwords kept out of logs.
- `topology`: every broker object's name and arguments, declared idempotently.
- `eventlog`: reading the log stream in order, and finding its ends.
- `ranges`: reading a range of the log by offset (replays; resumes' catch-ups, in batches).
- `meta`: the log's epoch and the dead-letter checkpoint, kept beside the log.
- `deadletters`: copying invalid records to the dead-letter queue.
- `timing`: what the consumer measures for the lag and latency metrics.
- `consumer`: `LogConsumer`, the supervisor that stays connected and feeds the hub.
- `presence`: `PresenceLink`, presence between replicas over the `<prefix>.presence` exchange.

May import: `bridge.core`, `bridge.upstream.aiormq`, `bridge.settings`, `bridge.errors`,
`producers` and `schemas`.
"""
