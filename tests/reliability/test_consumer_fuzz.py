"""Hostile events against every consumer of every service.

Two levels. Hypothesis drives generated events straight into each service's real consumer
(its FastStream subscribers as `shared.messaging` declares them: parser, typed handlers and
middlewares, on `TestKafkaBroker`, which takes the dead letters in memory) on a fresh
PostgreSQL schema: every event is
dead-lettered for the expected reason, ignored, or processed exactly once, and one that is not
processed leaves every table unchanged. Then a bounded catalogue of hostile records goes
through the real broker to each service running in-process: each ends on `<topic>.dlq` with
its reason (or is processed, if it was valid), nothing of a refused event reaches the tables,
and valid markers sent afterwards to every partition are still processed.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.subscriber.usecase import BatchSubscriber
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.smtp_sink import MailSink
from shared.clock import FixedClock
from shared.cloudevents import REQUIRED_HEADERS
from shared.contracts import EVENTS, EventType
from shared.crypto import PiiCipher
from shared.db import apply_migrations, create_pool
from shared.topics import dlq, partitions_of
from shared.uow import UnitOfWorkFactory
from tests.conftest import running_app
from tests.reliability import hostile
from tests.reliability.hostile import (
    BAD_ATTRIBUTES,
    BAD_INSTANTS,
    GOOD_SCORES,
    IGNORED,
    NOW,
    PII_KEY,
    PROCESSED,
    SERVICES,
    SQL_AND_HTML,
    Hostile,
    Raw,
    ServiceSpec,
    fields_of,
    types_of_other_topics,
)
from tests.support.kafka import EventPublisher, TopicReader, dispatcher_of, start_group_at_end
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

DUPLICATE = "duplicate"
FAST_EXAMPLES = 40
SLOW_EXAMPLES = 400


# level 1: hypothesis straight into the consumer


@dataclass(frozen=True)
class Observation:
    outcome: str
    changed: bool
    detail: str = ""


@dataclass
class Harness:
    spec: ServiceSpec
    pool: asyncpg.Pool
    schema: str
    consumers: dict[str, Any]
    """Topic -> the service's FastStream subscriber of it."""
    dead_letters: list[tuple[str, str]] = field(default_factory=list)
    """(reason, detail) of each dead letter, as the DLQ topics' readers took them."""
    offsets: itertools.count[int] = field(default_factory=itertools.count)
    outcomes: dict[str, int] = field(default_factory=dict)

    async def deliver(self, record: Raw) -> Observation:
        consumer = self.consumers[record.topic]
        self.dead_letters.clear()
        async with self.pool.acquire() as conn:
            before = await hostile.fingerprint(conn, self.schema)
        message = ConsumerRecord(
            topic=record.topic,
            partition=0,
            offset=next(self.offsets),
            timestamp=0,
            timestamp_type=0,
            key=record.key,
            value=record.value,
            checksum=None,
            serialized_key_size=len(record.key or b""),
            serialized_value_size=len(record.value),
            headers=list(record.headers.items()),
        )
        # as aiokafka delivers it: the record, or a batch of it
        await consumer.process_message(
            (message,) if isinstance(consumer, BatchSubscriber) else message
        )
        async with self.pool.acquire() as conn:
            after = await hostile.fingerprint(conn, self.schema)
            seen = record.ce_id is not None and bool(
                await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM inbox WHERE ce_id = $1)", record.ce_id
                )
            )
        changed = after != before
        if self.dead_letters:
            assert len(self.dead_letters) == 1, self.dead_letters
            reason, detail = self.dead_letters[0]
            observation = Observation(hostile.dead_lettered(reason), changed, detail)
        elif seen:
            observation = Observation(PROCESSED if changed else DUPLICATE, changed)
        else:
            observation = Observation(IGNORED, changed)
        self.outcomes[observation.outcome] = self.outcomes.get(observation.outcome, 0) + 1
        return observation


@pytest.fixture(scope="module", params=sorted(SERVICES))
async def harness(
    request: pytest.FixtureRequest, kafka_bootstrap: str, database_url: str, smtp_sink: MailSink
) -> AsyncIterator[Harness]:
    spec = SERVICES[request.param]
    settings_ = spec.settings(kafka_bootstrap, database_url, smtp_port=smtp_sink.port)
    dispatcher = dispatcher_of(spec.create_app(settings_))
    schema = settings_.db_schema
    pool = await create_pool(database_url, schema)
    await apply_migrations(pool, schema, spec.migrations)
    units = UnitOfWorkFactory(pool, FixedClock(NOW), f"/ratings/{spec.name}", PiiCipher(PII_KEY))
    broker = KafkaBroker(kafka_bootstrap)
    members = dispatcher.attach(broker, units, group_id=f"fuzz-{spec.name}", max_attempts=2)
    harness = Harness(
        spec, pool, schema, dict(zip(sorted(dispatcher.subscribed), members, strict=True))
    )

    async def as_sent(message: Any) -> Any:
        return message

    async def dead_letter(message: Any) -> None:
        harness.dead_letters.append((message.headers["dlq_reason"], message.headers["dlq_detail"]))

    for topic in dispatcher.subscribed:
        broker.subscriber(dlq(topic), decoder=as_sent)(dead_letter)
    try:
        async with TestKafkaBroker(broker):
            yield harness
    finally:
        await pool.close()


@dataclass(frozen=True)
class Plan:
    """One mutation with its arguments, applied to a fresh valid event when called."""

    event_type: EventType
    mutation: Callable[..., Hostile]
    args: tuple[Any, ...] = ()

    def __call__(self) -> Hostile:
        return self.mutation(hostile.base(self.event_type), *self.args)

    def __repr__(self) -> str:
        shown = [repr(a)[:80] for a in self.args]
        return f"{self.mutation.__name__}({self.event_type.ce_type}, {', '.join(shown)})"


NO_SURROGATES = st.characters(exclude_categories=["Cs"])
TEXT = st.text(NO_SURROGATES, max_size=40)


@st.composite
def plans(draw: st.DrawFn, spec: ServiceSpec) -> Plan:
    topic = draw(st.sampled_from(spec.topics))
    event_type = draw(st.sampled_from(spec.handled_types(topic)))
    facts = fields_of(event_type.model)
    texts = [f for f in facts if f.kind == "text"]
    options: list[st.SearchStrategy[tuple[Callable[..., Hostile], tuple[Any, ...]]]] = [
        st.tuples(st.just(hostile.not_json), st.tuples(st.binary(max_size=200))),
        st.tuples(st.just(hostile.truncated), st.tuples(st.floats(0, 1))),
        st.tuples(
            st.just(hostile.not_an_object),
            st.tuples(
                st.one_of(
                    st.sampled_from(["[]", "1", "null", '"x"', "true", "[{}]", "-0.5e10"]),
                    st.lists(st.integers(), max_size=5).map(json.dumps),
                )
            ),
        ),
        st.tuples(st.just(hostile.deeply_nested), st.tuples(st.integers(500, 50_000))),
        st.tuples(st.just(hostile.empty_value), st.just(())),
        st.tuples(st.just(hostile.missing_header), st.tuples(st.sampled_from(REQUIRED_HEADERS))),
        st.tuples(
            st.just(hostile.wrong_specversion),
            st.tuples(TEXT.filter(lambda v: v != "1.0").map(str.encode)),
        ),
        st.tuples(
            st.just(hostile.bad_attribute),
            st.one_of(
                st.sampled_from(BAD_ATTRIBUTES),
                st.tuples(st.just("ce_id"), st.binary(min_size=1).filter(_not_utf8)),
                st.tuples(
                    st.from_regex(r"ce_[a-z]{0,5}[^a-zA-Z0-9][a-z]{0,5}", fullmatch=True),
                    st.just(b"x"),
                ),
            ),
        ),
        st.tuples(st.just(hostile.key_not_utf8), st.just(())),
        st.tuples(
            st.just(hostile.wrong_content_type),
            st.tuples(TEXT.filter(lambda v: "json" not in v.lower()).map(str.encode)),
        ),
        st.tuples(
            st.just(hostile.unknown_type),
            st.tuples(
                st.text(NO_SURROGATES, min_size=1, max_size=60)
                .filter(lambda v: v not in {e.ce_type for e in EVENTS.values()})
                .map(str.encode)
            ),
        ),
        st.tuples(
            st.just(hostile.type_of_another_topic),
            st.tuples(st.sampled_from(types_of_other_topics(topic))),
        ),
        st.tuples(
            st.just(hostile.missing_field),
            st.tuples(st.sampled_from([f.name for f in facts if f.required])),
        ),
        st.tuples(
            st.just(hostile.unknown_field),
            st.tuples(
                TEXT.filter(lambda n: n not in event_type.model.model_fields),
                st.one_of(st.none(), st.booleans(), st.integers(), TEXT),
            ),
        ),
        st.tuples(st.just(hostile.wrong_type), st.tuples(st.sampled_from([f.name for f in facts]))),
        st.tuples(st.just(hostile.padded), st.tuples(st.integers(1_000, 600_000))),
        st.tuples(st.just(hostile.without_content_type), st.just(())),
        st.tuples(st.just(hostile.as_is), st.just(())),
    ]
    bounded = [f.name for f in texts if f.max_length]
    if bounded:
        options.append(
            st.tuples(
                st.just(hostile.too_long),
                st.tuples(st.sampled_from(bounded), st.integers(1, 100_000)),
            )
        )
    enums = [f.name for f in facts if f.kind == "enum"]
    if enums:
        options.append(
            st.tuples(
                st.just(hostile.bad_enum),
                st.tuples(st.sampled_from(enums), TEXT.map(lambda v: f"zz{v}")),
            )
        )
    instants = [f.name for f in facts if f.kind == "datetime"]
    if instants:
        naive = st.datetimes().map(lambda d: d.isoformat())
        options.append(
            st.tuples(
                st.just(hostile.bad_instant),
                st.tuples(
                    st.sampled_from(instants),
                    st.one_of(st.sampled_from(BAD_INSTANTS), naive, TEXT.map(lambda v: f"x{v}")),
                ),
            )
        )
    if "scores" in event_type.model.model_fields:
        options.append(
            st.tuples(
                st.just(hostile.score_out_of_range),
                st.tuples(
                    st.sampled_from(list(GOOD_SCORES)),
                    st.one_of(
                        st.integers().filter(lambda v: not 1 <= v <= 5),
                        st.floats(allow_nan=False, allow_infinity=False),
                        TEXT,
                        st.booleans(),
                        st.none(),
                        st.lists(st.integers(1, 5), max_size=2),
                    ),
                ),
            )
        )
    if texts:
        names = st.sampled_from([f.name for f in texts])
        options += [
            st.tuples(
                st.just(hostile.hostile_text),
                st.tuples(
                    names,
                    st.one_of(
                        st.sampled_from(SQL_AND_HTML),
                        st.text(NO_SURROGATES.filter(lambda c: c != "\x00"), max_size=300),
                    ),
                ),
            ),
            st.tuples(st.just(hostile.nul_in_text), st.tuples(names)),
        ]
        unbounded = [f.name for f in texts if f.max_length is None]
        if unbounded:
            options.append(
                st.tuples(
                    st.just(hostile.unbounded_text),
                    st.tuples(st.sampled_from(unbounded), st.integers(1, 300_000)),
                )
            )
    ignored = spec.ignored_types(topic)
    if ignored:
        options.append(st.tuples(st.just(hostile.unread_type), st.tuples(st.sampled_from(ignored))))
    mutation, args = draw(st.one_of(options))
    return Plan(event_type, mutation, args)


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return True
    return False


async def _check_one(harness: Harness, plan: Plan) -> None:
    made = plan()
    first = await harness.deliver(made.record)
    assert first.outcome in made.expected, (plan, first)
    if first.outcome == PROCESSED:
        again = await harness.deliver(made.record)
        assert again.outcome == DUPLICATE and not again.changed, ("redelivery", plan, again)
    else:
        assert not first.changed, ("a refused or ignored event changed the tables", plan, first)


FUZZ_SETTINGS = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
}


@settings(max_examples=FAST_EXAMPLES, **FUZZ_SETTINGS)  # type: ignore[arg-type]
@given(data=st.data())
async def test_generated_hostile_events_are_refused_ignored_or_processed_once(
    harness: Harness, data: st.DataObject
) -> None:
    await _check_one(harness, data.draw(plans(harness.spec), label="plan"))


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, **FUZZ_SETTINGS)  # type: ignore[arg-type]
@given(data=st.data())
async def test_many_generated_hostile_events_are_refused_ignored_or_processed_once(
    harness: Harness, data: st.DataObject
) -> None:
    await _check_one(harness, data.draw(plans(harness.spec), label="plan"))


async def test_every_mutation_of_the_catalogue_once_into_the_consumer(harness: Harness) -> None:
    """The deterministic catalogue (the one sent through the broker below), with the tables
    compared around each event; the outcome counts are printed for docs/reliability.md."""
    failed_in_handler: list[str] = []
    for plan in hostile.all_plans(harness.spec):
        made = plan()
        first = await harness.deliver(made.record)
        assert first.outcome in made.expected, (made.label, first)
        if first.outcome == PROCESSED:
            again = await harness.deliver(made.record)
            assert again.outcome == DUPLICATE and not again.changed, (made.label, again)
        else:
            assert not first.changed, (made.label, first)
        if first.outcome == hostile.dead_lettered("handler_failed"):
            failed_in_handler.append(f"{made.label} on {made.record.topic}")
    print(f"\n{harness.spec.name}: dead-lettered by the handler: {sorted(failed_in_handler)}")
    print(f"\n{harness.spec.name}: {dict(sorted(harness.outcomes.items()))}")


# level 2: through the real broker to the running service


@dataclass(frozen=True)
class Sent:
    hostile: Hostile
    partition: int
    offset: int


async def _send(
    publish_event: EventPublisher, record: Raw, partition: int | None = None
) -> tuple[int, int]:
    """Produce the record as is; where it landed (partition, offset)."""
    metadata = await publish_event.producer.send_and_wait(
        record.topic,
        value=record.value,
        key=record.key,
        headers=list(record.headers.items()),
        partition=partition,
    )
    return metadata.partition, metadata.offset


async def _in_inbox(pool: asyncpg.Pool, ce_ids: list[str]) -> set[str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT ce_id FROM inbox WHERE ce_id = ANY($1::text[])", ce_ids)
    return {row["ce_id"] for row in rows}


@pytest.mark.parametrize("service_name", sorted(SERVICES))
async def test_hostile_batch_through_the_broker_goes_to_the_dlq_and_consumption_goes_on(
    service_name: str,
    kafka_bootstrap: str,
    database_url: str,
    smtp_sink: MailSink,
    publish_event: EventPublisher,
) -> None:
    spec = SERVICES[service_name]
    settings_ = spec.settings(
        kafka_bootstrap, database_url, smtp_port=smtp_sink.port, consumer_max_attempts=2
    )
    await start_group_at_end(kafka_bootstrap, settings_.group_id, spec.topics)
    readers = {
        topic: await TopicReader(kafka_bootstrap, dlq(topic)).start() for topic in spec.topics
    }
    app = spec.create_app(settings_, clock=FixedClock(NOW))
    try:
        async with running_app(app):
            pool: asyncpg.Pool = app.state.runtime.pool
            sent: list[Sent] = []
            for plan in hostile.all_plans(spec):
                made = plan()
                partition, offset = await _send(publish_event, made.record)
                sent.append(Sent(made, partition, offset))
            # a valid marker on every partition of every topic, after the hostile records
            markers = []
            for topic in spec.topics:
                event_type = spec.handled_types(topic)[0]
                for partition in await partitions_of(kafka_bootstrap, topic):
                    marker = hostile.as_is(hostile.base(event_type)).record
                    await _send(publish_event, marker, partition)
                    markers.append(marker.ce_id or "")

            async def markers_processed() -> bool:
                return len(await _in_inbox(pool, markers)) == len(markers)

            await eventually(markers_processed, timeout=180, every=0.5)
            outcomes = await _outcomes(spec, readers, pool, sent)
            refused = [
                s.hostile.record.ce_id
                for s, outcome in zip(sent, outcomes, strict=True)
                if outcome != PROCESSED
            ]
            async with pool.acquire() as conn:
                traces = await hostile.tables_mentioning(
                    conn, settings_.db_schema, [ce_id for ce_id in refused if ce_id]
                )
    finally:
        for reader in readers.values():
            await reader.stop()
    wrong = [
        (s.hostile.label, s.hostile.record.topic, outcome)
        for s, outcome in zip(sent, outcomes, strict=True)
        if outcome not in s.hostile.expected
    ]
    assert not wrong, wrong
    assert not traces, f"refused events left rows behind: {traces}"
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    print(f"\n{service_name}: {len(sent)} hostile records, {len(markers)} markers; {counts}")


async def _outcomes(
    spec: ServiceSpec, readers: dict[str, TopicReader], pool: asyncpg.Pool, sent: list[Sent]
) -> list[str]:
    """Each record's fate: its dead letter (matched by origin), its inbox row, or neither."""
    processed = await _in_inbox(pool, [s.hostile.record.ce_id or "" for s in sent])
    fates: dict[tuple[str, int, int], str] = {}
    for reader in readers.values():
        await reader.collect(2.0)
        for record in reader.records:
            headers = {name: value.decode(errors="replace") for name, value in record.headers}
            if headers.get("dlq_consumer") != spec.name:
                continue
            origin = (
                headers["dlq_original_topic"],
                int(headers["dlq_original_partition"]),
                int(headers["dlq_original_offset"]),
            )
            fates[origin] = hostile.dead_lettered(headers["dlq_reason"])
    outcomes = []
    for s in sent:
        origin = (s.hostile.record.topic, s.partition, s.offset)
        if origin in fates:
            outcomes.append(fates[origin])
        elif s.hostile.record.ce_id in processed:
            outcomes.append(PROCESSED)
        else:
            outcomes.append(IGNORED)
    return outcomes
