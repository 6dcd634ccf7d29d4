"""Counts as the commands print them: `1 event`, `2 events`, `0 records`."""

from __future__ import annotations

IRREGULAR = {"entry": "entries"}


def counted(count: int, noun: str) -> str:
    """The count and the noun, singular for exactly one, else plural.

    `noun` is the singular; its plural adds an `s` (the few irregular nouns the commands use
    are listed in `IRREGULAR`).
    """
    if count == 1:
        return f"{count} {noun}"
    last = noun.rsplit(" ", 1)[-1]
    plural = noun[: len(noun) - len(last)] + IRREGULAR.get(last, f"{last}s")
    return f"{count} {plural}"
