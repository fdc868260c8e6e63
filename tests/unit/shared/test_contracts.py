import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.contracts import EVENTS
from shared.contracts.base import validate_json_without_nul
from shared.contracts.mls import TransactionClosed
from shared.contracts.ratings import RatingUpdated
from shared.contracts.reviews import ReviewPublished, Scores
from shared.contracts.schemas import SCHEMA_DIR, render_schemas

SYSTEM_TRANSACTION = {
    "transaction_id": "T-1",
    "mls_number": "MLS123",
    "kind": "sale",
    "closed_at": "2026-11-20T15:00:00Z",
    "property": {"street": "12 Elm Rd", "city": "Houston", "postcode": "77002"},
    "representations": [
        {
            "agent_id": "A-1",
            "side": "seller",
            "clients": [{"name": "Pat Doe", "email": "pat@example.com", "phone": None}],
        }
    ],
}


def test_the_system_md_transaction_example_validates() -> None:
    event = TransactionClosed.model_validate(SYSTEM_TRANSACTION)
    assert event.closed_at == datetime(2026, 11, 20, 15, tzinfo=UTC)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        TransactionClosed.model_validate({**SYSTEM_TRANSACTION, "surprise": 1})


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValidationError):
        TransactionClosed.model_validate({**SYSTEM_TRANSACTION, "closed_at": "2026-11-20T15:00:00"})


@pytest.mark.parametrize(
    "not_rfc3339",
    [1700000000, "1700000000", 1.7e9, True, "2026-11-20", "20261120T150000Z", "2026-W47-5T15:00Z"],
)
def test_timestamps_other_than_rfc3339_are_refused(not_rfc3339: object) -> None:
    """Pydantic alone reads Unix seconds and ISO 8601 variants as instants; the contract does not."""
    with pytest.raises(ValidationError, match="RFC 3339"):
        TransactionClosed.model_validate({**SYSTEM_TRANSACTION, "closed_at": not_rfc3339})


@pytest.mark.parametrize(
    "reserved",
    ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "9999-12-31T22:59:59.999999-01:00"],
)
def test_the_instants_the_database_driver_reads_back_as_infinity_are_refused(
    reserved: str,
) -> None:
    with pytest.raises(ValidationError, match="outside the range of dates"):
        TransactionClosed.model_validate({**SYSTEM_TRANSACTION, "closed_at": reserved})


@pytest.mark.parametrize("edge", ["0001-01-01T00:00:00.000001Z", "9999-12-31T23:59:59.999998Z"])
def test_the_instants_next_to_them_are_read(edge: str) -> None:
    event = TransactionClosed.model_validate({**SYSTEM_TRANSACTION, "closed_at": edge})
    assert event.closed_at.tzinfo is UTC


@pytest.mark.parametrize(
    "rfc3339", ["2026-11-20T15:00:00Z", "2026-11-20t15:00:00.5z", "2026-11-20 16:00:00+01:00"]
)
def test_rfc3339_timestamps_are_read(rfc3339: str) -> None:
    event = TransactionClosed.model_validate({**SYSTEM_TRANSACTION, "closed_at": rfc3339})
    assert event.closed_at.replace(microsecond=0) == datetime(2026, 11, 20, 15, tzinfo=UTC)


@pytest.mark.parametrize("field", ["transaction_id", "mls_number"])
def test_text_with_a_nul_character_is_refused(field: str) -> None:
    """PostgreSQL text cannot hold U+0000: refused as invalid, not failed in the database."""
    with pytest.raises(ValidationError, match="NUL"):
        TransactionClosed.model_validate({**SYSTEM_TRANSACTION, field: "T-1\x00"})


def test_nested_text_with_a_nul_character_is_refused() -> None:
    clients = [{"name": "Pat\x00", "email": None, "phone": None}]
    representation = {**SYSTEM_TRANSACTION["representations"][0], "clients": clients}  # type: ignore[index]
    with pytest.raises(ValidationError, match="NUL"):
        TransactionClosed.model_validate(
            {**SYSTEM_TRANSACTION, "representations": [representation]}
        )


def test_offsets_are_normalised_to_utc_z() -> None:
    event = TransactionClosed.model_validate(
        {**SYSTEM_TRANSACTION, "closed_at": "2026-11-20T10:00:00-05:00"}
    )
    assert event.model_dump(mode="json")["closed_at"] == "2026-11-20T15:00:00Z"


@pytest.mark.parametrize("bad", [0, 6, "5", None])
def test_scores_are_integers_from_1_to_5(bad: object) -> None:
    scores = {
        "communication": 5,
        "friendliness": 4,
        "professionalism": 5,
        "area_knowledge": 3,
        "overall": bad,
    }
    with pytest.raises(ValidationError):
        Scores.model_validate_json(json.dumps(scores))


def test_positive_means_every_category_at_least_3() -> None:
    base = {
        "communication": 5,
        "friendliness": 4,
        "professionalism": 5,
        "area_knowledge": 3,
        "overall": 3,
    }
    assert Scores(**base).is_positive()
    assert not Scores(**{**base, "area_knowledge": 2}).is_positive()


def test_review_published_example_from_system_md_validates() -> None:
    review = ReviewPublished.model_validate(
        {
            "review_id": "R-1",
            "agent_id": "A-1",
            "transaction_id": "T-1",
            "survey": "transaction",
            "removal_reason": None,
            "channel": "email",
            "submitted_at": "2026-11-20T15:00:00Z",
            "published_at": "2026-11-20T15:00:01Z",
            "scores": {
                "communication": 5,
                "friendliness": 4,
                "professionalism": 5,
                "area_knowledge": 3,
                "overall": 4,
            },
            "positive": True,
            "comment": "Great",
            "display_name": None,
            "agent_response": None,
        }
    )
    assert review.scores.is_positive()


def test_hidden_rating_may_carry_no_numbers() -> None:
    rating = RatingUpdated(
        agent_id="A-1", as_of=datetime.now(UTC), visibility="hidden", policy_version="1"
    )
    dumped = rating.model_dump(mode="json")
    assert dumped["stars"] is None
    assert dumped["category_averages"] is None


def test_every_event_type_names_a_real_key_field() -> None:
    for event_type in EVENTS.values():
        assert event_type.key_field in event_type.model.model_fields, event_type.ce_type


def test_committed_json_schemas_are_up_to_date() -> None:
    rendered = render_schemas()
    committed = {p.name: p.read_text() for p in Path(SCHEMA_DIR).glob("*.json")}
    assert committed == rendered, "run `python -m shared.contracts.schemas` and commit the result"


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("T-1\\u0000", True),  # the JSON escape of U+0000: the check runs and refuses it
        ("T-1\\\\u0000", False),  # a backslash, then 'u0000': text, not a NUL
        ("T-\\u00001", True),
    ],
)
def test_json_is_checked_for_nul_only_where_it_can_hold_one(text: str, refused: bool) -> None:
    raw = json.dumps({**SYSTEM_TRANSACTION, "transaction_id": "X"}).replace('"X"', f'"{text}"')
    if refused:
        with pytest.raises(ValidationError, match="NUL"):
            validate_json_without_nul(TransactionClosed, raw.encode())
    else:
        event = validate_json_without_nul(TransactionClosed, raw.encode())
        assert event.transaction_id == "T-1\\u0000"


def test_nested_nul_in_json_is_refused_too() -> None:
    raw = json.dumps(SYSTEM_TRANSACTION).replace('"name": "', '"name": "\\u0000', 1)
    assert "\\u0000" in raw
    with pytest.raises(ValidationError, match="NUL"):
        validate_json_without_nul(TransactionClosed, raw.encode())
