"""Routing and validation of consumed events, on FastStream's in-memory `TestKafkaBroker`: each
CloudEvents type reaches the handler declared for it as its pydantic model, and what cannot be
read goes to `<topic>.dlq` with its reason. The real-stack tests (tests/integration) keep the
inbox, offsets and retries honest against Kafka and PostgreSQL."""

from __future__ import annotations

import contextvars
import gc
import json
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import pytest
from aiokafka.errors import KafkaConnectionError
from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker
from pydantic import BaseModel

from devtools.asyncapi import service_dispatcher
from shared import messaging
from shared.cloudevents import Envelope, binary_headers
from shared.contracts import (
    LEAD_ASSIGNED,
    REMOVAL_COMPLETED,
    REMOVAL_REQUESTED,
    TRANSACTION_CLOSED,
    EventType,
)
from shared.contracts.examples import EXAMPLES
from shared.contracts.leads import LeadAssigned
from shared.messaging import Delivery, EventDispatcher
from shared.topics import Topic, dlq

SERVICES = ("invitations", "reviews", "scoring", "removals", "directory")


@dataclass
class FakeUnitOfWork:
    """What the dispatcher needs of a unit of work: the inbox, in memory, whose new ids count
    only once the unit of work commits (as the real one's row rolls back with the handler)."""

    envelope: Envelope | None
    inbox: set[str]
    recorded: set[str] = field(default_factory=set)

    async def first_delivery(self) -> bool:
        assert self.envelope is not None
        if self.envelope.id in self.inbox | self.recorded:
            return False
        self.recorded.add(self.envelope.id)
        return True

    @property
    def conn(self) -> FakeUnitOfWork:
        """The batch path hands its connection to `first_deliveries` (faked below)."""
        return self


async def _first_deliveries(conn: FakeUnitOfWork, events: Sequence[tuple[str, str]]) -> set[str]:
    fresh = {ce_id for ce_id, _ in events} - conn.inbox - conn.recorded
    conn.recorded |= fresh
    return fresh


@pytest.fixture(autouse=True)
def _inbox_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(messaging, "first_deliveries", _first_deliveries)


@dataclass
class Consumed:
    """A service's dispatcher wired to a TestKafkaBroker, with its dead letters collected."""

    broker: KafkaBroker
    inbox: set[str] = field(default_factory=set)
    dead: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def unit_of_work(self) -> Any:
        @asynccontextmanager
        async def factory(envelope: Envelope | None = None) -> AsyncIterator[FakeUnitOfWork]:
            uow = FakeUnitOfWork(envelope, self.inbox)
            yield uow
            self.inbox |= uow.recorded  # committed: not reached when the handler raised

        return factory


async def _as_sent(message: KafkaMessage) -> KafkaMessage:
    return message


def _consume(dispatcher: EventDispatcher, *, max_attempts: int = 2) -> Consumed:
    consumed = Consumed(KafkaBroker())
    dispatcher.attach(
        consumed.broker, consumed.unit_of_work(), group_id="test", max_attempts=max_attempts
    )

    async def collect(message: KafkaMessage) -> None:
        headers = dict(message.headers)
        consumed.dead.append((headers["dlq_original_topic"], headers, message.body))

    for topic in sorted(dispatcher.subscribed):
        consumed.broker.subscriber(dlq(topic), decoder=_as_sent)(collect)
    return consumed


def _headers(ce_type: str, ce_id: str = "ce-1") -> dict[str, str]:
    attributes = binary_headers(ce_type, source="/test", ce_id=ce_id, time=None)
    return {name: value.decode() for name, value in attributes.items()}


async def _send(
    broker: KafkaBroker, event_type: EventType, data: BaseModel | bytes, ce_id: str = "ce-1"
) -> None:
    value = data if isinstance(data, bytes) else data.model_dump_json().encode()
    await broker.publish(
        value, event_type.topic, key=b"key", headers=_headers(event_type.ce_type, ce_id)
    )


def _lead(lead_id: str = "L-1") -> LeadAssigned:
    example = EXAMPLES["lead.assigned.v1"]
    assert isinstance(example, LeadAssigned)
    return example.model_copy(update={"lead_id": lead_id})


async def test_an_event_reaches_its_handler_as_its_model_with_unknown_fields_ignored() -> None:
    dispatcher = EventDispatcher("probe")
    handled: list[BaseModel] = []

    @dispatcher.on(LEAD_ASSIGNED)
    async def lead_assigned(event: LeadAssigned, uow: Any) -> None:
        handled.append(event)

    consumed = _consume(dispatcher)
    async with TestKafkaBroker(consumed.broker) as broker:
        payload = {**_lead().model_dump(mode="json"), "added_later": "optional field"}
        await _send(broker, LEAD_ASSIGNED, json.dumps(payload).encode())

    assert handled == [_lead()]
    assert consumed.dead == []


async def test_a_redelivered_ce_id_is_handled_once() -> None:
    dispatcher = EventDispatcher("probe")
    handled: list[str] = []

    @dispatcher.on(LEAD_ASSIGNED)
    async def lead_assigned(event: LeadAssigned, uow: Any) -> None:
        handled.append(event.lead_id)

    consumed = _consume(dispatcher)
    async with TestKafkaBroker(consumed.broker) as broker:
        await _send(broker, LEAD_ASSIGNED, _lead("L-1"), ce_id="same")
        await _send(broker, LEAD_ASSIGNED, _lead("L-1"), ce_id="same")
        await _send(broker, LEAD_ASSIGNED, _lead("L-2"), ce_id="other")

    assert handled == ["L-1", "L-2"]


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"not json", _headers(LEAD_ASSIGNED.ce_type), "value_not_json"),
        (b"[1, 2]", _headers(LEAD_ASSIGNED.ce_type), "data_not_object"),
        (b'{"lead_id": "L-1"}', _headers(LEAD_ASSIGNED.ce_type), "schema_validation_failed"),
        (b"{}", {"content-type": "application/json"}, "missing_cloudevents_headers"),
        (b"{}", _headers("lead.unknown.v1"), "unsupported_type"),
        (b"{}", {**_headers(LEAD_ASSIGNED.ce_type), "ce_specversion": "0.3"}, None),
    ],
    ids=["not-json", "not-an-object", "invalid", "no-headers", "unknown-type", "old-spec"],
)
async def test_what_cannot_be_read_is_dead_lettered_with_its_reason_and_never_handled(
    value: bytes, headers: dict[str, str], reason: str | None
) -> None:
    dispatcher = EventDispatcher("probe")
    handled: list[BaseModel] = []

    @dispatcher.on(LEAD_ASSIGNED)
    async def lead_assigned(event: LeadAssigned, uow: Any) -> None:
        handled.append(event)

    consumed = _consume(dispatcher)
    async with TestKafkaBroker(consumed.broker) as broker:
        await broker.publish(value, Topic.LEADS_ASSIGNED, key=b"L-1", headers=headers)

    assert handled == []
    ((topic, dead_headers, body),) = consumed.dead
    assert topic == Topic.LEADS_ASSIGNED
    assert body == value
    assert dead_headers["dlq_reason"] == (reason or "unsupported_specversion")
    assert dead_headers["dlq_original_topic"] == Topic.LEADS_ASSIGNED
    assert dead_headers["dlq_consumer"] == "probe"


async def test_a_type_of_the_topic_the_service_does_not_handle_is_skipped_not_dead_lettered() -> (
    None
):
    dispatcher = EventDispatcher("probe")
    handled: list[BaseModel] = []

    @dispatcher.on(REMOVAL_COMPLETED)
    async def removal_completed(event: BaseModel, uow: Any) -> None:
        handled.append(event)

    consumed = _consume(dispatcher)
    async with TestKafkaBroker(consumed.broker) as broker:
        await _send(broker, REMOVAL_REQUESTED, EXAMPLES[REMOVAL_REQUESTED.ce_type], ce_id="a")
        await _send(broker, REMOVAL_COMPLETED, EXAMPLES[REMOVAL_COMPLETED.ce_type], ce_id="b")

    assert handled == [EXAMPLES[REMOVAL_COMPLETED.ce_type]]
    assert consumed.dead == []


async def test_a_handler_that_keeps_failing_sends_the_event_to_the_dlq_after_bounded_tries() -> (
    None
):
    dispatcher = EventDispatcher("probe")
    tries: list[str] = []

    @dispatcher.on(LEAD_ASSIGNED)
    async def lead_assigned(event: LeadAssigned, uow: Any) -> None:
        tries.append(event.lead_id)
        raise ValueError("cannot cope")

    consumed = _consume(dispatcher, max_attempts=3)
    async with TestKafkaBroker(consumed.broker) as broker:
        await _send(broker, LEAD_ASSIGNED, _lead("L-poison"))

    assert tries == ["L-poison"] * 3
    ((_, headers, body),) = consumed.dead
    assert headers["dlq_reason"] == "handler_failed"
    assert headers["dlq_detail"] == "ValueError: cannot cope"
    assert headers["ce_type"] == LEAD_ASSIGNED.ce_type
    assert json.loads(body)["lead_id"] == "L-poison"


def _recording_copy(
    dispatcher: EventDispatcher, seen: list[tuple[str, BaseModel]]
) -> EventDispatcher:
    """The service's routing table with every handler replaced by a recorder (the real ones
    need PostgreSQL)."""

    def single(ce_type: str) -> Any:
        async def record(event: BaseModel, uow: Any) -> None:
            seen.append((ce_type, event))

        return record

    def batch(topic: str) -> Any:
        async def record(deliveries: Sequence[Delivery], uow: Any) -> None:
            seen.extend((topic, delivery.event) for delivery in deliveries)

        return record

    return EventDispatcher(
        dispatcher.service,
        publishes=dispatcher.publishes,
        handlers={ce_type: single(ce_type) for ce_type in dispatcher.handlers},
        batch_handlers={topic: batch(topic) for topic in dispatcher.batch_handlers},
        subscribed=set(dispatcher.subscribed),
    )


@pytest.mark.parametrize("service", SERVICES)
async def test_each_service_routes_every_type_it_reads_to_its_handler(
    service: str, caplog: pytest.LogCaptureFixture
) -> None:
    real = service_dispatcher(service)
    seen: list[tuple[str, BaseModel]] = []
    consumed = _consume(_recording_copy(real, seen))
    expected = []
    async with TestKafkaBroker(consumed.broker) as broker:
        for n, event_type in enumerate(
            event_type for types in real.consumed().values() for event_type in types
        ):
            await _send(broker, event_type, EXAMPLES[event_type.ce_type], ce_id=f"ce-{n}")
            route = (
                event_type.topic if event_type.topic in real.batch_handlers else event_type.ce_type
            )
            expected.append((route, EXAMPLES[event_type.ce_type]))

    assert expected, f"{service} reads nothing"
    assert seen == expected
    assert consumed.dead == []
    assert "isolating" not in caplog.text  # batches went through the batch path


async def test_a_reply_to_header_on_an_event_publishes_nothing_back() -> None:
    """An event is not a request: FastStream would publish the handler's result to the topic
    a `reply_to` header names, letting whoever writes a topic make a service write another."""
    dispatcher = EventDispatcher("probe")

    @dispatcher.on(LEAD_ASSIGNED)
    async def lead_assigned(event: LeadAssigned, uow: Any) -> None:
        return None

    consumed = _consume(dispatcher)
    replies: list[bytes] = []

    @consumed.broker.subscriber("elsewhere", decoder=_as_sent)
    async def reply(message: KafkaMessage) -> None:
        replies.append(message.body)

    async with TestKafkaBroker(consumed.broker) as broker:
        headers = {**_headers(LEAD_ASSIGNED.ce_type), "reply_to": "elsewhere"}
        await broker.publish(
            _lead().model_dump_json().encode(), Topic.LEADS_ASSIGNED, key=b"L-1", headers=headers
        )

    assert replies == []
    assert consumed.dead == []


async def test_an_unreachable_database_is_waited_out_not_counted_as_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(messaging.WaitOutInfrastructure, "first_pause", 0.01)
    dispatcher = EventDispatcher("probe")
    tries: list[str] = []

    @dispatcher.on(LEAD_ASSIGNED)
    async def lead_assigned(event: LeadAssigned, uow: Any) -> None:
        tries.append(event.lead_id)
        if len(tries) <= 3:  # more times than the handler may fail
            raise ConnectionRefusedError("the database is not there")

    consumed = _consume(dispatcher, max_attempts=2)
    async with TestKafkaBroker(consumed.broker) as broker:
        await _send(broker, LEAD_ASSIGNED, _lead("L-1"))

    assert tries == ["L-1"] * 4
    assert consumed.dead == []
    assert consumed.inbox == {"ce-1"}


async def test_a_dead_letter_waits_out_a_broker_that_cannot_take_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Acknowledged anyway, a record whose dead letter could not be written would be lost."""
    monkeypatch.setattr(messaging.WaitOutInfrastructure, "first_pause", 0.01)
    dispatcher = EventDispatcher("probe")

    @dispatcher.on(LEAD_ASSIGNED)
    async def lead_assigned(event: LeadAssigned, uow: Any) -> None:
        raise AssertionError("an unreadable event reaches no handler")

    consumed = _consume(dispatcher)
    async with TestKafkaBroker(consumed.broker) as broker:
        publish = broker.publish
        refused: list[str] = []

        async def flaky(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("topic", "").endswith(".dlq") and len(refused) < 2:
                refused.append(kwargs["topic"])
                raise KafkaConnectionError("the broker is not there")
            return await publish(*args, **kwargs)

        monkeypatch.setattr(broker, "publish", flaky)
        await publish(
            b"not json", Topic.LEADS_ASSIGNED, key=b"L-1", headers=_headers(LEAD_ASSIGNED.ce_type)
        )

    assert refused == [dlq(Topic.LEADS_ASSIGNED)] * 2
    ((topic, headers, body),) = consumed.dead
    assert (topic, headers["dlq_reason"], body) == (
        Topic.LEADS_ASSIGNED,
        "value_not_json",
        b"not json",
    )


async def test_handling_an_event_or_a_batch_takes_no_worker_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The unit of work reaches the handler without FastStream's context: a context field is
    resolved in a worker thread per message (shared.messaging.in_unit_of_work)."""
    hops: list[object] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(*args: Any, **kwargs: Any) -> Any:
        hops.append(args[0])
        return await run_sync(*args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    dispatcher = EventDispatcher("probe")
    handled: list[str] = []

    @dispatcher.on(LEAD_ASSIGNED)
    async def lead_assigned(event: LeadAssigned, uow: Any) -> None:
        handled.append(event.lead_id)

    @dispatcher.on_batch(Topic.MLS_TRANSACTIONS)
    async def closings(deliveries: Sequence[Delivery], uow: Any) -> None:
        handled.extend(d.event.transaction_id for d in deliveries)

    consumed = _consume(dispatcher)
    async with TestKafkaBroker(consumed.broker) as broker:
        for n in range(3):
            await _send(broker, LEAD_ASSIGNED, _lead(f"L-{n}"), ce_id=f"lead-{n}")
        closing = EXAMPLES[TRANSACTION_CLOSED.ce_type]
        await _send(broker, TRANSACTION_CLOSED, closing, ce_id="closing")

    assert len(handled) == 4
    assert hops == []


@pytest.mark.parametrize("batch", [False, True])
async def test_a_handled_message_keeps_no_decoded_events_alive(batch: bool) -> None:
    """asyncpg's statement cache schedules timers that keep the context they were scheduled
    in, and FastStream's current message with it, for minutes: the events decoded from a batch
    of thousands must not stay with the message (they did: +60 MB peak in the scoring bench)."""
    dispatcher = EventDispatcher("probe")
    contexts: list[contextvars.Context] = []
    decoded: list[weakref.ref[BaseModel]] = []

    def remember(events: Sequence[BaseModel]) -> None:
        contexts.append(contextvars.copy_context())  # as loop.call_later does
        decoded.extend(weakref.ref(event) for event in events)

    if batch:

        @dispatcher.on_batch(Topic.LEADS_ASSIGNED)
        async def leads(deliveries: Sequence[Delivery], uow: Any) -> None:
            remember([delivery.event for delivery in deliveries])

    else:

        @dispatcher.on(LEAD_ASSIGNED)
        async def lead(event: LeadAssigned, uow: Any) -> None:
            remember([event])

    consumed = _consume(dispatcher)
    async with TestKafkaBroker(consumed.broker) as broker:
        for subscriber in consumed.broker.subscribers:
            for call in subscriber.calls:
                call.handler.reset_test()  # the test client's recorder keeps every message
        await _send(broker, LEAD_ASSIGNED, _lead("L-1"))

    gc.collect()
    assert len(contexts) == len(decoded) == 1
    assert decoded[0]() is None
