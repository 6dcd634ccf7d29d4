"""The service's log: to stderr, as text or one JSON object per line, with tokens and query
strings kept out of every line.

Tokens never reach the log, by three means: uvicorn's and the websockets library's debug output
(request lines, headers, frames) stays off even at debug level; every line loses its URLs' query
strings (a browser may put a token in one: `/ws/ai/p1?token=…`, and uvicorn's WebSocket
handshake lines quote the path with it), whatever the query holds; and anything shaped like a
JWT that some other logger lets through is redacted.

With `EVENTBRIDGE_LOG_FORMAT=json` each line is one JSON object: `time`, `level`, `logger`,
`message`, and the ids a log call names in `extra` (`event_id`, `offset`, `connection_id`,
`room`, `transport`, `reason`, `traceparent`); docs/observability.md.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Literal

JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*")
"""Anything shaped like a compact JWT (its header always starts with `{"` = `eyJ`)."""

QUERY_PATTERN = re.compile(r"\?[^\s\"'<>]*=[^\s\"'<>]*")
"""A URL's query string: from `?` up to the next blank or quote, holding at least one `=` (so
a question mark ending a sentence stays)."""

QUERY_DROPPED = "?<query dropped>"

IDS = ("event_id", "offset", "connection_id", "room", "transport", "reason", "traceparent")
"""The ids a log call may name in `extra`, which JSON lines carry as fields of their own."""


def _clean(text: str) -> str:
    if "?" in text:
        text = QUERY_PATTERN.sub(QUERY_DROPPED, text)
    if "eyJ" in text:
        text = JWT_PATTERN.sub("<token>", text)
    return text


class RedactTokens(logging.Filter):
    """Drop query strings from a log line and replace anything shaped like a JWT by `<token>`,
    whoever logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Clean the formatted message (and the exception text) in place; keep the record."""
        message = record.getMessage()
        cleaned = _clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _clean(record.exc_text)
        return True


class JsonLines(logging.Formatter):
    """One JSON object per record: time (UTC, RFC 3339), level, logger, message, the ids named
    in `extra`, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in IDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value if isinstance(value, (int, float)) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = _clean(self.formatException(record.exc_info))
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


class DropTransportErrors(logging.Filter):
    """Drop aiormq's "error when creating transport" records.

    aiormq logs one each time a connection attempt fails, and the bridge logs its own line for
    the same attempt (`bridge.broker.connect`, `bridge.broker.consumer`) saying what it does
    next: without this filter every retry prints two lines.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but those."""
        return not record.getMessage().startswith("error when creating transport")


def configure_logging(level: str, log_format: Literal["text", "json"] = "text") -> None:
    """Log to stderr, as text with timestamps or as JSON lines; keep libraries that log
    payloads quiet (see the module docstring)."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactTokens())
        if log_format == "json":
            handler.setFormatter(JsonLines())
    for noisy in ("aio_pika", "aiormq", "engineio", "socketio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("aiormq.connection").addFilter(DropTransportErrors())
    for chatty in ("uvicorn.error", "websockets"):  # their debug lines carry URLs and frames
        logging.getLogger(chatty).setLevel(max(logging.INFO, logging.getLogger().level))
