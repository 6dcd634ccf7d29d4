"""The client edge: everything a browser or an HTTP client talks to.

- `server`: one replica put together (hub, consumer, app) and its HTTP server.
- `app`: the ASGI application (FastAPI wrapped by Socket.IO).
- `transports/`: Socket.IO and the native WebSocket, behind one connection class.
- `requests`: join/leave requests, validated and authorized, for both transports.
- `presence`: presence for both transports and `GET /api/projects/<id>/presence`.
- `auth`, `origins`, `limits`: who may connect, from where, and how fast.
- `client_events`: the events clients publish (`new-activity`, `step-*`).
- `health`, `dashboard`: `/health`, `/ready`, the live dashboard and `/api/projects`.
- `metrics/`: `/metrics` (Prometheus) and `/api/operator`, read from the counts of `core.tally`.

May import: `bridge.core`, `bridge.broker` (only `server`, which composes the replica),
`bridge.upstream`, `bridge.settings`, `bridge.errors`, `producers` and `schemas`.
"""
