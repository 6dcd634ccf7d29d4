"""Operator tools: what the `eventbridge` commands for operators do, apart from the terminal.

- `replay`: select events of the log by time or offset and publish them again.
- `deadletter_records`, `deadletter_admin`, `deadletter_redrive`: list, show, re-drive and purge
  the dead-letter queue; `dead_letter_views` renders them.
- `status`: one report of the broker, the log, retention, dead letters and a bridge's health.
- `tailview`: one readable line per log record, for `eventbridge tail`.
- `migrate` and `teardown`: move a prefix's classic queues to quorum queues; survey and delete
  every object of a prefix (`eventbridge topology`).
- `rabbitmqctl`: what only the local broker's `rabbitmqctl` tells (a stream's consumers);
  `counting`: counts as commands print them.

May import: `bridge.broker`, `bridge.core`, `bridge.settings`, `bridge.errors`, `producers` and
`schemas` — never `bridge.edge` (operator tools run without the HTTP server).
"""
