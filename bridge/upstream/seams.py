"""What the bridge relies on inside the libraries it extends, written down so it can be checked.

Each module of `bridge.upstream` lists its `SEAMS`: the classes it subclasses or reaches into,
the methods it overrides or calls (with their parameter names) and the attributes it reads.
`problems()` compares one seam with the installed library; `tests/unit/test_upstream.py` runs it
over every seam, so an upgrade that renames or reshapes any of them fails the tests instead of
silently changing what the bridge does. pyproject.toml bounds each library below its next
release that may change these internals.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Seam:
    """One class (or module) of a library, and what of it the bridge relies on.

    Attributes:
        target: the dotted path of the class or module, e.g. `engineio.async_socket.AsyncSocket`.
        why: why no public API serves (said once here, beside the code that uses it).
        methods: method name → the names of its parameters after `self`, in order.
        attributes: names the target has, declares, or assigns to its instances (`self.x = `)
            somewhere in its class hierarchy's source.
    """

    target: str
    why: str
    methods: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    attributes: tuple[str, ...] = ()


def resolve(path: str) -> object:
    """Import the object at a dotted path (module, then attributes)."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:]:
            found = getattr(found, name)
        return found
    raise ImportError(f"cannot import {path}")


def problems(seam: Seam, target: object | None = None) -> list[str]:
    """What no longer matches between `seam` and the library (or the given stand-in `target`);
    an empty list when everything the bridge relies on is still there."""
    found: list[str] = []
    if target is None:
        try:
            target = resolve(seam.target)
        except (ImportError, AttributeError) as exc:
            return [f"{seam.target}: not found ({exc})"]
    for name, expected in seam.methods.items():
        method = getattr(target, name, None)
        if method is None or not callable(method):
            found.append(f"{seam.target}.{name}: no such method")
            continue
        parameters = tuple(inspect.signature(method).parameters)
        if parameters[:1] == ("self",):
            parameters = parameters[1:]
        if parameters != expected:
            found.append(f"{seam.target}.{name}: parameters {parameters}, expected {expected}")
    found.extend(
        f"{seam.target}: no attribute {name!r}"
        for name in seam.attributes
        if not hasattr(target, name) and not _declared(target, name)
    )
    return found


def _declared(target: object, name: str) -> bool:
    """Whether a class (or one of its bases) annotates `name` or assigns `self.<name>`."""
    if not isinstance(target, type):
        return False
    assignment = re.compile(rf"\bself\.{re.escape(name)}\s*(?::[^=\n]+)?=[^=]")
    for klass in target.__mro__:
        if name in inspect.get_annotations(klass):
            return True
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if assignment.search(source):
            return True
    return False
