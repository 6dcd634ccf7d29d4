"""How `eventbridge replay` shows its work: one progress line while it runs, then a report."""

from __future__ import annotations

import time
from typing import TextIO

from bridge.ops.counting import counted
from bridge.ops.replay import Republisher
from bridge.ops.replay_selection import Selection
from schemas.envelope import format_timestamp


class Progress:
    """One progress line on stderr: redrawn at most 5 times a second on a terminal, else a
    plain line every 1,000 events."""

    def __init__(self, stream: TextIO, every: int = 1000) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._every = every
        self._next_line = every
        self._drawn_at = 0.0
        self.started = time.monotonic()

    def _draw(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._drawn_at >= 0.2:
            self._drawn_at = now
            self._stream.write(f"\r\x1b[K{text}")
            self._stream.flush()

    def selecting(self, selection: Selection, upto: int) -> None:
        """Show how far the selection has read (terminal only)."""
        if self._tty:
            self._draw(
                f"selecting: offset {selection.last_read} of {upto}, "
                f"{len(selection.offsets)} selected"
            )

    def replaying(self, republisher: Republisher, total: int, *, final: bool = False) -> None:
        """Show how many replays are confirmed, how fast, and through which offset."""
        done = republisher.confirmed
        rate = done / max(time.monotonic() - self.started, 1e-9)
        text = (
            f"replayed {done}/{counted(total, 'event')}, {rate:.1f}/s, confirmed through offset "
            f"{republisher.confirmed_through if done else '-'}"
        )
        if self._tty:
            self._draw(text, force=final)
            if final:
                self._stream.write("\n")
        elif done >= self._next_line:
            print(text, file=self._stream, flush=True)
            self._next_line = (done // self._every + 1) * self._every

    def clear(self) -> None:
        """Remove the selection line before the report."""
        if self._tty and self._drawn_at:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
        self.started = time.monotonic()


def print_dry_run(selection: Selection) -> None:
    """What a dry run would replay: how many, the first few, and what was skipped."""
    offsets = selection.offsets
    where = f" (original offsets {offsets[0]} to {offsets[-1]})" if offsets else ""
    print(f"dry run: {counted(len(offsets), 'event')} selected{where}; nothing was sent")
    if selection.sample:
        print(f"first {len(selection.sample)}:")
        print(f"  {'offset':>8}  {'occurred_at':<24}  {'type':<19}  {'project':<16}  id")
        for event in selection.sample:
            project = event.project_id or "(global)"
            print(
                f"  {event.offset:>8}  {format_timestamp(event.occurred_at):<24}  "
                f"{event.type:<19}  {project:<16}  {event.id}"
            )
    print_read(selection)


def print_summary(selection: Selection, republisher: Republisher, elapsed: float) -> None:
    """The report after a replay: selected, republished and confirmed, read, elapsed."""
    offsets = selection.offsets
    where = f" (original offsets {offsets[0]} to {offsets[-1]})" if offsets else ""
    print(f"selected:    {counted(len(offsets), 'event')}{where}")
    through = (
        f", confirmed through original offset {republisher.confirmed_through}"
        if republisher.confirmed
        else ""
    )
    print(f"republished: {republisher.confirmed} to {republisher.destination}{through}")
    print_read(selection)
    print(f"elapsed:     {elapsed:.2f} s")


def print_read(selection: Selection) -> None:
    """How much of the log was read and what was skipped."""
    span = f" (offsets {selection.first_read} to {selection.last_read})" if selection.read else ""
    print(f"read:        {counted(selection.read, 'record')}{span}")
    print(
        f"skipped:     {selection.invalid} invalid, {selection.replays} earlier replays, "
        f"{selection.markers} bridge markers"
    )
