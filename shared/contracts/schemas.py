"""Export every event contract as JSON Schema (for MLS integrators and downstream consumers).

Run `python -m shared.contracts.schemas` to regenerate `docs/schemas/`; a test keeps it current.
Strict writers, tolerant readers (docs/design.md 2.2): for an event this system publishes,
`<type>.json` is the writer's schema (`additionalProperties: false` at every level: nothing
else is ever sent) and `<type>.reader.json` what a consumer should accept (unknown properties
allowed, to be ignored: a later release may add optional fields). For an event another system
publishes to us, `<type>.json` is what our consumers accept, unknown properties included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.contracts import EVENTS, EventType

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"

WRITTEN_ELSEWHERE = {
    "mls.agent.upserted.v1": "the MLS",
    "mls.transaction.closed.v1": "the MLS",
    "lead.assigned.v1": "the lead/CRM system",
}
"""Event types other systems publish and this system only reads."""

WRITER = "writer: this system publishes exactly these properties and no others"
READER = "reader: unknown properties are allowed and ignored; the known ones must be valid"


def tolerant(schema: Any) -> Any:
    """The schema with every `additionalProperties: false` turned into `true`, at any depth."""
    if isinstance(schema, dict):
        return {
            key: True if key == "additionalProperties" and value is False else tolerant(value)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [tolerant(item) for item in schema]
    return schema


def _document(
    ce_type: str,
    event_type: EventType,
    topics: list[str],
    role: str,
    written_by: str,
    body: dict[str, Any],
) -> str:
    suffix = ":reader" if role == READER and ce_type not in WRITTEN_ELSEWHERE else ""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:ratings:event:{ce_type}{suffix}",
        "x-ce-type": ce_type,
        "x-topics": topics,
        "x-key": event_type.key_field,
        "x-written-by": written_by,
        "x-schema-role": role,
        **body,
    }
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def render_schemas() -> dict[str, str]:
    files = {}
    topics: dict[str, list[str]] = {}
    by_type: dict[str, EventType] = {}
    for event_type in EVENTS.values():  # a type may travel on more than one topic
        topics.setdefault(event_type.ce_type, []).append(str(event_type.topic))
        by_type[event_type.ce_type] = event_type
    for ce_type, event_type in sorted(by_type.items()):
        on = sorted(topics[ce_type])
        reader = tolerant(event_type.model.model_json_schema(mode="validation"))
        if ce_type in WRITTEN_ELSEWHERE:
            files[f"{ce_type}.json"] = _document(
                ce_type, event_type, on, READER, WRITTEN_ELSEWHERE[ce_type], reader
            )
            continue
        writer = event_type.model.model_json_schema(mode="serialization")
        files[f"{ce_type}.json"] = _document(ce_type, event_type, on, WRITER, "this system", writer)
        files[f"{ce_type}.reader.json"] = _document(
            ce_type, event_type, on, READER, "this system", reader
        )
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
