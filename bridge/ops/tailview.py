"""How `eventbridge tail` shows a log record: filtered, then one line of time, offset, project,
type and summary (or the delivered JSON payload).

Each event type gets a short human summary of its `data` (`agent-1 ▓▓▓▓▓░░░░░ 50% generating`)
and a color by kind (status, progress, generations, errors, activities, deployments). Errors and
failed statuses are red; invalid records are dimmed. Everything taken from a message is escaped,
so a producer's control characters cannot move the cursor or recolor the operator's terminal.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.broker.eventlog import LogRecord, decode_record
from bridge.core.events import DeadLetter

RESET = "\x1b[0m"
DIM = "\x1b[2m"
BOLD = "\x1b[1m"
RED = "\x1b[31m"
GREEN = "\x1b[32m"
YELLOW = "\x1b[33m"
BLUE = "\x1b[34m"
MAGENTA = "\x1b[35m"
CYAN = "\x1b[36m"

TYPE_COLORS = {
    "agent_status": CYAN,
    "progress_update": BLUE,
    "generation_complete": GREEN,
    "error": BOLD + RED,
    "activity_created": MAGENTA,
    "step_updated": MAGENTA,
    "step_completed": MAGENTA,
    "deployment_status": YELLOW,
    "deployment_log": YELLOW,
}
"""Kinds of event are told apart by color: status, progress, results, errors, activities and
workflow steps, deployments."""

FAILED_STATUSES = frozenset({"failed", "failure", "error", "errored"})
"""Statuses (of agents and deployments) shown in red."""

TYPE_WIDTH = len("generation_complete")
PROJECT_WIDTH = 12
OFFSET_WIDTH = 6
TIME_WIDTH = len("00:00:00.000")
TEXT_LIMIT = 240
"""Longest text taken from one field of `data`; longer text is cut with an ellipsis."""

_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(value: object, limit: int = TEXT_LIMIT) -> str:
    """One line of printable text: control and bidi characters escaped, cut at `limit`."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\t", " ")
    text = _UNSAFE.sub(lambda match: repr(match.group())[1:-1], text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bar(fraction: object, cells: int = 10) -> str:
    """A progress bar and percentage, e.g. `▓▓▓▓▓░░░░░ 50%`."""
    if not isinstance(fraction, int | float) or isinstance(fraction, bool):
        return "?%"
    fraction = min(max(float(fraction), 0.0), 1.0)
    filled = round(fraction * cells)
    return f"{'▓' * filled}{'░' * (cells - filled)} {round(fraction * 100)}%"


def _words(*parts: object) -> str:
    return " ".join(clean(part) for part in parts if part not in (None, ""))


def _with_note(text: str, note: object) -> str:
    if note in (None, "") or clean(note) == text:  # a summary that only repeats the line
        return text
    return f"{text} — {clean(note)}"


def summarize(event_type: str, data: dict[str, Any]) -> str:  # noqa: PLR0911 - one line per type
    """A short human summary of an event's `data`, e.g. `alice approved plan.tf`."""
    get = data.get
    if event_type == "agent_status":
        return _with_note(_words(get("agent_id"), get("status")), get("message"))
    if event_type == "progress_update":
        text = _words(get("agent_id"), bar(get("progress")), get("stage"))
        return _with_note(text, get("message"))
    if event_type == "generation_complete":
        artifacts = [a.get("name") for a in get("artifacts") or [] if isinstance(a, dict)]
        names = ", ".join(clean(name, 60) for name in artifacts[:3] if name is not None)
        more = f" and {len(artifacts) - 3} more" if len(artifacts) > 3 else ""
        plural = "artifact" if len(artifacts) == 1 else "artifacts"
        text = f"{_words(get('agent_id'))} generated {len(artifacts)} {plural}"
        return _with_note(f"{text}: {names}{more}" if names else text, get("summary"))
    if event_type == "error":
        retry = "(retryable)" if get("retryable") else "(not retryable)"
        return _words(get("agent_id"), get("code"), get("message"), retry)
    if event_type == "activity_created":
        text = _words(get("actor"), get("action"), get("target"))
        summary = get("summary") if clean(get("summary") or "") != text else None
        priority = get("priority")
        if priority not in (None, "normal"):
            text += f" [{clean(priority)}]"
        return _with_note(text, summary)
    if event_type in ("step_updated", "step_completed"):
        step = f"{clean(get('workflow_id'))}/{clean(get('step_id'))}"
        done = "completed" if event_type == "step_completed" else None
        status = f"→ {clean(get('status'))}" if get("status") else None
        by = f"by {clean(get('user_id'))}" if get("user_id") else None
        text = _words(step, done, status, by)
        changes = get("changes")
        if isinstance(changes, dict) and changes:
            text += f"; changed {clean(', '.join(map(str, changes)))}"
        return _with_note(text, get("result"))
    if event_type == "deployment_status":
        progress = bar(get("progress")) if get("progress") is not None else None
        text = _words(get("deployment_id"), get("status"), progress)
        return _with_note(text, get("message"))
    if event_type == "deployment_log":
        return f"{_words(get('deployment_id'), get('stream'))} | {clean(get('line'), 1000)}"
    return clean(data)  # a type newer than this command: its data as JSON


def is_alarming(event_type: str, data: dict[str, Any]) -> bool:
    """Whether the event reports a failure: an error, a failed status, a stderr line."""
    if event_type == "error":
        return True
    if event_type in ("agent_status", "deployment_status"):
        return str(data.get("status", "")).lower() in FAILED_STATUSES
    return event_type == "deployment_log" and data.get("stream") == "stderr"


def local_time(occurred_at: object) -> str:
    """An RFC 3339 time as local `HH:MM:SS.mmm` (or `?` padded if it cannot be read)."""
    try:
        moment = datetime.fromisoformat(str(occurred_at)).astimezone()
    except ValueError:
        return "?".ljust(TIME_WIDTH)
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


@dataclass(frozen=True, slots=True)
class Painter:
    """Wraps text in ANSI colors, or leaves it alone when color is off."""

    enabled: bool

    def __call__(self, text: str, color: str) -> str:
        """Return `text` in `color` when color is on."""
        return f"{color}{text}{RESET}" if self.enabled and color else text


def event_line(payload: dict[str, Any], paint: Painter) -> str:
    """The line for one event: its payload is the envelope plus `offset`."""
    event_type = str(payload.get("type"))
    data = payload.get("data")
    data = data if isinstance(data, dict) else {}
    project = payload.get("project_id")
    summary = summarize(event_type, data)
    if payload.get("replayed"):
        summary += f" (replay of {payload.get('replay_of')})"
    alarming = is_alarming(event_type, data)
    # A stderr line keeps its deployment color; only its text turns red.
    failed = alarming and event_type != "deployment_log"
    type_color = RED if failed else TYPE_COLORS.get(event_type, "")
    return "  ".join(
        (
            paint(local_time(payload.get("occurred_at")), DIM),
            paint(str(payload.get("offset")).rjust(OFFSET_WIDTH), DIM),
            clean(project if project is not None else "global").ljust(PROJECT_WIDTH),
            paint(clean(event_type).ljust(TYPE_WIDTH), type_color),
            paint(summary, RED) if alarming else summary,
        )
    )


def dead_letter_line(offset: int, routing_key: str, dead: DeadLetter, paint: Painter) -> str:
    """The dimmed line for an invalid record: where it was published and why it is refused."""
    project, event_type = key_parts(routing_key)
    if project is None:
        project = "global" if event_type is not None else "?"
    text = "  ".join(
        (
            " " * TIME_WIDTH,
            str(offset).rjust(OFFSET_WIDTH),
            clean(project).ljust(PROJECT_WIDTH),
            clean(event_type or "?").ljust(TYPE_WIDTH),
            f"dead letter: {dead.reason} — {clean(dead.error)}",
        )
    )
    return paint(text, DIM)


def dead_letter_json(offset: int, routing_key: str, dead: DeadLetter) -> str:
    """The `--json` line for an invalid record (it has no `type`, so readers can tell it apart)."""
    return json.dumps(
        {
            "offset": offset,
            "dead_letter": {
                "reason": str(dead.reason),
                "error": dead.error,
                "routing_key": routing_key,
            },
        },
        ensure_ascii=False,
    )


def key_parts(routing_key: str) -> tuple[str | None, str | None]:
    """Project (None for a global key) and type, as far as a possibly malformed key says."""
    parts = routing_key.split(".")
    if parts[0] == "project" and len(parts) == 3:
        return parts[1], parts[2]
    if parts[0] == "global" and len(parts) == 2:
        return None, parts[1]
    return None, None


@dataclass(frozen=True, slots=True)
class View:
    """What to show and how."""

    projects: frozenset[str]
    types: frozenset[str]
    json: bool
    paint: Painter
    max_bytes: int

    def wants(self, project: str | None, event_type: str | None) -> bool:
        """Whether the filters let an event of this project and type through."""
        if self.projects and project not in self.projects:
            return False
        return not self.types or event_type in self.types

    def line(self, record: LogRecord) -> str | None:
        """The line to print for one record, or None if it is filtered out."""
        decoded = decode_record(record, max_bytes=self.max_bytes)
        if isinstance(decoded, DeadLetter):
            project, event_type = key_parts(record.routing_key)
            if not self.wants(project, event_type):
                return None
            if self.json:
                return dead_letter_json(record.offset, record.routing_key, decoded)
            return dead_letter_line(record.offset, record.routing_key, decoded, self.paint)
        if not self.wants(decoded.project_id, decoded.type):
            return None
        if self.json:
            return decoded.payload.decode()
        return event_line(json.loads(decoded.payload), self.paint)
