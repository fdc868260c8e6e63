import json
from datetime import UTC, datetime

import pytest

from shared.cloudevents import InvalidEvent, decode, encode
from shared.contracts.participation import ParticipationChanged


def _event() -> ParticipationChanged:
    return ParticipationChanged(
        agent_id="A-1",
        mode="opt_in_public",
        reason="agent_choice",
        changed_at=datetime(2026, 11, 20, 15, tzinfo=UTC),
    )


def test_round_trip_keeps_attributes_key_and_data() -> None:
    record = encode(
        "agent.participation.changed.v1",
        _event(),
        source="/ratings/test",
        key="A-1",
        ce_id="id-1",
        time=datetime(2026, 11, 21, tzinfo=UTC),
    )
    assert record.key == b"A-1"
    assert record.headers["ce_specversion"] == b"1.0"
    assert record.headers["ce_id"] == b"id-1"
    assert record.headers["ce_time"] == b"2026-11-21T00:00:00Z"
    assert record.headers["content-type"] == b"application/json"
    envelope = decode(record.key, record.value, record.headers)
    assert (envelope.id, envelope.type, envelope.source, envelope.key) == (
        "id-1",
        "agent.participation.changed.v1",
        "/ratings/test",
        "A-1",
    )
    assert ParticipationChanged.model_validate(envelope.data) == _event()


def test_timestamps_in_data_are_rfc3339_utc() -> None:
    record = encode("x.v1", _event(), source="/s", key="A-1")
    assert json.loads(record.value)["changed_at"] == "2026-11-20T15:00:00Z"


@pytest.mark.parametrize("missing", ["ce_specversion", "ce_id", "ce_source", "ce_type"])
def test_missing_required_header_is_invalid(missing: str) -> None:
    record = encode("x.v1", _event(), source="/s", key="A-1")
    headers = {k: v for k, v in record.headers.items() if k != missing}
    with pytest.raises(InvalidEvent) as caught:
        decode(record.key, record.value, headers)
    assert caught.value.reason == "missing_cloudevents_headers"
    assert missing in caught.value.detail


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "value_not_json"),
        (b"\xff\xfe", "value_not_json"),
        (b"[1, 2]", "data_not_object"),
    ],
)
def test_bad_values_are_invalid(value: bytes, reason: str) -> None:
    headers = encode("x.v1", _event(), source="/s", key="A-1").headers
    with pytest.raises(InvalidEvent) as caught:
        decode(b"A-1", value, headers)
    assert caught.value.reason == reason


def test_other_specversion_is_refused() -> None:
    record = encode("x.v1", _event(), source="/s", key="A-1")
    with pytest.raises(InvalidEvent, match="unsupported_specversion"):
        decode(record.key, record.value, {**record.headers, "ce_specversion": b"0.3"})
