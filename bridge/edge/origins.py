"""Which browser origins may open a connection, for both transports.

A browser always sends an `Origin` header on a WebSocket handshake and on a cross-origin
request; other clients (Python, Node, curl) usually send none. The policy accepts:

- a request without an `Origin` header (not a browser page, so the browser's same-origin
  protection is not what stands between it and the bridge);
- a request from the bridge's own origin (the scheme of the request and its `Host` header), so
  the dashboard at `/` works wherever the bridge is reached;
- an origin listed in `EVENTBRIDGE_ALLOWED_ORIGINS`: the header must equal a listed origin
  exactly (ignoring case). Listed origins are normalised to the form browsers send,
  `scheme://host[:port]` in lower case without a default port; `*` in the list accepts any.

Anything else — another site, a look-alike host, another scheme or port, `null` (sandboxed
frames, `file:` pages) — is refused before the connection is accepted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from schemas.origins import ANY_ORIGIN, normalize_origin

logger = logging.getLogger(__name__)

_WEB_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


class OriginPolicy:
    """Decides whether a connection's `Origin` is accepted (see the module docstring)."""

    def __init__(self, allowed: Iterable[str]) -> None:
        origins = list(allowed)
        self.any = ANY_ORIGIN in origins
        self.allowed = frozenset(normalize_origin(o) for o in origins if o != ANY_ORIGIN)

    def allows(self, origins: list[str], scope: Mapping[str, Any]) -> bool:
        """Whether a request with these `Origin` header values may connect.

        Args:
            origins: every `Origin` header of the request (usually none or one; more than one
                is refused).
            scope: the ASGI scope of the request, for its scheme and `Host` header.
        """
        if self.any or not origins or origins == [""]:
            return True
        if len(origins) > 1:
            return False
        # Browsers send an origin already in this form; anything else is no listed origin.
        origin = origins[0].lower()
        return origin in self.allowed or origin == _own_origin(scope)

    def allows_engineio(self, origin: str | None, environ: Mapping[str, Any]) -> bool:
        """The check in the form Engine.IO calls (`cors_allowed_origins` as a callable).

        Engine.IO joins repeated headers with a comma; it calls this only when an `Origin` is
        present, and again (with `None` possible) to decide CORS response headers.
        """
        if origin is None:
            return False
        scope = environ.get("asgi.scope", {})
        return self.allows(_header_values(scope, b"origin") or [origin], scope)


def _header_values(scope: Mapping[str, Any], name: bytes) -> list[str]:
    return [
        value.decode("latin-1") for key, value in scope.get("headers", []) if key.lower() == name
    ]


def _own_origin(scope: Mapping[str, Any]) -> str | None:
    """The origin the request was addressed to: its scheme (ws → http) and `Host` header."""
    hosts = _header_values(scope, b"host")
    scheme = _WEB_SCHEMES.get(str(scope.get("scheme", "http")))
    if len(hosts) != 1 or scheme is None:
        return None
    try:
        return normalize_origin(f"{scheme}://{hosts[0]}")
    except ValueError:
        return None


def origin_of(scope: Mapping[str, Any]) -> str:
    """The request's `Origin` header for a log line (shortened, printable)."""
    values = _header_values(scope, b"origin")
    return ",".join(values)[:120] if values else "(none)"
