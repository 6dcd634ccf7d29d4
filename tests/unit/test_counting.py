"""How commands print counts."""

from __future__ import annotations

import pytest

from bridge.ops.counting import counted


@pytest.mark.parametrize(
    ("count", "noun", "printed"),
    [
        (1, "event", "1 event"),
        (0, "event", "0 events"),
        (2, "record", "2 records"),
        (1, "dead letter", "1 dead letter"),
        (3, "dead letter", "3 dead letters"),
        (2, "state entry", "2 state entries"),
    ],
)
def test_one_is_singular_and_every_other_count_plural(count: int, noun: str, printed: str) -> None:
    """Exactly one thing is printed in the singular, any other count in the plural."""
    assert counted(count, noun) == printed
