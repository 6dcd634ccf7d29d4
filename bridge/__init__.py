"""The eventbridge service: consume the event log, decode, route to rooms, deliver to browsers.

Layers, each a subpackage that imports only the layers below it (checked by the import-linter
contract in pyproject.toml; see docs/architecture.md):

```
bridge.cli        the `eventbridge` command and its sub-commands
bridge.ops        operator tools: replay, dead letters, status, tail
bridge.edge       the client edge: HTTP app, transports, auth, origins, limits, health, dashboard
bridge.broker     the AMQP side: connections, topology, the log reader, dead-letter writer, consumer
bridge.core       the delivery core: events, rooms (the hub), history, resume, outboxes
bridge.upstream   the few places that reach into libraries' internals, one module per library
```

Beside them, imported by every layer: `bridge.settings` (the one settings object) and
`bridge.errors` (the one error tree). Below everything: `schemas` (the wire contract) and
`producers` (the publishing SDK).
"""
