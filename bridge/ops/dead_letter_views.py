"""How `eventbridge dead-letters` prints dead letters: the per-reason table and one letter.

Everything printed from a message goes through `safe`, so no body or header can drive the
operator's terminal.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from bridge.ops.counting import counted
from bridge.ops.deadletter_records import LetterFilter, StoredDeadLetter
from bridge.ops.deadletter_redrive import REDRIVEN_HEADER
from schemas.codes import DeadLetterReason

BODY_PREVIEW = 2048
"""Characters of a body `show` prints without --full."""
EXAMPLE_WIDTH = 80
"""Characters of the example error `list` prints per reason."""
REASONS = [reason.value for reason in DeadLetterReason]


def described(selection: LetterFilter) -> str:
    """The filters in words, e.g. ` (reason invalid_json, project p1)`; empty without any."""
    parts = [f"reason {' or '.join(sorted(selection.reasons))}"] if selection.reasons else []
    if selection.project is not None:
        parts.append(f"project {selection.project}")
    return f" ({', '.join(parts)})" if parts else ""


def safe(text: str) -> str:
    """Escape control and format characters, so no message can drive the terminal."""
    return "".join(
        repr(char)[1:-1] if unicodedata.category(char).startswith("C") else char for char in text
    )


def letters(count: int) -> str:
    """`1 dead letter`, `2 dead letters`."""
    return counted(count, "dead letter")


def reason_order(reason: str) -> tuple[int, str]:
    """The contract's order, then any reason this version does not know, by name."""
    return (REASONS.index(reason), "") if reason in REASONS else (len(REASONS), reason)


def shortened(text: str, width: int) -> str:
    """The text cut to `width` characters, marked with `...` where cut."""
    return text if len(text) <= width else f"{text[: width - 3]}..."


def when(moment: datetime | None) -> str:
    """A timestamp in UTC to the second, or `-` if unknown."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"


@dataclass(slots=True)
class _Row:
    count: int
    oldest: datetime | None
    newest: datetime | None
    example: str


class ReasonTable:
    """Dead letters counted by reason, with the oldest and newest timestamp and an example error.

    Attributes:
        total: how many dead letters were added.
    """

    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}
        self.total = 0

    def add(self, letter: StoredDeadLetter) -> None:
        """Count one dead letter."""
        reason = letter.reason or "(no reason header)"
        row = self._rows.setdefault(reason, _Row(0, None, None, letter.error))
        row.count += 1
        self.total += 1
        if letter.timestamp is not None:
            row.oldest = min(filter(None, (row.oldest, letter.timestamp)))
            row.newest = max(filter(None, (row.newest, letter.timestamp)))

    def lines(self) -> list[str]:
        """The table, one row per reason in the contract's order, then the total."""
        if not self._rows:
            return []
        lines = [f"{'reason':<22} {'count':>6}  {'oldest':<20}  {'newest':<20}  example error"]
        for reason in sorted(self._rows, key=reason_order):
            row = self._rows[reason]
            lines.append(
                f"{safe(reason):<22} {row.count:>6}  {when(row.oldest):<20}  "
                f"{when(row.newest):<20}  {shortened(safe(row.example), EXAMPLE_WIDTH)}"
            )
        lines.append(f"{'total':<22} {self.total:>6}")
        return lines


def body_lines(letter: StoredDeadLetter, full: bool) -> list[str]:
    """The body: pretty JSON if it parses, else the bytes' repr; cut at 2 KiB unless `full`."""
    if letter.is_json:
        kind = "JSON"
        text = json.dumps(letter.document, indent=2, ensure_ascii=False)
    else:
        kind = "not JSON, shown as Python bytes"
        text = repr(letter.body)
    text = "\n".join(safe(line) for line in text.splitlines())
    more = len(text) - BODY_PREVIEW
    if not full and more > 0:
        text = f"{text[:BODY_PREVIEW]}\n... {more} more characters (--full prints them)"
    return [
        f"  body         {len(letter.body)} bytes, {kind}:",
        *(f"    {line}" for line in text.splitlines()),
    ]


def show_lines(number: int, letter: StoredDeadLetter, full: bool) -> list[str]:
    """One dead letter as `show` prints it: its headers, then its body."""
    offset = "-" if letter.offset is None else str(letter.offset)
    if letter.epoch:
        offset += f" (epoch {safe(letter.epoch)})"
    headers = letter.message.headers or {}
    fields = [
        ("reason", letter.reason or "-"),
        ("error", letter.error or "-"),
        ("offset", offset),
        ("routing key", letter.routing_key or "-"),
        ("message id", letter.message_id or "-"),
        ("timestamp", when(letter.timestamp)),
    ]
    if REDRIVEN_HEADER in headers:
        fields.append(("redriven", "yes: it was re-driven before and refused again"))
    return [
        f"--- dead letter {number} ---",
        *(f"  {name:<12} {safe(value)}" for name, value in fields),
        *body_lines(letter, full),
        "",
    ]
