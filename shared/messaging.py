"""Consuming events with FastStream: a CloudEvents parser, typed routes, and middlewares.

A service declares what it reads beside its handlers (`EventDispatcher.on(EVENT)`, or
`on_batch(topic)`), and `attach` turns that into FastStream declarations on the broker:

- one subscriber per topic (a consumer in the service's group), whose `parser=`
  (`parse_cloudevents`) reads the CloudEvents binary-mode attributes of each record;
- on it, one handler per CloudEvents type, chosen by `filter=` on `ce_type`, whose `decoder=`
  validates the data into the type's pydantic model, and a last catch-all handler: a type of the
  topic the service does not read is ignored (a tolerant reader), anything else it cannot read
  is rejected with its reason;
- a batch subscriber instead for a topic read `on_batch` (scoring's reviews, the directory's
  public streams): one handler takes every event of a poll in one transaction;
- broker middlewares (FastStream `BaseMiddleware`s, `consume_scope`) for what surrounds every
  handler, outermost first: metrics, the consumer span (tracing), dead-lettering, retries and
  waiting out an unreachable database or broker.

Every subscriber commits its offset only after the handler's database transaction (inbox row +
effects + outbox rows) has committed (`AckPolicy.ACK`), so a crash redelivers and the inbox
makes the redelivery a no-op. A message that cannot be decoded or validated goes to
`<topic>.dlq` at once; one whose handler keeps failing goes there after a bounded number of
tries; an unreachable database or broker is waited out, never dead-lettered. No exception
leaves the middlewares (but cancellation), so FastStream acknowledges every message once it is
handled, dead-lettered or ignored.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from faststream import AckPolicy, BaseMiddleware
from faststream.kafka import KafkaBroker

from shared.cloudevents import Envelope, InvalidEvent, decode_attributes, validate_data
from shared.contracts import EVENTS, EventType, event_type_of
from shared.inbox import first_deliveries
from shared.metrics import DEAD_LETTERED, EVENT_HANDLING_SECONDS, EVENTS_CONSUMED, HANDLER_RETRIES
from shared.topics import dlq
from shared.tracing import consuming

if TYPE_CHECKING:
    from faststream.message import StreamMessage

    from shared.uow import UnitOfWork

logger = logging.getLogger(__name__)

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    KafkaConnectionError,
    KafkaTimeoutError,
)
"""Failures of what surrounds the handler: wait them out instead of dead-lettering."""

HEARTBEAT_INTERVAL_MS = 1000
"""A tenth of aiokafka's 10 s session timeout: a member learns of a rebalance (a new instance,
one leaving) within a second instead of three."""

Outcome = Counter[str]
"""How many events of a message were processed, duplicate, ignored or dead-lettered."""


@dataclass(frozen=True)
class Delivery:
    """A decoded, validated event and where it came from."""

    event_type: EventType
    event: Any
    envelope: Envelope
    topic: str
    partition: int
    offset: int


Handler = Callable[[Any, "UnitOfWork"], Awaitable[None]]
BatchHandler = Callable[[Sequence[Delivery], "UnitOfWork"], Awaitable[None]]


class UnitOfWorkFactory(Protocol):
    def __call__(self, envelope: Envelope | None = None) -> Any: ...


@dataclass
class RawRecord:
    """A record as read from Kafka (header values as bytes): what a dead letter copies."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]

    @classmethod
    def of(cls, record: Any) -> RawRecord:
        """From aiokafka's `ConsumerRecord`."""
        headers = {name: bytes(value) for name, value in (record.headers or [])}
        return cls(record.topic, record.partition, record.offset, record.key, record.value, headers)


@dataclass(frozen=True)
class Batch:
    """What a batch subscriber's decoder makes of one poll: the events it can hand to the
    handler, each with its record, and the records it rejects, each with why."""

    deliveries: list[Delivery]
    records: list[Any]
    rejected: list[tuple[Any, InvalidEvent]]


# -- parsing: the CloudEvents attributes of each record ---------------------------------------


Parsed = Envelope | InvalidEvent
"""A record's CloudEvents attributes, or why it has none a consumer can read."""


def cloudevents_of(message: StreamMessage[Any]) -> list[Parsed] | None:
    """What `parse_cloudevents` read from each record of the message (None: another parser's)."""
    parsed: list[Parsed] | None = getattr(message, "cloudevents", None)
    return parsed


def _records_of(message: StreamMessage[Any]) -> list[Any]:
    raw = message.raw_message
    return list(raw) if isinstance(raw, tuple | list) else [raw]


def _single(message: StreamMessage[Any]) -> Parsed:
    """The attributes of a single subscriber's one record."""
    parsed = cloudevents_of(message)
    if parsed is None or len(parsed) != 1:
        raise TypeError("not a record parse_cloudevents read")
    return parsed[0]


async def _batch(message: StreamMessage[Any]) -> Batch:
    """A batch subscriber's message as `validated_batch` decoded it (once: FastStream caches)."""
    batch = await message.decode()
    if not isinstance(batch, Batch):
        raise TypeError("not a batch validated_batch decoded")
    return batch


def _is_batch(message: StreamMessage[Any]) -> bool:
    """A batch subscriber's message: its records as a tuple (a list in `TestKafkaBroker`)."""
    return isinstance(message.raw_message, tuple | list)


def _attributes(record: Any) -> Parsed:
    headers = {name: bytes(value) for name, value in (record.headers or [])}
    try:
        return decode_attributes(record.key, record.value, headers)
    except InvalidEvent as exc:
        return exc


async def parse_cloudevents(record: Any, parse: Callable[[Any], Awaitable[Any]]) -> Any:
    """The subscribers' `parser=`: FastStream's message, with the CloudEvents binary-mode
    attributes of each of its records (`cloudevents_of`) read from the header bytes as sent.

    FastStream decodes every header as UTF-8 before any subscriber code runs: one record with
    other bytes in a header would fail the whole poll and, acknowledged anyway, be lost unseen
    (with every event polled beside it, for a batch subscriber). So such a record is parsed from
    a copy whose headers are decoded leniently, the message keeps the original record, and the
    attributes are read (and rejected) from its bytes."""
    try:
        message = await parse(record)
    except UnicodeDecodeError:
        lenient = (
            tuple(_lenient_headers(item) for item in record)
            if isinstance(record, tuple | list)
            else _lenient_headers(record)
        )
        message = await parse(lenient)
        message.raw_message = record
    message.cloudevents = [_attributes(item) for item in _records_of(message)]
    return message


def _lenient_headers(record: Any) -> Any:
    headers = [
        (name, bytes(value).decode(errors="replace").encode()) for name, value in record.headers
    ]
    return dataclasses.replace(record, headers=headers)


# -- routing and decoding: one handler per CloudEvents type -----------------------------------


def of_type(ce_type: str) -> Callable[[StreamMessage[Any]], Awaitable[bool]]:
    """`filter=` for the handler of one CloudEvents type."""

    async def is_of_type(message: StreamMessage[Any]) -> bool:
        parsed = cloudevents_of(message)
        return parsed is not None and type(parsed[0]) is Envelope and parsed[0].type == ce_type

    is_of_type.__name__ = f"ce_type == {ce_type!r}"
    return is_of_type


def validated_as(event_type: EventType) -> Callable[[StreamMessage[Any]], Awaitable[Delivery]]:
    """`decoder=` for the handler of `event_type`: the data validated into its model (one
    parse of the bytes), or InvalidEvent saying what is wrong."""

    async def decode(message: StreamMessage[Any]) -> Delivery:
        envelope = _single(message)
        if not isinstance(envelope, Envelope):  # the filter let only an Envelope through
            raise envelope
        record = message.raw_message
        return Delivery(
            event_type,
            validate_data(envelope, event_type.model),
            envelope,
            record.topic,
            record.partition,
            record.offset,
        )

    return decode


async def _as_is(message: StreamMessage[Any]) -> StreamMessage[Any]:
    return message


def _unhandled(service: str) -> Callable[[Any], Awaitable[Any]]:
    """The last handler of a topic's subscriber: what no typed handler took. A type the topic
    carries but the service does not read is ignored (a tolerant reader); anything else is
    rejected (InvalidEvent: the dead-letter middleware sends it to the DLQ)."""

    async def unhandled(message: Any) -> Any:
        parsed = _single(message)
        if isinstance(parsed, InvalidEvent):
            raise parsed
        topic = message.raw_message.topic
        if event_type_of(topic, parsed.type) is None:
            raise InvalidEvent("unsupported_type", f"{parsed.type} on {topic}")
        return Counter(ignored=1)

    unhandled.__name__ = f"{service}_ignores"
    return unhandled


def validated_batch(topic: str) -> Callable[[StreamMessage[Any]], Awaitable[Batch]]:
    """`decoder=` of a batch subscriber: each record's data validated into its type's model;
    those that cannot be read are set apart with their reason, not handed to the handler."""

    async def decode(message: StreamMessage[Any]) -> Batch:
        batch = Batch([], [], [])
        for record, parsed in zip(_records_of(message), cloudevents_of(message) or (), strict=True):
            try:
                if isinstance(parsed, InvalidEvent):
                    raise parsed
                event_type = event_type_of(topic, parsed.type)
                if event_type is None:
                    raise InvalidEvent("unsupported_type", f"{parsed.type} on {topic}")
                event = validate_data(parsed, event_type.model)
            except InvalidEvent as exc:
                batch.rejected.append((record, exc))
                continue
            batch.deliveries.append(
                Delivery(event_type, event, parsed, topic, record.partition, record.offset)
            )
            batch.records.append(record)
        return batch

    return decode


# -- the unit of work around each handler -----------------------------------------------------


def in_unit_of_work(
    handler: Handler, unit_of_work: UnitOfWorkFactory
) -> Callable[[Any], Awaitable[Any]]:
    """What FastStream calls for one event: `handler(event, uow)` in a unit of work whose inbox
    row makes a redelivered `ce_id` a no-op.

    The unit of work is handed over here, not as a FastStream dependency: the event is
    FastStream's decoded body (`validated_as`), and the unit of work is opened around the
    handler by this closure, so nothing is resolved from FastStream's context per message. A
    context field (`Context()`, or a `KafkaMessage` annotation) is resolved by fast_depends as
    a sync call in a worker thread, and that thread hop (and the GIL it then contends for) cost
    more than the handler on a stream of small events. Measured on FastStream 0.7.8 in-process
    (`TestKafkaBroker`, 1,000 messages): a handler asking for `KafkaMessage` made 1,000
    `anyio.to_thread.run_sync` calls and took 540 µs a message against 248 µs without; a unit
    test holds the consumers to none."""

    async def consume(delivery: Any) -> Any:
        async with unit_of_work(delivery.envelope) as uow:
            if not await uow.first_delivery():
                return Counter(duplicate=1)
            await handler(delivery.event, uow)
            return Counter(processed=1)

    consume.__name__ = _name_of(handler)
    return consume


def batch_in_unit_of_work(
    handler: BatchHandler, unit_of_work: UnitOfWorkFactory
) -> Callable[[Any], Awaitable[Any]]:
    """What FastStream calls for a batch: `handler(deliveries, uow)` with the events not seen
    before (by the inbox, in one statement), in one unit of work."""

    async def consume(batch: Any) -> Any:
        deliveries: list[Delivery] = batch.deliveries
        async with unit_of_work(None) as uow:
            fresh_ids = await first_deliveries(
                uow.conn, [(d.envelope.id, d.envelope.type) for d in deliveries]
            )
            seen: set[str] = set()
            fresh = []
            for delivery in deliveries:
                if delivery.envelope.id in fresh_ids and delivery.envelope.id not in seen:
                    seen.add(delivery.envelope.id)
                    fresh.append(delivery)
            if fresh:
                await handler(fresh, uow)
        return Counter(processed=len(fresh), duplicate=len(deliveries) - len(fresh))

    consume.__name__ = _name_of(handler)
    return consume


def _name_of(handler: Any) -> str:
    """The handler's name (a `functools.partial`'s function's), for FastStream's logs."""
    function = getattr(handler, "func", handler)
    return str(getattr(handler, "__name__", None) or getattr(function, "__name__", "handler"))


# -- the middlewares: what surrounds every handler --------------------------------------------


@dataclass(frozen=True)
class Consumption:
    """What the consuming middlewares of one service's broker share."""

    service: str
    broker: KafkaBroker
    max_attempts: int

    def middlewares(self) -> list[Any]:
        """Outermost first (FastStream runs a broker's middlewares in the order added)."""
        return [
            partial(middleware, consumption=self)
            for middleware in (
                ConsumerMetrics,
                ConsumerTracing,
                DeadLetters,
                Retries,
                WaitOutInfrastructure,
            )
        ]

    async def dead_letter(self, record: Any, reason: str, detail: str) -> None:
        """Publish `record` (value, key, headers as sent) to `<topic>.dlq` with `dlq_*` headers
        saying why and where from (shared.dlq lists and re-drives them)."""
        raw = RawRecord.of(record)
        headers = {name: value.decode(errors="replace") for name, value in raw.headers.items()}
        headers.update(
            {
                "dlq_reason": reason,
                "dlq_detail": detail[:1000],
                "dlq_original_topic": raw.topic,
                "dlq_original_partition": str(raw.partition),
                "dlq_original_offset": str(raw.offset),
                "dlq_consumer": self.service,
                "dlq_at": datetime.now().astimezone().isoformat(),
            }
        )
        await WaitOutInfrastructure.waiting(
            self.service,
            raw.topic,
            partial(
                self.broker.publish,
                raw.value or b"",
                topic=dlq(raw.topic),
                key=raw.key,
                headers=headers,
            ),
        )
        DEAD_LETTERED.labels(self.service, raw.topic, reason).inc()
        logger.warning(
            "message dead-lettered",
            extra={
                "topic": raw.topic,
                "partition": raw.partition,
                "offset": raw.offset,
                "reason": reason,
                "detail": detail[:300],
            },
        )


class ConsumingMiddleware(BaseMiddleware):
    """A consume-side middleware of the service's subscribers: messages another parser made
    (not this module's subscribers) pass through untouched."""

    def __init__(self, msg: Any, /, *, context: Any, consumption: Consumption) -> None:
        super().__init__(msg, context=context)
        self.consumption = consumption

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        parsed = cloudevents_of(msg)
        if parsed is None:
            return await call_next(msg)
        return await self.around(call_next, msg, parsed)

    async def around(
        self, call_next: Any, msg: StreamMessage[Any], parsed: list[Parsed]
    ) -> Outcome:
        raise NotImplementedError


def _topic_of(msg: StreamMessage[Any]) -> str:
    raw = msg.raw_message
    return str((raw[0] if isinstance(raw, tuple | list) else raw).topic)


class ConsumerMetrics(ConsumingMiddleware):
    """Events consumed by outcome, and the time from receipt to commit of each message. The
    outermost of these middlewares, it also lets go of what was decoded (`_release`)."""

    async def around(
        self, call_next: Any, msg: StreamMessage[Any], parsed: list[Parsed]
    ) -> Outcome:
        started = time.perf_counter()
        try:
            outcome: Outcome = await call_next(msg)
        finally:
            _release(msg)
        service, topic = self.consumption.service, _topic_of(msg)
        for name, count in outcome.items():
            EVENTS_CONSUMED.labels(service, topic, name).inc(count)
        EVENT_HANDLING_SECONDS.labels(service, topic).observe(time.perf_counter() - started)
        return outcome


def _release(msg: StreamMessage[Any]) -> None:
    """Drop the events decoded from a handled message (FastStream's decode cache) and their
    attributes. The message itself outlives its handling: asyncpg's statement cache schedules
    timers (`loop.call_later`) that keep the context they were scheduled in, FastStream's current
    message with it, for minutes; with a batch of thousands of models in its cache, that was
    +60 MB of peak memory in the scoring benchmark."""
    msg.clear_cache()
    msg.cloudevents = []  # type: ignore[attr-defined]


class ConsumerTracing(ConsumingMiddleware):
    """A CONSUMER span in the trace of the event (the first of a batch; the others linked),
    around every attempt (shared.tracing.consuming): what the handler publishes joins it."""

    async def around(
        self, call_next: Any, msg: StreamMessage[Any], parsed: list[Parsed]
    ) -> Outcome:
        envelopes = [p for p in parsed if type(p) is Envelope]
        if not envelopes:
            return await call_next(msg)  # type: ignore[no-any-return]
        with consuming(_topic_of(msg), envelopes):
            return await call_next(msg)  # type: ignore[no-any-return]


class DeadLetters(ConsumingMiddleware):
    """What cannot be read (InvalidEvent) goes to the DLQ at once with its reason; what the
    handler keeps failing on (after `Retries`) with `handler_failed`. A batch's unreadable
    records go first, then the batch is handled; if it fails, each of its events is handled
    on its own (with retries), so one poison event is dead-lettered and the others are not."""

    async def around(
        self, call_next: Any, msg: StreamMessage[Any], parsed: list[Parsed]
    ) -> Outcome:
        if not _is_batch(msg):
            try:
                return await call_next(msg)  # type: ignore[no-any-return]
            except InvalidEvent as exc:
                await self.consumption.dead_letter(msg.raw_message, exc.reason, exc.detail)
            except Exception as exc:
                await self._handler_failed(msg.raw_message, parsed[0], exc)
            return Counter(dead_lettered=1)
        batch = await _batch(msg)
        outcome: Outcome = Counter()
        for record, reason in batch.rejected:
            await self.consumption.dead_letter(record, reason.reason, reason.detail)
            outcome["dead_lettered"] += 1
        if not batch.deliveries:
            return outcome
        try:
            handled: Outcome = await call_next(msg)
            return outcome + handled
        except Exception as exc:
            if len(batch.deliveries) == 1:  # tried `max_attempts` times already (`Retries`)
                await self._handler_failed(batch.records[0], batch.deliveries[0].envelope, exc)
                outcome["dead_lettered"] += 1
                return outcome
            logger.warning(
                "batch failed; isolating the poison message one by one",
                extra={"topic": _topic_of(msg), "size": len(batch.deliveries)},
                exc_info=True,
            )
        for record, delivery in zip(batch.records, batch.deliveries, strict=True):
            try:
                outcome += await call_next(_one_of(msg, record, delivery.envelope))
            except Exception as exc:
                await self._handler_failed(record, delivery.envelope, exc)
                outcome["dead_lettered"] += 1
        return outcome

    async def _handler_failed(self, record: Any, parsed: Parsed, exc: Exception) -> None:
        logger.error(
            "handler keeps failing; dead-lettering",
            exc_info=exc,
            extra={
                "ce_id": getattr(parsed, "id", None),
                "ce_type": getattr(parsed, "type", None),
            },
        )
        await self.consumption.dead_letter(
            record,
            "handler_failed",
            f"{type(exc).__name__}: {exc}"[:500],
        )


def _one_of(msg: StreamMessage[Any], record: Any, envelope: Envelope) -> StreamMessage[Any]:
    """A batch message of one of its records (decoded again, on its own)."""
    single = copy.copy(msg)  # FastStream's copy answers for its own body: no decoded cache
    single.raw_message = (record,)
    single.cloudevents = [envelope]  # type: ignore[attr-defined]
    return single


class Retries(ConsumingMiddleware):
    """A failing handler is tried again, up to `max_attempts` times in all, each time in a new
    unit of work, with a growing pause. What cannot be read is not retried; nor is a batch of
    many events (`DeadLetters` takes them one by one)."""

    async def around(
        self, call_next: Any, msg: StreamMessage[Any], parsed: list[Parsed]
    ) -> Outcome:
        if _is_batch(msg) and len((await _batch(msg)).deliveries) > 1:
            return await call_next(msg)  # type: ignore[no-any-return]
        failures = 0
        while True:
            try:
                return await call_next(msg)  # type: ignore[no-any-return]
            except InvalidEvent:
                raise
            except Exception:
                failures += 1
                HANDLER_RETRIES.labels(self.consumption.service, _topic_of(msg), "handler").inc()
                if failures >= self.consumption.max_attempts:
                    raise
                await asyncio.sleep(min(0.05 * 2**failures, 2.0))


class WaitOutInfrastructure(ConsumingMiddleware):
    """An unreachable database or broker is waited out (with a growing pause, up to 15 s),
    never counted as a failure of the handler: the message is not lost, and no retry is used."""

    first_pause = 0.5
    """Seconds before the first try again (then doubling, up to `longest_pause`)."""
    longest_pause = 15.0

    async def around(
        self, call_next: Any, msg: StreamMessage[Any], parsed: list[Parsed]
    ) -> Outcome:
        outcome: Outcome = await self.waiting(
            self.consumption.service, _topic_of(msg), partial(call_next, msg)
        )
        return outcome

    @classmethod
    async def waiting(cls, service: str, topic: str, attempt: Callable[[], Awaitable[Any]]) -> Any:
        """`attempt()` until it does not fail for want of the database or the broker (the
        dead letters wait so too: a record acknowledged without its dead letter is lost)."""
        delay = cls.first_pause
        while True:
            try:
                return await attempt()
            except INFRASTRUCTURE_ERRORS as exc:
                HANDLER_RETRIES.labels(service, topic, "infrastructure").inc()
                logger.warning(
                    "infrastructure unavailable; retrying",
                    extra={"topic": topic, "error": f"{type(exc).__name__}: {exc}"[:300]},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, cls.longest_pause)


# -- the declarations -------------------------------------------------------------------------


@dataclass
class EventDispatcher:
    """What a service reads: each event type of its topics routed to one handler (or each topic
    read in batches to one batch handler), and what it publishes."""

    service: str
    publishes: tuple[EventType, ...] = ()
    """What the service publishes (through its outbox): declared beside its handlers, so the
    AsyncAPI document (shared.asyncapi) says who writes each topic."""
    handlers: dict[str, Handler] = field(default_factory=dict)
    batch_handlers: dict[str, BatchHandler] = field(default_factory=dict)
    subscribed: set[str] = field(default_factory=set)
    _consumption: weakref.WeakKeyDictionary[KafkaBroker, Consumption] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False, compare=False
    )

    def on(self, event_type: EventType) -> Callable[[Handler], Handler]:
        """`handler(event, uow)` for `event_type`: the event is its pydantic model."""

        def register(handler: Handler) -> Handler:
            if event_type.ce_type in self.handlers:
                raise ValueError(f"two handlers for {event_type.ce_type}")
            self.handlers[event_type.ce_type] = handler
            self.subscribed.add(event_type.topic)
            return handler

        return register

    def on_batch(self, topic: str) -> Callable[[BatchHandler], BatchHandler]:
        """One handler for every event type of `topic`, called with up to a batch of them."""

        def register(handler: BatchHandler) -> BatchHandler:
            self.batch_handlers[topic] = handler
            self.subscribed.add(topic)
            return handler

        return register

    def consumed(self) -> dict[str, list[EventType]]:
        """Topic -> the event types this service reads from it (every type of a batch topic)."""
        return {
            topic: [
                event_type
                for event_type in EVENTS.values()
                if event_type.topic == topic
                and (topic in self.batch_handlers or event_type.ce_type in self.handlers)
            ]
            for topic in sorted(self.subscribed)
        }

    def attach(
        self,
        broker: KafkaBroker,
        unit_of_work: UnitOfWorkFactory,
        *,
        group_id: str,
        max_attempts: int = 5,
        batch_size: int = 500,
        batch_concurrency: int = 1,
        persistent: bool = True,
    ) -> list[Any]:
        """Declare one FastStream subscriber per topic on `broker`, with a handler per event
        type on it (or one batch handler), and the consuming middlewares on the broker (once
        per broker); `batch_concurrency` members of the group for each batch-consumed topic.
        Each member owns its partitions (so keys, and per-key order, never cross members) and
        commits its own offsets: the same as that many instances, without the process each.
        Returns the subscribers: `persistent=False` (FastStream's dynamic subscribers) leaves
        starting and keeping them to the caller."""
        if broker not in self._consumption:
            consumption = Consumption(self.service, broker, max_attempts)
            for middleware in consumption.middlewares():
                broker.add_middleware(middleware)
            self._consumption[broker] = consumption
        members = []
        for topic in sorted(self.subscribed):
            batch = topic in self.batch_handlers
            for member in range(batch_concurrency if batch else 1):
                subscriber = broker.subscriber(
                    topic,
                    group_id=group_id,
                    ack_policy=AckPolicy.ACK,
                    auto_offset_reset="earliest",
                    batch=batch,
                    max_records=batch_size if batch else None,
                    # a rebalance waits a heartbeat for members to notice it (aiokafka: 3 s)
                    heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
                    parser=parse_cloudevents,
                    no_reply=True,  # a `reply_to` header on an event is not a request
                    title=f"{self.service}:{topic}" + (f":{member}" if member else ""),
                    description=f"{self.service} consumes {topic}",
                    include_in_schema=member == 0,
                    persistent=persistent,
                )
                if batch:
                    subscriber(
                        batch_in_unit_of_work(self.batch_handlers[topic], unit_of_work),
                        decoder=validated_batch(topic),
                    )
                else:
                    self._route(subscriber, topic, unit_of_work)
                members.append(subscriber)
        return members

    def _route(self, subscriber: Any, topic: str, unit_of_work: UnitOfWorkFactory) -> None:
        for ce_type, handler in self.handlers.items():
            event_type = event_type_of(topic, ce_type)
            if event_type is not None:
                subscriber(
                    in_unit_of_work(handler, unit_of_work),
                    filter=of_type(ce_type),
                    decoder=validated_as(event_type),
                )
        subscriber(_unhandled(self.service), decoder=_as_is)
