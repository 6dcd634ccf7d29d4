"""Write the JSON Schema files in `schemas/jsonschema/` and the AsyncAPI document.

`jsonschema/` holds one file per event type, the envelope, and `protocol.json` (every request,
reply and notice of the client protocol). `asyncapi.json` describes producers and clients of
both transports (`schemas.asyncapi`). Run `python -m schemas.export` after changing a model;
tests fail while the files are stale. Producers and clients in other languages validate against
these files; `clients/js` generates its TypeScript types from them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from schemas.asyncapi import asyncapi_document
from schemas.envelope import Envelope
from schemas.events import EVENT_MODELS, event_schema
from schemas.protocol import protocol_schema

SCHEMA_DIR = Path(__file__).parent / "jsonschema"
ASYNCAPI_FILE = Path(__file__).parent / "asyncapi.json"


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
    files["protocol.json"] = _render(protocol_schema())
    return files


def rendered_asyncapi() -> str:
    """Return the JSON text of `asyncapi.json` (for the default prefix, `eventbridge`)."""
    return json.dumps(asyncapi_document(), indent=2) + "\n"


def _render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> int:
    """Rewrite the schema files and report which changed."""
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, text in rendered_schemas().items():
        path = SCHEMA_DIR / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path}")
    text = rendered_asyncapi()
    if not ASYNCAPI_FILE.exists() or ASYNCAPI_FILE.read_text() != text:
        ASYNCAPI_FILE.write_text(text)
        print(f"wrote {ASYNCAPI_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
