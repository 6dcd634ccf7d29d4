"""W3C trace context for published events: the `traceparent` of the active OpenTelemetry span,
when `opentelemetry-api` is installed (`pip install 'eventbridge[otel]'`); without it, or outside
a span, events carry none and everything else works the same (docs/observability.md)."""

from __future__ import annotations

import importlib
from types import ModuleType

_trace: ModuleType | None = None
_looked = False


def _opentelemetry_trace() -> ModuleType | None:
    """`opentelemetry.trace`, or None when the package is not installed (looked up once)."""
    global _trace, _looked  # noqa: PLW0603 - an optional import, resolved on first use
    if not _looked:
        _looked = True
        try:
            _trace = importlib.import_module("opentelemetry.trace")
        except ImportError:
            _trace = None
    return _trace


def current_traceparent() -> str | None:
    """The active span's trace context as a `traceparent` (`00-<trace>-<span>-<flags>`), or
    None when there is no valid span (or no OpenTelemetry)."""
    trace = _opentelemetry_trace()
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
