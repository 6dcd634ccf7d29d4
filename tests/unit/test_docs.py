"""Documentation that cannot go stale: the configuration table matches the settings."""

from __future__ import annotations

import re
from pathlib import Path

from bridge.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def documented_rows(path: Path) -> dict[str, tuple[str, str]]:
    """Parse `| `EVENTBRIDGE_X` | `default` | meaning |` rows of a Markdown table."""
    rows: dict[str, tuple[str, str]] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"\| `EVENTBRIDGE_([A-Z_]+)` \| `([^`]*)` \| (.+) \|$", line)
        if match:
            rows[match.group(1).lower()] = (match.group(2), match.group(3))
    return rows


def test_configuration_page_documents_every_setting_with_its_default() -> None:
    """docs/configuration.md lists every setting, with the default and description in the code."""
    rows = documented_rows(ROOT / "docs" / "configuration.md")
    assert sorted(rows) == sorted(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        default, meaning = rows[name]
        assert default == str(field.default), name
        assert meaning == field.description, name


def test_readme_configuration_table_matches_the_settings() -> None:
    """The README's configuration table names only real settings with their real defaults."""
    rows = documented_rows(ROOT / "README.md")
    assert rows, "the README has no configuration table"
    for name, (default, _) in rows.items():
        assert name in Settings.model_fields, name
        assert default == str(Settings.model_fields[name].default), name


def test_readme_says_how_eventbridge_gets_on_the_path_before_using_it() -> None:
    """The README opens with `make demo` and `make test`, and says how to reach the
    `eventbridge` command in .venv (and how to choose the demo's port) before its first use."""
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", readme, flags=re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]
    first_use = re.search(r"^eventbridge ", readme, flags=re.MULTILINE)
    assert first_use is not None
    before = readme[: first_use.start()]
    assert "source .venv/bin/activate" in before
    assert ".venv/bin/eventbridge" in before
    assert "EVENTBRIDGE_PORT=" in before
