"""CloudEvents 1.0 binary content mode over Kafka.

Attributes travel as `ce_*` headers, the JSON `data` object is the value, the aggregate id the key.
Encoding and decoding are done here rather than by the `cloudevents` SDK: on the consumers' hot
path the SDK cost ~35 µs an event (dateutil parsing `ce_time`, a JSON parse of the data that
pydantic then repeats) — a sixth of the scoring consumer's time. The rules are the SDK's
(its `CloudEvent` attribute validation and Kafka binding), and a differential property test
(tests/unit/shared/test_cloudevents.py) holds this decoder to the SDK's verdicts.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.contracts.base import validate_json_without_nul

CONTENT_TYPE = "application/json"
REQUIRED_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type")
_CE_PREFIX = "ce_"
_KNOWN_ATTRIBUTES = frozenset(
    {"specversion", "id", "source", "type", "time", "subject", "dataschema", "datacontenttype"}
)
_REQUIRED_ATTRIBUTES = frozenset(name[len(_CE_PREFIX) :] for name in REQUIRED_HEADERS)
_EXTENSION_NAME = re.compile(r"^[a-z0-9]+$")
_ATTRIBUTE_OF_HEADER = {_CE_PREFIX + name: name for name in _KNOWN_ATTRIBUTES}
"""Header names as producers write them (lowercase): found without lower() and slicing."""
_JSON_CONTENT_TYPE = re.compile(r"^(application|text)/([a-zA-Z0-9\-\.]+\+)?json(;.*)?$")
ModelT = TypeVar("ModelT", bound=BaseModel)


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
    """A decoded event: its CloudEvents attributes and its still-unparsed `data` (the value)."""

    id: str
    source: str
    type: str
    time: datetime | None
    key: str | None
    value: bytes = field(repr=False)
    traceparent: str | None = None
    """The CloudEvents distributed-tracing extension: the W3C trace context of the span that
    published the event (`shared.tracing`)."""
    tracestate: str | None = None

    @cached_property
    def data(self) -> dict[str, Any]:
        """The data as a JSON object (parsed on first use; consumers validate the bytes)."""
        try:
            data = json.loads(self.value)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidEvent("value_not_json", str(exc)[:200]) from exc
        except RecursionError as exc:  # hostile nesting: the stdlib parser recurses per level
            raise InvalidEvent("value_not_json", "nested too deeply") from exc
        if not isinstance(data, dict):
            raise InvalidEvent("data_not_object", type(data).__name__)
        return data


def encode(
    ce_type: str,
    data: BaseModel | dict[str, Any],
    *,
    source: str,
    key: str | None,
    ce_id: str | None = None,
    time: datetime | None = None,
) -> KafkaRecord:
    """Binary content mode: six headers and the JSON data (the tests decode what this writes
    with the SDK)."""
    value = (
        json.dumps(data, separators=(",", ":")).encode()
        if isinstance(data, dict)  # before BaseModel: an ABC check costs more than a dict's
        else data.model_dump_json().encode()
    )
    headers = binary_headers(ce_type, source=source, ce_id=ce_id or str(uuid.uuid4()), time=time)
    return KafkaRecord(key=key.encode() if key is not None else None, value=value, headers=headers)


def binary_headers(
    ce_type: str, *, source: str, ce_id: str, time: datetime | None
) -> dict[str, bytes]:
    """The six headers of a binary-mode record (`time` defaults to now)."""
    instant = (time or datetime.now(UTC)).astimezone(UTC)
    return {
        "ce_specversion": b"1.0",
        "ce_id": ce_id.encode(),
        "ce_source": source.encode(),
        "ce_type": ce_type.encode(),
        "ce_time": instant.isoformat().replace("+00:00", "Z").encode(),
        "content-type": CONTENT_TYPE.encode(),
    }


def decode_attributes(
    key: bytes | None, value: bytes | None, headers: dict[str, bytes]
) -> Envelope:
    """The attributes of a binary-mode record, checked as the SDK checks them; the data is left
    unparsed. Raise InvalidEvent saying exactly what is wrong."""
    attributes: dict[str, str] = {}
    content_type: str | None = None
    try:
        for name, raw in headers.items():
            attribute = _ATTRIBUTE_OF_HEADER.get(name)
            if attribute is not None:
                attributes[attribute] = raw.decode()
                continue
            lowered = name.lower()
            if lowered.startswith(_CE_PREFIX):
                attributes[lowered[len(_CE_PREFIX) :]] = raw.decode()
            elif lowered == "content-type":
                content_type = raw.decode()
        key_text = key.decode() if key is not None else None
    except UnicodeDecodeError as exc:
        raise InvalidEvent("invalid_cloudevent", f"not UTF-8: {exc}"[:300]) from exc
    # The usual record passes each check below in one C-level test; the lists that name what is
    # wrong are built only when one fails (a comprehension is a call per record in 3.11).
    if not attributes.keys() >= _REQUIRED_ATTRIBUTES:
        missing = [n for n in REQUIRED_HEADERS if n[len(_CE_PREFIX) :] not in attributes]
        raise InvalidEvent("missing_cloudevents_headers", ", ".join(missing))
    if attributes["specversion"] != "1.0":
        raise InvalidEvent("unsupported_specversion", attributes["specversion"][:50])
    problems = []
    if not (attributes["id"] and attributes["source"] and attributes["type"]):
        problems += [f"{n} is empty" for n in ("id", "source", "type") if not attributes[n]]
    if attributes.get("subject") == "" or attributes.get("dataschema") == "":
        problems += [f"{n} is empty" for n in ("subject", "dataschema") if attributes.get(n) == ""]
    if not attributes.keys() <= _KNOWN_ATTRIBUTES:
        problems += [
            f"extension attribute {name!r} is not lowercase letters and digits"
            for name in attributes
            if name not in _KNOWN_ATTRIBUTES and (name == "data" or not _EXTENSION_NAME.match(name))
        ]
    instant = None
    if "time" in attributes:
        try:
            instant = datetime.fromisoformat(attributes["time"])
        except ValueError:
            problems.append(f"time {attributes['time'][:40]!r} is not an RFC 3339 timestamp")
        else:
            if instant.tzinfo is None:
                problems.append("time has no UTC offset")
    if problems:
        raise InvalidEvent("invalid_cloudevent", "; ".join(problems)[:300])
    if content_type is not None and not _JSON_CONTENT_TYPE.match(content_type):
        raise InvalidEvent("unsupported_content_type", content_type[:100])
    if not value:
        raise InvalidEvent("empty_value")
    return Envelope(
        id=attributes["id"],
        source=attributes["source"],
        type=attributes["type"],
        time=instant,
        key=key_text,
        value=value,
        traceparent=attributes.get("traceparent"),
        tracestate=attributes.get("tracestate"),
    )


def decode(key: bytes | None, value: bytes | None, headers: dict[str, bytes]) -> Envelope:
    """Decode a binary-mode record whose data must be a JSON object; raise InvalidEvent saying
    exactly what is wrong."""
    envelope = decode_attributes(key, value, headers)
    envelope.data  # noqa: B018 - parse now, so bad data is refused here
    return envelope


def validate_data(envelope: Envelope, model: type[ModelT]) -> ModelT:
    """The event's data validated straight from the bytes into `model` (one parse), as a
    tolerant reader: unknown fields are ignored, known ones validated (docs/design.md 2.2)."""
    try:
        return validate_json_without_nul(model, envelope.value)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise InvalidEvent("value_not_json", first["msg"][:200]) from exc
        if first["type"] == "model_type" and not first["loc"]:
            raise InvalidEvent("data_not_object", first["msg"][:200]) from exc
        raise InvalidEvent("schema_validation_failed", validation_summary(exc)) from exc


def validation_summary(exc: ValidationError) -> str:
    """The first few validation errors, each as `field.path: message` (for DLQ headers)."""
    parts = []
    for error in exc.errors()[:5]:
        location = ".".join(str(part) for part in error["loc"]) or "<root>"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)
