import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from hypothesis import event, given, settings
from hypothesis import strategies as st

from shared.cloudevents import InvalidEvent, decode, decode_attributes, encode, validate_data
from shared.contracts.participation import ParticipationChanged
from tests.support.builders import participation_changed

T = TypeVar("T")


def test_round_trip_keeps_attributes_key_and_data() -> None:
    record = encode(
        "agent.participation.changed.v1",
        participation_changed("A-1"),
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
    assert ParticipationChanged.model_validate(envelope.data) == participation_changed("A-1")


def test_timestamps_in_data_are_rfc3339_utc() -> None:
    record = encode("x.v1", participation_changed("A-1"), source="/s", key="A-1")
    assert json.loads(record.value)["changed_at"] == "2026-11-20T15:00:00Z"


@pytest.mark.parametrize("missing", ["ce_specversion", "ce_id", "ce_source", "ce_type"])
def test_missing_required_header_is_invalid(missing: str) -> None:
    record = encode("x.v1", participation_changed("A-1"), source="/s", key="A-1")
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
        (b"[" * 100_000 + b"]" * 100_000, "value_not_json"),
    ],
    ids=["text", "not-utf8", "array", "nested-too-deeply"],
)
def test_bad_values_are_invalid(value: bytes, reason: str) -> None:
    headers = encode("x.v1", participation_changed("A-1"), source="/s", key="A-1").headers
    with pytest.raises(InvalidEvent) as caught:
        decode(b"A-1", value, headers)
    assert caught.value.reason == reason


def test_other_specversion_is_refused() -> None:
    record = encode("x.v1", participation_changed("A-1"), source="/s", key="A-1")
    with pytest.raises(InvalidEvent, match="unsupported_specversion"):
        decode(record.key, record.value, {**record.headers, "ce_specversion": b"0.3"})


def test_content_type_other_than_json_is_refused() -> None:
    record = encode("x.v1", participation_changed("A-1"), source="/s", key="A-1")
    with pytest.raises(InvalidEvent, match="unsupported_content_type"):
        decode(record.key, record.value, {**record.headers, "content-type": b"text/plain"})


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "value_not_json"),
        (b"[1, 2]", "data_not_object"),
        (b'{"agent_id": 5}', "schema_validation_failed"),
        (b'{"agent_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "value_not_json"),
    ],
    ids=["text", "array", "wrong-type", "nested-too-deeply"],
)
def test_validate_data_says_what_is_wrong(value: bytes, reason: str) -> None:
    headers = encode("x.v1", participation_changed("A-1"), source="/s", key="A-1").headers
    envelope = decode_attributes(b"A-1", value, headers)
    with pytest.raises(InvalidEvent) as caught:
        validate_data(envelope, ParticipationChanged)
    assert caught.value.reason == reason


# -- the decoder against the CloudEvents SDK -------------------------------------------------------


def _sdk_decode(key: bytes | None, value: bytes | None, headers: dict[str, bytes]) -> Any:
    """The reference: the SDK's Kafka binding, and a JSON object as data."""
    for name in ("ce_specversion", "ce_id", "ce_source", "ce_type"):
        if name not in {header.lower() for header in headers}:
            return None
    try:
        event = ce_kafka.from_binary(
            ce_kafka.KafkaMessage(headers=headers, key=key, value=value or b""),
            JSONFormat(),
            CloudEvent,
        )
    except Exception:
        return None
    return event if isinstance(event.get_data(), dict) else None


def _ours(key: bytes | None, value: bytes | None, headers: dict[str, bytes]) -> Any:
    try:
        return decode(key, value, headers)
    except InvalidEvent:
        return None


def _mostly(valid: st.SearchStrategy[T], hostile: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """Valid nine times in ten, so that many accepted events are compared too."""
    return st.integers(0, 9).flatmap(lambda n: hostile if n == 0 else valid)


_texts = _mostly(
    st.text(min_size=1, max_size=12), st.one_of(st.just(""), st.sampled_from([" ", "é", "\n"]))
)
_header_values = {
    "ce_specversion": _mostly(st.just("1.0"), st.sampled_from(["0.3", "", "1.0 "])),
    "ce_id": _texts,
    "ce_source": _texts,
    "ce_type": _texts,
    "ce_time": _mostly(
        st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])).map(
            lambda t: t.isoformat().replace("+00:00", "Z")
        ),
        st.one_of(
            st.datetimes().map(datetime.isoformat),  # no offset
            st.sampled_from(["", "yesterday", "2026-11-21", "2026-13-01T00:00:00Z"]),
        ),
    ),
    "ce_subject": _texts,
    "ce_dataschema": _texts,
    "content-type": _mostly(
        st.sampled_from(["application/json", "text/json; charset=utf-8", "application/x+json"]),
        st.sampled_from(["text/plain", "", "application/xml"]),
    ),
}
_OPTIONAL = ("ce_time", "ce_subject", "ce_dataschema", "content-type")


@st.composite
def _records(draw: st.DrawFn) -> tuple[bytes | None, bytes | None, dict[str, bytes]]:
    headers: dict[str, bytes] = {}
    for name, values in _header_values.items():
        if draw(st.integers(0, 19)) == 0 or (name in _OPTIONAL and draw(st.booleans())):
            continue  # left out
        headers[name.upper() if draw(st.integers(0, 19)) == 0 else name] = draw(values).encode()
    for _ in range(draw(st.integers(0, 2))):  # extension attributes, some not allowed
        name = draw(
            _mostly(
                st.sampled_from(["traceparent", "ext1"]), st.sampled_from(["B-N", "data", "x_y"])
            )
        )
        headers[f"ce_{name}"] = draw(st.text(max_size=12)).encode()
    if headers and draw(st.integers(0, 19)) == 0:
        headers[draw(st.sampled_from(sorted(headers)))] = b"\xff\xfe"
    value = draw(
        _mostly(
            st.builds(
                lambda agent, n: json.dumps({"agent_id": agent, "n": n}).encode(),
                st.text(max_size=8),
                st.integers(),
            ),
            st.sampled_from([b"", b"[1]", b"null", b"not json", b"\xff", b'"s"', b"{}"]),
        )
    )
    key = draw(_mostly(st.sampled_from([b"A-1", None]), st.just(b"\xff")))
    return key, value, headers


@settings(max_examples=600)
@given(_records())
def test_decoder_agrees_with_the_sdk(
    record: tuple[bytes | None, bytes | None, dict[str, bytes]],
) -> None:
    key, value, headers = record
    ours, reference = _ours(key, value, headers), _sdk_decode(key, value, headers)
    assert (ours is None) == (reference is None), (ours, reference)
    event("accepted" if ours is not None else "refused")
    if ours is not None:
        assert (ours.id, ours.source, ours.type) == (
            reference.get_id(),
            reference.get_source(),
            reference.get_type(),
        )
        sent_time = any(name.lower() == "ce_time" for name in headers)
        # the SDK stamps "now" on an event that came without a time; we leave it unknown
        assert ours.time == (reference.get_time() if sent_time else None)
        assert ours.data == reference.get_data()
