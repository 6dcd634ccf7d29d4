"""The only places that reach into libraries' internals, one module per library.

- `uvicorn`: a bound on request heads, the shutdown order, each WebSocket's transport.
- `engineio`: ending a session without waiting, a session's backlog, unparsable frames.
- `socketio`: binary attachments, undecodable packets, reserved event names, session ids.
- `aiormq`: a consumer cancelled by the broker.

Each module lists what it relies on as `SEAMS` (checked by `tests/unit/test_upstream.py`) and
says beside each use why no public API serves; pyproject.toml bounds each library below the
next release that may change those internals (the package imports none of them itself, so a
command that needs one library loads only that one). May import: `schemas`, `bridge.errors` and the
libraries themselves — nothing else of the bridge.
"""
