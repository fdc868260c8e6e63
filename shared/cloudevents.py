"""CloudEvents 1.0 binary content mode over Kafka; decoding via the `cloudevents` SDK's binding.

Attributes travel as `ce_*` headers, the JSON `data` object is the value, the aggregate id the key.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel

CONTENT_TYPE = "application/json"
REQUIRED_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type")


class InvalidEvent(Exception):
    """The message is not a valid event for this consumer: it goes to the DLQ, never retried."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class KafkaRecord:
    """What goes on the wire: key, value and headers (header values as bytes, as Kafka has them)."""

    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


@dataclass(frozen=True)
class Envelope:
    """A decoded event: its CloudEvents attributes and its still-unvalidated `data` object."""

    id: str
    source: str
    type: str
    time: datetime | None
    key: str | None
    data: dict[str, Any]


def encode(
    ce_type: str,
    data: BaseModel | dict[str, Any],
    *,
    source: str,
    key: str | None,
    ce_id: str | None = None,
    time: datetime | None = None,
) -> KafkaRecord:
    """Binary content mode by hand: six headers and the JSON data. The SDK's encoder cost 34 µs
    an event, a third of the scoring consumer's time; every decode still goes through the SDK,
    and the tests decode what this writes with it."""
    value = (
        data.model_dump_json().encode()
        if isinstance(data, BaseModel)
        else json.dumps(data, separators=(",", ":")).encode()
    )
    instant = (time or datetime.now(UTC)).astimezone(UTC)
    headers = {
        "ce_specversion": b"1.0",
        "ce_id": (ce_id or str(uuid.uuid4())).encode(),
        "ce_source": source.encode(),
        "ce_type": ce_type.encode(),
        "ce_time": instant.isoformat().replace("+00:00", "Z").encode(),
        "content-type": CONTENT_TYPE.encode(),
    }
    return KafkaRecord(key=key.encode() if key is not None else None, value=value, headers=headers)


def decode(key: bytes | None, value: bytes | None, headers: dict[str, bytes]) -> Envelope:
    """Decode a binary-mode record; raise InvalidEvent saying exactly what is wrong."""
    missing = [name for name in REQUIRED_HEADERS if name not in headers]
    if missing:
        raise InvalidEvent("missing_cloudevents_headers", ", ".join(missing))
    if headers["ce_specversion"] != b"1.0":
        raise InvalidEvent(
            "unsupported_specversion", headers["ce_specversion"].decode(errors="replace")
        )
    if value is None:
        raise InvalidEvent("empty_value")
    try:
        json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent("value_not_json", str(exc)[:200]) from exc
    try:
        event = ce_kafka.from_binary(
            ce_kafka.KafkaMessage(headers=headers, key=key, value=value), JSONFormat(), CloudEvent
        )
    except Exception as exc:  # the SDK raises several types for bad attributes
        raise InvalidEvent("invalid_cloudevent", str(exc)[:300]) from exc
    data = event.get_data()
    if not isinstance(data, dict):
        raise InvalidEvent("data_not_object", type(data).__name__)
    return Envelope(
        id=event.get_id(),
        source=event.get_source(),
        type=event.get_type(),
        time=event.get_time(),
        key=key.decode(errors="replace") if key is not None else None,
        data=data,
    )
