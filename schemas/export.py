"""Write the JSON Schema files in `schemas/jsonschema/`: one per event type, plus the envelope.

Run `python -m schemas.export` after changing a model; a test fails while the files are stale.
Producers in other languages validate against these files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from schemas.envelope import Envelope
from schemas.events import EVENT_MODELS

SCHEMA_DIR = Path(__file__).parent / "jsonschema"


def event_schema(event_type: str) -> dict[str, Any]:
    """Return the JSON Schema of a whole event (envelope and data) of one type."""
    envelope = Envelope.model_json_schema()
    data = EVENT_MODELS[event_type].model_json_schema()
    defs = {**envelope.pop("$defs", {}), **data.pop("$defs", {})}
    properties = dict(envelope["properties"])
    properties["type"] = {"const": event_type, "title": "Type"}
    properties["data"] = data
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://eventbridge.dev/schemas/v1/{event_type}.json",
        "title": f"eventbridge v1 {event_type} event",
        "type": "object",
        "properties": properties,
        "required": envelope["required"],
        "additionalProperties": True,
    }
    if defs:
        schema["$defs"] = defs
    return schema


def rendered_schemas() -> dict[str, str]:
    """Return file name → JSON text for every schema file that belongs in `jsonschema/`."""
    files = {
        f"{event_type}.json": json.dumps(event_schema(event_type), indent=2, sort_keys=True) + "\n"
        for event_type in EVENT_MODELS
    }
    envelope = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://eventbridge.dev/schemas/v1/envelope.json",
        **Envelope.model_json_schema(),
    }
    files["envelope.json"] = json.dumps(envelope, indent=2, sort_keys=True) + "\n"
    return files


def main() -> int:
    """Rewrite the schema files and report which changed."""
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, text in rendered_schemas().items():
        path = SCHEMA_DIR / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
