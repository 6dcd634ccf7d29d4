"""The library internals the bridge relies on (`bridge.upstream`) are still there, and the check
that says so fails when a library changes under it."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from bridge.upstream import aiormq, engineio, socketio, uvicorn
from bridge.upstream.seams import Seam, problems

SEAMS: tuple[Seam, ...] = (*uvicorn.SEAMS, *engineio.SEAMS, *socketio.SEAMS, *aiormq.SEAMS)
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@pytest.mark.parametrize("seam", SEAMS, ids=lambda seam: seam.target)
def test_every_internal_the_bridge_relies_on_is_still_there(seam: Seam) -> None:
    """Each subclassed method keeps its parameters and each attribute read still exists in the
    installed library."""
    assert problems(seam) == []


class ReshapedSocket:
    """A stand-in for engine.io's socket after an imagined upgrade: `close` lost its `abort`
    parameter and the queue was renamed."""

    def __init__(self) -> None:
        self.packets: list[object] = []
        self.closed = False

    async def close(self, wait: bool = True, reason: str | None = None) -> None:
        """Close without an abort flag."""


def test_the_check_fails_on_a_reshaped_class() -> None:
    """Pointed at a class whose method and attribute changed, the check names both."""
    seam = next(s for s in engineio.SEAMS if s.target == "engineio.async_socket.AsyncSocket")
    found = problems(seam, ReshapedSocket)
    assert any("close: parameters ('wait', 'reason')" in problem for problem in found), found
    assert any("no attribute 'queue'" in problem for problem in found), found
    assert not any("'closed'" in problem for problem in found), found


def test_the_check_fails_when_a_class_is_gone() -> None:
    """A target that no longer exists is reported, not skipped."""
    assert problems(Seam("engineio.async_socket.NoSuchSocket", why="test")) != []


@pytest.mark.parametrize(
    "distribution", ["python-socketio", "python-engineio", "uvicorn", "aio-pika", "aiormq"]
)
def test_libraries_with_relied_on_internals_are_bounded_above(distribution: str) -> None:
    """pyproject.toml caps each library whose internals the bridge uses, and the installed
    version is inside the range."""
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    requirement = next(
        Requirement(line) for line in dependencies if Requirement(line).name == distribution
    )
    assert any(spec.operator == "<" for spec in requirement.specifier), requirement
    installed = Version(importlib.metadata.version(distribution))
    assert requirement.specifier.contains(installed), (requirement, installed)
