"""Hostile input for the reliability tests, and the means to see what it did.

Each mutation breaks an event in exactly one way and says what the consumer must do with it:
dead-letter it for a given reason, process it (it only looks dangerous), or ignore it (a type
this service does not read). The same mutations feed the hypothesis runs straight into a
consumer and the bounded batches sent through the real broker. `fingerprint` proves that a
refused event wrote nothing: every table of the service's schema, hashed.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI
from pydantic import BaseModel

from services.invitations import app as invitations_app
from services.invitations.settings import InvitationsSettings
from services.removals import app as removals_app
from services.removals.settings import RemovalsSettings
from services.reviews import app as reviews_app
from services.reviews.settings import ReviewsSettings
from services.scoring import app as scoring_app
from services.scoring.settings import ScoringSettings
from shared.auth import Role, issue_token
from shared.cloudevents import REQUIRED_HEADERS, encode
from shared.contracts import EVENTS, EventType
from shared.contracts.base import format_rfc3339
from shared.messaging import EventDispatcher
from shared.settings import ServiceSettings
from tests.support.kafka import dispatcher_of

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
SECRET = "reliability-hostile-secret-of-at-least-32-bytes"
PEPPER = "reliability-hostile-pepper"
PII_KEY = "reliability-hostile-pii-key"

# outcomes a delivery can have
PROCESSED = "processed"
IGNORED = "ignored"


def dead_lettered(reason: str) -> str:
    return f"dlq:{reason}"


@dataclass(frozen=True)
class ServiceSpec:
    """What the fuzzers need to know about one service."""

    name: str
    settings_class: type[ServiceSettings]
    create_app: Callable[..., FastAPI]
    migrations: Path

    @cached_property
    def dispatcher(self) -> EventDispatcher:
        """The routes of an app with test settings (building it connects to nothing)."""
        return dispatcher_of(self.create_app(self.settings("127.0.0.1:9", "postgresql://-")))

    @property
    def topics(self) -> list[str]:
        return sorted(self.dispatcher.subscribed)

    def handled_types(self, topic: str) -> list[EventType]:
        """The event types of `topic` this service validates and handles."""
        return [
            event_type
            for event_type in EVENTS.values()
            if event_type.topic == topic
            and (
                event_type.ce_type in self.dispatcher.handlers
                or topic in self.dispatcher.batch_handlers
            )
        ]

    def ignored_types(self, topic: str) -> list[EventType]:
        """Known types of `topic` that this service skips without reading their data."""
        handled = {event_type.ce_type for event_type in self.handled_types(topic)}
        return [e for e in EVENTS.values() if e.topic == topic and e.ce_type not in handled]

    def settings(self, kafka_bootstrap: str, database_url: str, **overrides: Any) -> Any:
        values: dict[str, Any] = {
            "environment": "test",
            "kafka_bootstrap_servers": kafka_bootstrap,
            "database_url": database_url,
            "database_schema": f"t_{uuid.uuid4().hex[:10]}_{self.name}",
            "kafka_group_id": f"hostile-{self.name}-{uuid.uuid4().hex[:8]}",
            "outbox_poll_seconds": 0.05,
            "scheduler_interval_seconds": 0.2,
            "auth_secret": SECRET,
            "token_pepper": PEPPER,
            "pii_key": PII_KEY,
        }
        values.update(overrides)
        return self.settings_class(**values)


SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec(
            "invitations",
            InvitationsSettings,
            invitations_app.create_app,
            invitations_app.MIGRATIONS,
        ),
        ServiceSpec(
            "reviews",
            ReviewsSettings,
            reviews_app.create_app,
            reviews_app.MIGRATIONS,
        ),
        ServiceSpec(
            "scoring",
            ScoringSettings,
            scoring_app.create_app,
            scoring_app.MIGRATIONS,
        ),
        ServiceSpec(
            "removals",
            RemovalsSettings,
            removals_app.create_app,
            removals_app.MIGRATIONS,
        ),
    )
}


def bearer(sub: str, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}


# valid events, one per type, every id carrying `ident` (so tables can be searched for it)

GOOD_SCORES = {
    "communication": 5,
    "friendliness": 4,
    "professionalism": 5,
    "area_knowledge": 4,
    "overall": 5,
}


def valid_data(ce_type: str, ident: str) -> dict[str, Any]:
    """A contract-valid payload of `ce_type` about agent `A-<ident>` (unknown to the service)."""
    at = format_rfc3339(NOW)
    agent_id = f"A-{ident}"
    payloads: dict[str, dict[str, Any]] = {
        "mls.agent.upserted.v1": {
            "agent_id": agent_id,
            "name": "Jo Agent",
            "email": f"agent-{ident}@realty.example",
            "office_id": "O-1",
            "member_since": "2025-01-15",
            "active": True,
        },
        "mls.transaction.closed.v1": {
            "transaction_id": f"T-{ident}",
            "mls_number": "MLS123",
            "kind": "sale",
            "closed_at": at,
            "property": {"street": "12 Elm Rd", "city": "Houston", "postcode": "77002"},
            "representations": [
                {
                    "agent_id": agent_id,
                    "side": "buyer",
                    "clients": [
                        {"name": "Pat Doe", "email": f"client-{ident}@example.com", "phone": None}
                    ],
                }
            ],
        },
        "lead.assigned.v1": {
            "lead_id": f"L-{ident}",
            "agent_id": agent_id,
            "client": {
                "name": "Sam Lee",
                "email": f"lead-{ident}@example.com",
                "phone": "+1 713 555 0100",
                "preferred_contact": "email",
            },
            "assigned_at": at,
        },
        "agent.participation.changed.v1": {
            "agent_id": agent_id,
            "mode": "opt_in_public",
            "reason": "agent_choice",
            "changed_at": at,
        },
        "review.published.v1": {
            "review_id": f"R-{ident}",
            "agent_id": agent_id,
            "transaction_id": f"T-{ident}",
            "survey": "transaction",
            "removal_reason": None,
            "channel": "email",
            "submitted_at": at,
            "published_at": at,
            "scores": dict(GOOD_SCORES),
            "positive": True,
            "comment": "Great",
            "display_name": None,
            "agent_response": None,
        },
        "review.withdrawn.v1": {
            "review_id": f"R-{ident}",
            "agent_id": agent_id,
            "withdrawn_at": at,
            "reason": "abuse",
        },
        "survey.answered.v1": {
            "invitation_id": f"I-{ident}",
            "agent_id": agent_id,
            "review_id": f"R-{ident}",
            "channel": "email",
            "answered_at": at,
        },
        "invitation.issued.v1": {
            "invitation_id": f"I-{ident}",
            "agent_id": agent_id,
            "transaction_id": f"T-{ident}",
            "lead_id": None,
            "survey": "transaction",
            "removal_reason": None,
            "channel": "email",
            "pin_hash": f"pin-{ident}",
            "token_hash": f"token-{ident}",
            "issued_at": at,
            "expires_at": format_rfc3339(NOW + timedelta(days=30)),
            "trust_flags": [],
        },
        "invitation.expired.v1": {
            "invitation_id": f"I-{ident}",
            "agent_id": agent_id,
            "at": at,
            "reason": "expired",
        },
        "invitation.cancelled.v1": {
            "invitation_id": f"I-{ident}",
            "agent_id": agent_id,
            "at": at,
            "reason": "unsubscribed",
        },
        "removal.requested.v1": {
            "removal_id": f"X-{ident}",
            "lead_id": f"L-{ident}",
            "agent_id": agent_id,
            "reason": "changed_mind",
            "needs_approval": False,
            "requested_at": at,
        },
        "removal.approved.v1": {
            "removal_id": f"X-{ident}",
            "lead_id": f"L-{ident}",
            "agent_id": agent_id,
            "reason": "bad_fit",
            "decided_by": "C-1",
            "note": "ok",
            "decided_at": at,
        },
        "removal.completed.v1": {
            "removal_id": f"X-{ident}",
            "lead_id": f"L-{ident}",
            "agent_id": agent_id,
            "reason": "changed_mind",
            "referral_fee_owed": True,
            "completed_at": at,
            "handed_to_agent_id": None,
        },
        "lead.handoff.requested.v1": {
            "removal_id": f"X-{ident}",
            "lead_id": f"L-{ident}",
            "from_agent_id": agent_id,
            "reason": "bad_fit",
            "requested_at": at,
            "to_agent_id": f"A-{ident}-new",
        },
        "client.erasure.requested.v1": {
            "erasure_id": f"E-{ident}",
            "requested_at": at,
            "client_indexes": [f"{ident:0>64}"[:64]],
            "invitation_ids": [f"I-{ident}"],
        },
    }
    payloads["removal.denied.v1"] = payloads["removal.approved.v1"]
    payloads["rating.updated.v1"] = {"agent_id": agent_id}
    fresh: dict[str, Any] = json.loads(json.dumps(payloads[ce_type]))  # a deep copy
    return fresh


# records and what must become of them


@dataclass(frozen=True)
class Raw:
    """A Kafka record as a hostile producer would write it."""

    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]

    @property
    def ce_id(self) -> str | None:
        raw = self.headers.get("ce_id")
        try:
            return raw.decode() if raw is not None else None
        except UnicodeDecodeError:
            return None


@dataclass(frozen=True)
class Base:
    """A valid event about to be spoiled: its type, data and the record it encodes to."""

    event_type: EventType
    data: dict[str, Any]
    ident: str

    def record(self, data: Any = None, *, value: bytes | None = None) -> Raw:
        encoded = encode(
            self.event_type.ce_type,
            {},
            source="/tests/hostile",
            key=str(self.data.get(self.event_type.key_field, self.ident)),
            ce_id=f"ce-{self.ident}",
            time=NOW,
        )
        chosen = self.data if data is None else data
        body = value if value is not None else json.dumps(chosen).encode()
        return Raw(self.event_type.topic, encoded.key, body, dict(encoded.headers))


def base(event_type: EventType, ident: str | None = None) -> Base:
    ident = ident or uuid.uuid4().hex[:12]
    data = valid_data(event_type.ce_type, ident)
    event_type.model.model_validate(data)  # the starting point keeps the contract
    return Base(event_type, data, ident)


@dataclass(frozen=True)
class Hostile:
    record: Raw
    expected: frozenset[str]
    label: str
    stores_ident: bool = field(default=False)
    """True when the event may be processed (then its ids may appear in the tables)."""


Mutation = Callable[[Base], Hostile]


def _refused(label: str, record: Raw, reason: str) -> Hostile:
    return Hostile(record, frozenset({dead_lettered(reason)}), label)


def with_headers(record: Raw, **changes: bytes | None) -> Raw:
    headers = {name.replace("__", "-"): value for name, value in record.headers.items()}
    for name, value in changes.items():
        name = name.replace("__", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return replace(record, headers=headers)


# -- envelope mutations


def not_json(event: Base, junk: bytes) -> Hostile:
    return _refused("not_json", event.record(value=b"not json: " + junk), "value_not_json")


def truncated(event: Base, keep: float) -> Hostile:
    whole = event.record().value
    cut = max(1, min(len(whole) - 1, int(len(whole) * keep)))
    return _refused("truncated", event.record(value=whole[:cut]), "value_not_json")


def not_an_object(event: Base, document: str) -> Hostile:
    return _refused("not_an_object", event.record(value=document.encode()), "data_not_object")


def deeply_nested(event: Base, depth: int) -> Hostile:
    value = b"[" * depth + b"]" * depth
    return Hostile(
        event.record(value=value),
        frozenset({dead_lettered("value_not_json"), dead_lettered("data_not_object")}),
        "deeply_nested",
    )


def empty_value(event: Base) -> Hostile:
    return _refused("empty_value", event.record(value=b""), "empty_value")


def missing_header(event: Base, name: str) -> Hostile:
    record = with_headers(event.record(), **{name: None})
    return _refused(f"missing_{name}", record, "missing_cloudevents_headers")


def wrong_specversion(event: Base, version: bytes) -> Hostile:
    record = with_headers(event.record(), ce_specversion=version)
    return _refused("wrong_specversion", record, "unsupported_specversion")


def bad_attribute(event: Base, name: str, value: bytes) -> Hostile:
    """An empty id/source/type, a time that is not RFC 3339 or has no offset, a bad extension
    name, or bytes that are not UTF-8."""
    record = with_headers(event.record(), **{name: value})
    return _refused(f"bad_{name}", record, "invalid_cloudevent")


def key_not_utf8(event: Base) -> Hostile:
    return _refused(
        "key_not_utf8", replace(event.record(), key=b"\xff\xfe\xfa"), "invalid_cloudevent"
    )


def wrong_content_type(event: Base, content_type: bytes) -> Hostile:
    record = with_headers(event.record(), content__type=content_type)
    return _refused("wrong_content_type", record, "unsupported_content_type")


def unknown_type(event: Base, ce_type: bytes) -> Hostile:
    return _refused(
        "unknown_type", with_headers(event.record(), ce_type=ce_type), "unsupported_type"
    )


def types_of_other_topics(topic: str) -> list[EventType]:
    """Event types that are never valid on `topic` (a type may travel on several topics)."""
    own = {e.ce_type for e in EVENTS.values() if e.topic == topic}
    return [e for e in EVENTS.values() if e.ce_type not in own]


def type_of_another_topic(event: Base, other: EventType) -> Hostile:
    data = valid_data(other.ce_type, event.ident)
    record = with_headers(event.record(data), ce_type=other.ce_type.encode())
    return _refused("type_of_another_topic", record, "unsupported_type")


def unread_type(event: Base, other: EventType) -> Hostile:
    """A known type of the topic that this service does not read: skipped, data unread."""
    record = with_headers(event.record(value=b"{not even json"), ce_type=other.ce_type.encode())
    return Hostile(record, frozenset({IGNORED}), "unread_type")


# -- data mutations (top-level fields, found from the contract's JSON schema)


@dataclass(frozen=True)
class FieldFacts:
    name: str
    required: bool
    kind: str  # text, datetime, date, email, enum, boolean, object, array, other
    max_length: int | None


def fields_of(model: type[BaseModel]) -> list[FieldFacts]:
    schema = model.model_json_schema()
    definitions = schema.get("$defs", {})
    required = set(schema.get("required", []))
    facts = []
    for name, spec in schema["properties"].items():
        options = [o for o in spec.get("anyOf", [spec]) if o.get("type") != "null"]
        first = options[0] if options else {}
        if "$ref" in first:
            first = definitions[first["$ref"].rsplit("/", 1)[-1]]
        if "enum" in first:
            kind = "enum"
        elif first.get("format") in ("date-time", "date", "email"):
            kind = {"date-time": "datetime", "date": "date", "email": "email"}[first["format"]]
        elif first.get("type") == "string":
            kind = "text"
        else:
            kind = str(first.get("type", "other"))
        facts.append(FieldFacts(name, name in required, kind, first.get("maxLength")))
    return facts


def _invalid(label: str, event: Base, data: dict[str, Any]) -> Hostile:
    return _refused(label, event.record(data), "schema_validation_failed")


def missing_field(event: Base, name: str) -> Hostile:
    data = {k: v for k, v in event.data.items() if k != name}
    return _invalid(f"missing_{name}", event, data)


def wrong_type(event: Base, name: str) -> Hostile:
    """An object where the contract wants a string, number, date, enum, list or model (for a
    nested model, an object of unknown keys lacks its required fields)."""
    return _invalid(f"wrong_type_{name}", event, {**event.data, name: {"$ne": None}})


def too_long(event: Base, name: str, extra: int) -> Hostile:
    limit = next(f.max_length for f in fields_of(event.event_type.model) if f.name == name)
    assert limit is not None
    return _invalid(f"too_long_{name}", event, {**event.data, name: "x" * (limit + extra)})


def bad_enum(event: Base, name: str, value: str) -> Hostile:
    return _invalid(f"bad_enum_{name}", event, {**event.data, name: value})


def bad_instant(event: Base, name: str, value: str) -> Hostile:
    return _invalid(f"bad_instant_{name}", event, {**event.data, name: value})


def score_out_of_range(event: Base, category: str, value: Any) -> Hostile:
    scores = {**event.data["scores"], category: value}
    return _invalid("score_out_of_range", event, {**event.data, "scores": scores})


# -- valid but dangerous-looking events: processed like any other (or, for text PostgreSQL
# cannot store, dead-lettered by the handler's bounded retries), never a crash


def unknown_field(event: Base, name: str, value: Any) -> Hostile:
    """A field the contract does not know: producers may add optional fields (SYSTEM.md §4),
    so the consumer ignores it and processes the event."""
    record = event.record({**event.data, name: value})
    return Hostile(record, frozenset({PROCESSED}), "unknown_field", stores_ident=True)


def padded(event: Base, size: int) -> Hostile:
    """Oversized by a huge unknown field: ignored like any other (the broker bounds the size)."""
    record = event.record({**event.data, "padding": "x" * size})
    return Hostile(record, frozenset({PROCESSED}), "padded", stores_ident=True)


def hostile_text(event: Base, name: str, text: str) -> Hostile:
    """Dangerous-looking text that the contract allows; the ident keeps unique fields unique."""
    limit = next(f.max_length for f in fields_of(event.event_type.model) if f.name == name)
    budget = (limit or 300) - len(event.ident) - 1
    record = event.record({**event.data, name: f"{text[:budget]}#{event.ident}"})
    return Hostile(record, frozenset({PROCESSED}), f"hostile_text_{name}", stores_ident=True)


def nul_in_text(event: Base, name: str) -> Hostile:
    record = event.record({**event.data, name: f"{event.data[name]}\x00x"})
    return Hostile(
        record,
        frozenset({dead_lettered("schema_validation_failed")}),
        f"nul_in_{name}",
        stores_ident=True,
    )


def unbounded_text(event: Base, name: str, size: int) -> Hostile:
    """A huge string (incompressible, so no index can hold it) in a field the contract does
    not bound."""
    filler = secrets.token_hex(size // 2 + 1)[:size]
    record = event.record({**event.data, name: (event.data[name] or "z") + filler})
    return Hostile(
        record,
        frozenset({PROCESSED, dead_lettered("handler_failed")}),
        f"unbounded_{name}",
        stores_ident=True,
    )


def without_content_type(event: Base) -> Hostile:
    """`content-type` is optional in binary mode: the event is fine."""
    record = with_headers(event.record(), content__type=None)
    return Hostile(record, frozenset({PROCESSED}), "without_content_type", stores_ident=True)


def as_is(event: Base) -> Hostile:
    return Hostile(event.record(), frozenset({PROCESSED}), "valid", stores_ident=True)


SQL_AND_HTML = (
    "'); DROP TABLE inbox; --",
    "Robert'); DELETE FROM agents WHERE ('1'='1",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "${jndi:ldap://127.0.0.1/a}",
    "{{7*7}} {% raw %}",
    "\u202e\u200b\ufeff\x07\x1b[31m\r\n\t",
    "\U0001f4a9" * 16,
)
BAD_ENUM_VALUES = ("", "OPT_IN_PUBLIC", "gold", "opt_in_public ", "1", "null")
BAD_INSTANTS = ("2026-11-20T15:00:00", "yesterday", "2026-13-45T25:61:00Z", "", "1700000000")
BAD_SCORES: tuple[Any, ...] = (0, 6, -1, 5.5, "5", True, None, 10**20, [5])
WRONG_CONTENT_TYPES = (
    b"text/plain",
    b"application/xml",
    b"application/octet-stream",
    b"",
    b"json",
)
WRONG_SPECVERSIONS = (b"0.3", b"2.0", b"", b"1.0 ")
BAD_ATTRIBUTES: tuple[tuple[str, bytes], ...] = (
    ("ce_id", b""),
    ("ce_source", b""),
    ("ce_type", b""),
    ("ce_time", b"not a time"),
    ("ce_time", b"2026-11-20T15:00:00"),
    ("ce_id", b"\xff\xfe"),
    ("ce_bad-extension", b"x"),
    ("ce_subject", b""),
)


def text_fields(event_type: EventType) -> list[FieldFacts]:
    return [f for f in fields_of(event_type.model) if f.kind == "text"]


def catalogue(spec: ServiceSpec, topic: str) -> list[Callable[[], Hostile]]:
    """A bounded, deterministic set of hostile records for one topic of one service: every
    mutation once, on the handled types in turn (for the runs through the real broker)."""
    plans: list[Callable[[], Hostile]] = []
    handled = spec.handled_types(topic)
    others = types_of_other_topics(topic)

    def on(event_type: EventType, mutation: Callable[..., Hostile], *args: Any) -> None:
        plans.append(lambda: mutation(base(event_type), *args))

    for n, event_type in enumerate(handled):
        facts = fields_of(event_type.model)
        texts = [f for f in facts if f.kind == "text"]
        required = [f for f in facts if f.required]
        on(event_type, not_json, b"\x00\xff" * (n + 1))
        on(event_type, truncated, 0.5)
        on(event_type, not_an_object, ["[]", "1", "null", '"x"'][n % 4])
        on(event_type, deeply_nested, 20_000)
        on(event_type, empty_value)
        on(event_type, missing_header, REQUIRED_HEADERS[n % len(REQUIRED_HEADERS)])
        on(event_type, wrong_specversion, WRONG_SPECVERSIONS[n % len(WRONG_SPECVERSIONS)])
        for name, value in BAD_ATTRIBUTES[n % 2 :: 2]:
            on(event_type, bad_attribute, name, value)
        on(event_type, key_not_utf8)
        on(event_type, wrong_content_type, WRONG_CONTENT_TYPES[n % len(WRONG_CONTENT_TYPES)])
        on(event_type, unknown_type, b"com.example.evil.v1")
        on(event_type, type_of_another_topic, others[n % len(others)])
        on(event_type, missing_field, required[n % len(required)].name)
        on(event_type, unknown_field, "is_admin", True)
        on(event_type, wrong_type, facts[n % len(facts)].name)
        bounded = [f for f in texts if f.max_length]
        if bounded:
            on(event_type, too_long, bounded[n % len(bounded)].name, 1 + 10_000 * n)
        for f in facts:
            if f.kind == "enum":
                on(event_type, bad_enum, f.name, BAD_ENUM_VALUES[n % len(BAD_ENUM_VALUES)])
            if f.kind == "datetime":
                on(event_type, bad_instant, f.name, BAD_INSTANTS[n % len(BAD_INSTANTS)])
        if "scores" in event_type.model.model_fields:
            for category, value in zip(GOOD_SCORES, BAD_SCORES, strict=False):
                on(event_type, score_out_of_range, category, value)
        on(event_type, padded, 400_000)
        for i, f in enumerate(texts):
            on(event_type, hostile_text, f.name, SQL_AND_HTML[(n + i) % len(SQL_AND_HTML)])
            on(event_type, nul_in_text, f.name)
            if f.max_length is None:
                on(event_type, unbounded_text, f.name, 200_000)
        on(event_type, without_content_type)
    for other in spec.ignored_types(topic):
        on(handled[0], unread_type, other)
    return plans


def all_plans(spec: ServiceSpec) -> list[Callable[[], Hostile]]:
    return [plan for topic in spec.topics for plan in catalogue(spec, topic)]


# what a service's tables hold


async def fingerprint(conn: asyncpg.Connection, schema: str) -> dict[str, tuple[int, str]]:
    """Row count and a hash of the rows, per table of `schema`."""
    tables = await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 "
        "AND table_type = 'BASE TABLE' ORDER BY table_name",
        schema,
    )
    found: dict[str, tuple[int, str]] = {}
    for row in tables:
        table = f'"{schema}"."{row["table_name"]}"'
        summary = await conn.fetchrow(
            "SELECT count(*) AS n, "
            "coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') AS digest "
            f"FROM {table} AS t"
        )
        assert summary is not None
        found[row["table_name"]] = (int(summary["n"]), str(summary["digest"]))
    return found


async def tables_mentioning(
    conn: asyncpg.Connection, schema: str, needles: Iterable[str]
) -> dict[str, list[str]]:
    """For each needle, the tables of `schema` with a row whose text contains it."""
    tables = [
        row["table_name"]
        for row in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 "
            "AND table_type = 'BASE TABLE'",
            schema,
        )
    ]
    found: dict[str, list[str]] = {}
    for needle in needles:
        for table in tables:
            hit = await conn.fetchval(
                f'SELECT EXISTS (SELECT 1 FROM "{schema}"."{table}" AS t '
                "WHERE strpos(t::text, $1) > 0)",
                needle,
            )
            if hit:
                found.setdefault(needle, []).append(table)
    return found
