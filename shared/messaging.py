"""Consuming events: CloudEvents decoding, validation, dead-lettering, inbox and retries.

Every subscriber commits its offset only after the handler's database transaction (inbox row +
effects + outbox rows) has committed (`AckPolicy.ACK`), so a crash redelivers and the inbox
makes the redelivery a no-op. A message that cannot be decoded or validated goes to
`<topic>.dlq` at once; one whose handler keeps failing goes there after a bounded number of
tries; an unreachable database or broker is waited out, never dead-lettered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker

from shared.cloudevents import Envelope, InvalidEvent, decode_attributes, validate_data
from shared.contracts import EVENTS, EventType, event_type_of
from shared.inbox import first_deliveries
from shared.metrics import DEAD_LETTERED, EVENT_HANDLING_SECONDS, EVENTS_CONSUMED, HANDLER_RETRIES
from shared.topics import dlq
from shared.tracing import consuming

if TYPE_CHECKING:
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
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


@dataclass
class EventDispatcher:
    """Routes each event type of the topics a service reads to one handler."""

    service: str
    publishes: tuple[EventType, ...] = ()
    """What the service publishes (through its outbox): declared beside its handlers, so the
    AsyncAPI document (shared.asyncapi) says who writes each topic."""
    handlers: dict[str, Handler] = field(default_factory=dict)
    batch_handlers: dict[str, BatchHandler] = field(default_factory=dict)
    subscribed: set[str] = field(default_factory=set)

    def on(self, event_type: EventType) -> Callable[[Handler], Handler]:
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
        """Declare one FastStream subscriber per topic on `broker`; `batch_concurrency` members
        of the group for each batch-consumed topic. Each member owns its partitions (so keys,
        and per-key order, never cross members) and commits its own offsets: the same as that
        many instances, without the process each. Returns the subscribers: `persistent=False`
        (FastStream's dynamic subscribers) leaves starting and keeping them to the caller."""
        members = []
        for topic in sorted(self.subscribed):
            consumer = TopicConsumer(self, topic, broker, unit_of_work, max_attempts=max_attempts)
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
                    parser=_headers_as_sent,
                    decoder=_whole_message,
                    title=f"{self.service}:{topic}" + (f":{member}" if member else ""),
                    description=f"{self.service} consumes {topic}",
                    include_in_schema=member == 0,
                    persistent=persistent,
                )
                subscriber(consumer.handle_message)
                members.append(subscriber)
        return members


class TopicConsumer:
    def __init__(
        self,
        dispatcher: EventDispatcher,
        topic: str,
        broker: KafkaBroker,
        unit_of_work: UnitOfWorkFactory,
        *,
        max_attempts: int,
    ) -> None:
        self.dispatcher = dispatcher
        self.topic = topic
        self.broker = broker
        self.unit_of_work = unit_of_work
        self.max_attempts = max_attempts
        self.service = dispatcher.service

    async def handle_message(self, message: Any) -> None:
        """`message` is the whole FastStream message, handed over as the body by `_whole_message`:
        asking for it by annotation (`KafkaMessage`) resolves a context field that fast_depends
        runs in a worker thread for every message, and that thread hop (and the GIL it then
        contends for) cost more than the handler on a stream of small events."""
        raw = message.raw_message
        records = [self._record(item) for item in (raw if isinstance(raw, tuple | list) else [raw])]
        started = time.perf_counter()
        deliveries: list[Delivery] = []
        for record in records:
            delivery = await self._decode(record)
            if delivery is not None:
                deliveries.append(delivery)
        if deliveries:
            if self.topic in self.dispatcher.batch_handlers:
                await self._process_batch(deliveries)
            else:
                for delivery in deliveries:
                    await self._process_one(delivery)
        EVENT_HANDLING_SECONDS.labels(self.service, self.topic).observe(
            time.perf_counter() - started
        )

    @staticmethod
    def _record(item: Any) -> RawRecord:
        headers = {name: bytes(value) for name, value in (item.headers or [])}
        return RawRecord(item.topic, item.partition, item.offset, item.key, item.value, headers)

    async def _decode(self, record: RawRecord) -> Delivery | None:
        try:
            envelope = decode_attributes(record.key, record.value, record.headers)
            event_type = event_type_of(record.topic, envelope.type)
            if event_type is None:
                raise InvalidEvent("unsupported_type", f"{envelope.type} on {record.topic}")
            handled = (
                envelope.type in self.dispatcher.handlers
                or record.topic in self.dispatcher.batch_handlers
            )
            if not handled:
                EVENTS_CONSUMED.labels(self.service, record.topic, "ignored").inc()
                return None
            event = validate_data(envelope, event_type.model)
        except InvalidEvent as exc:
            await self._dead_letter(record, exc.reason, exc.detail)
            return None
        return Delivery(event_type, event, envelope, record.topic, record.partition, record.offset)

    async def _process_one(self, delivery: Delivery) -> None:
        handler = self.dispatcher.handlers[delivery.envelope.type]

        async def attempt() -> bool:
            async with self.unit_of_work(delivery.envelope) as uow:
                if not await uow.first_delivery():
                    return False
                await handler(delivery.event, uow)
                return True

        with consuming(self.topic, [delivery.envelope]):
            outcome = await self._with_retries(attempt, delivery)
        EVENTS_CONSUMED.labels(self.service, self.topic, outcome).inc()

    async def _process_batch(self, deliveries: list[Delivery]) -> None:
        handler = self.dispatcher.batch_handlers[self.topic]

        async def attempt_all() -> int:
            async with self.unit_of_work(None) as uow:
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
                return len(fresh)

        try:
            with consuming(self.topic, [delivery.envelope for delivery in deliveries]):
                processed = await self._wait_out_infrastructure(attempt_all)
        except Exception:
            logger.warning(
                "batch failed; isolating the poison message one by one",
                extra={"topic": self.topic, "size": len(deliveries)},
                exc_info=True,
            )
            for delivery in deliveries:
                await self._process_single_of_batch(handler, delivery)
            return
        EVENTS_CONSUMED.labels(self.service, self.topic, "processed").inc(processed)
        EVENTS_CONSUMED.labels(self.service, self.topic, "duplicate").inc(
            len(deliveries) - processed
        )

    async def _process_single_of_batch(self, handler: BatchHandler, delivery: Delivery) -> None:
        async def attempt() -> bool:
            async with self.unit_of_work(delivery.envelope) as uow:
                if not await uow.first_delivery():
                    return False
                await handler([delivery], uow)
                return True

        with consuming(self.topic, [delivery.envelope]):
            outcome = await self._with_retries(attempt, delivery)
        EVENTS_CONSUMED.labels(self.service, self.topic, outcome).inc()

    async def _with_retries(
        self, attempt: Callable[[], Awaitable[bool]], delivery: Delivery
    ) -> str:
        failures = 0
        while True:
            try:
                processed = await self._wait_out_infrastructure(attempt)
                return "processed" if processed else "duplicate"
            except Exception as exc:
                failures += 1
                HANDLER_RETRIES.labels(self.service, self.topic, "handler").inc()
                if failures >= self.max_attempts:
                    logger.exception(
                        "handler keeps failing; dead-lettering",
                        extra={"ce_id": delivery.envelope.id, "ce_type": delivery.envelope.type},
                    )
                    await self._dead_letter(
                        RawRecord(
                            delivery.topic,
                            delivery.partition,
                            delivery.offset,
                            delivery.envelope.key.encode() if delivery.envelope.key else None,
                            None,
                            {},
                        ),
                        "handler_failed",
                        f"{type(exc).__name__}: {exc}"[:500],
                        envelope=delivery.envelope,
                    )
                    return "dead_lettered"
                await asyncio.sleep(min(0.05 * 2**failures, 2.0))

    async def _wait_out_infrastructure(self, attempt: Callable[[], Awaitable[Any]]) -> Any:
        delay = 0.5
        while True:
            try:
                return await attempt()
            except INFRASTRUCTURE_ERRORS as exc:
                HANDLER_RETRIES.labels(self.service, self.topic, "infrastructure").inc()
                logger.warning(
                    "infrastructure unavailable; retrying",
                    extra={"topic": self.topic, "error": f"{type(exc).__name__}: {exc}"[:300]},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)

    async def _dead_letter(
        self, record: RawRecord, reason: str, detail: str, envelope: Envelope | None = None
    ) -> None:
        headers = {name: value.decode(errors="replace") for name, value in record.headers.items()}
        value = record.value
        if value is None and envelope is not None:
            value = envelope.value
            headers.update(
                {
                    "ce_id": envelope.id,
                    "ce_type": envelope.type,
                    "ce_source": envelope.source,
                    "ce_specversion": "1.0",
                    "content-type": "application/json",
                }
            )
        headers.update(
            {
                "dlq_reason": reason,
                "dlq_detail": detail[:1000],
                "dlq_original_topic": record.topic,
                "dlq_original_partition": str(record.partition),
                "dlq_original_offset": str(record.offset),
                "dlq_consumer": self.service,
                "dlq_at": datetime.now().astimezone().isoformat(),
            }
        )
        await self.broker.publish(
            value or b"", topic=dlq(record.topic), key=record.key, headers=headers
        )
        DEAD_LETTERED.labels(self.service, record.topic, reason).inc()
        EVENTS_CONSUMED.labels(self.service, record.topic, "dead_lettered").inc()
        logger.warning(
            "message dead-lettered",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason,
                "detail": detail[:300],
            },
        )


async def _headers_as_sent(record: Any, parse: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream decodes every header as UTF-8 before any subscriber code runs: one record with
    other bytes in a header would fail the whole poll and, acknowledged anyway, be lost unseen
    (with every event polled beside it, for a batch subscriber). Parse a copy whose headers are
    decoded leniently, and keep the original record: the dispatcher checks its bytes and
    dead-letters it."""
    try:
        return await parse(record)
    except UnicodeDecodeError:
        lenient = (
            tuple(_lenient_headers(item) for item in record)
            if isinstance(record, tuple)
            else _lenient_headers(record)
        )
        message = await parse(lenient)
        message.raw_message = record
        return message


def _lenient_headers(record: Any) -> Any:
    headers = [
        (name, bytes(value).decode(errors="replace").encode()) for name, value in record.headers
    ]
    return dataclasses.replace(record, headers=headers)


async def _whole_message(message: Any) -> Any:
    """Leave the bytes alone: decoding (and rejecting) is the dispatcher's job, not FastStream's;
    the handler gets the whole message (records, offsets, headers) as its body."""
    return message
