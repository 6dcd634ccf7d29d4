"""Browser origins as the bridge compares them: `scheme://host[:port]`, lower case, the default
port dropped (the `Origin` header of a client, and `EVENTBRIDGE_ALLOWED_ORIGINS`)."""

from __future__ import annotations

from urllib.parse import urlsplit

ANY_ORIGIN = "*"
DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(value: str) -> str:
    """Return `value` as `scheme://host[:port]` (lower case, default port dropped).

    Raises:
        ValueError: `value` is not an http(s) origin: it has a path, a query, user info, a bad
            port, another scheme, or it is `null`.
    """
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{text[:80]!r} is not an origin: {exc}") from exc
    scheme = parts.scheme.lower()
    if (
        scheme not in DEFAULT_PORTS
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise ValueError(
            f"{text[:80]!r} is not an origin; write scheme://host[:port] with scheme http or "
            "https and nothing after the host or port (no path, not even '/')"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"
