"""Tolerant readers, strict writers (SYSTEM.md §4, docs/design.md 2.2): a consumer ignores the
fields a producer adds and still validates the known ones; what we publish stays exact."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from shared.cloudevents import InvalidEvent, decode, encode, validate_data
from shared.contracts import EVENTS
from shared.contracts.mls import TransactionClosed
from shared.contracts.participation import ParticipationChanged
from shared.contracts.schemas import READER, WRITER, WRITTEN_ELSEWHERE, render_schemas
from tests.unit.shared.test_contracts import SYSTEM_TRANSACTION


def _closing_with_additions() -> dict[str, Any]:
    """What an MLS a release ahead of us might send: a price, and more inside the property,
    a representation and a client."""
    closing: dict[str, Any] = json.loads(json.dumps(SYSTEM_TRANSACTION))
    closing["list_price"] = 450_000
    closing["property"]["unit"] = "4B"
    closing["representations"][0]["commission_split"] = {"percent": 3}
    closing["representations"][0]["clients"][0]["preferred_language"] = "es"
    return closing


def _consumed(data: dict[str, Any]) -> TransactionClosed:
    record = encode("mls.transaction.closed.v1", data, source="/mls", key="T-1")
    return validate_data(decode(record.key, record.value, record.headers), TransactionClosed)


def test_a_closing_with_a_list_price_and_nested_additions_is_read() -> None:
    event = _consumed(_closing_with_additions())
    assert event == TransactionClosed.model_validate(SYSTEM_TRANSACTION)


@pytest.mark.parametrize(
    ("path", "wrong"),
    [
        (("kind",), "rent"),
        (("closed_at",), "20 Nov 2026"),
        (("property", "postcode"), ""),
        (("representations", 0, "clients", 0, "email"), "not an address"),
    ],
)
def test_a_wrong_known_field_is_still_refused_beside_the_additions(
    path: tuple[str | int, ...], wrong: object
) -> None:
    closing = _closing_with_additions()
    target: Any = closing
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = wrong
    with pytest.raises(InvalidEvent) as refused:
        _consumed(closing)
    assert refused.value.reason == "schema_validation_failed"
    assert ".".join(str(step) for step in path) in refused.value.detail


def test_a_nul_in_an_ignored_field_harms_nothing() -> None:
    closing = {**_closing_with_additions(), "mls_note": "\x00"}
    assert _consumed(closing).transaction_id == "T-1"


def test_an_event_built_in_python_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="list_price"):
        TransactionClosed.model_validate(_closing_with_additions())
    with pytest.raises(ValidationError, match="extra"):
        ParticipationChanged(  # type: ignore[call-arg]
            agent_id="A-1",
            mode="opt_in_public",
            reason="agent_choice",
            changed_at="2026-11-20T15:00:00Z",
            note="hi",
        )


def _object_schemas(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, dict):
        own = [schema] if schema.get("type") == "object" and "properties" in schema else []
        return own + [s for value in schema.values() for s in _object_schemas(value)]
    if isinstance(schema, list):
        return [s for item in schema for s in _object_schemas(item)]
    return []


def test_the_schemas_of_what_we_publish_are_strict_and_their_readers_tolerant() -> None:
    files = {name: json.loads(text) for name, text in render_schemas().items()}
    for ce_type in {e.ce_type for e in EVENTS.values()} - set(WRITTEN_ELSEWHERE):
        writer, reader = files[f"{ce_type}.json"], files[f"{ce_type}.reader.json"]
        assert (writer["x-schema-role"], reader["x-schema-role"]) == (WRITER, READER)
        assert {o["additionalProperties"] for o in _object_schemas(writer)} == {False}, ce_type
        assert {o["additionalProperties"] for o in _object_schemas(reader)} == {True}, ce_type


def test_the_schemas_of_what_others_publish_to_us_are_tolerant() -> None:
    files = {name: json.loads(text) for name, text in render_schemas().items()}
    for ce_type, written_by in WRITTEN_ELSEWHERE.items():
        schema = files[f"{ce_type}.json"]
        assert (schema["x-written-by"], schema["x-schema-role"]) == (written_by, READER)
        assert {o["additionalProperties"] for o in _object_schemas(schema)} == {True}, ce_type
        assert f"{ce_type}.reader.json" not in files
