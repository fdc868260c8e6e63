"""Export every event contract as JSON Schema (for MLS integrators and downstream consumers).

Run `python -m shared.contracts.schemas` to regenerate `docs/schemas/`; a test keeps it current.
"""

from __future__ import annotations

import json
from pathlib import Path

from shared.contracts import EVENTS

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def render_schemas() -> dict[str, str]:
    files = {}
    topics: dict[str, list[str]] = {}
    for (topic, ce_type), _ in sorted(EVENTS.items()):
        topics.setdefault(ce_type, []).append(topic)
    by_type = {ce_type: event_type for (_, ce_type), event_type in EVENTS.items()}
    for ce_type, event_type in sorted(by_type.items()):
        schema = event_type.model.model_json_schema(mode="serialization")
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:ratings:event:{ce_type}",
            "x-ce-type": ce_type,
            "x-topics": topics[ce_type],
            "x-key": event_type.key_field,
            **schema,
        }
        files[f"{ce_type}.json"] = json.dumps(schema, indent=2, sort_keys=False) + "\n"
    return files


def main() -> None:
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for old in SCHEMA_DIR.glob("*.json"):
        old.unlink()
    for name, text in render_schemas().items():
        (SCHEMA_DIR / name).write_text(text)
    print(f"wrote {len(render_schemas())} schemas to {SCHEMA_DIR}")


if __name__ == "__main__":
    main()
