"""Publishing and reading CloudEvents on the real broker, for tests."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from fastapi import FastAPI
from pydantic import BaseModel

from shared.cloudevents import Envelope, InvalidEvent, decode, encode
from shared.contracts import EventType
from shared.kafka_security import Kafka, kafka_client_options
from shared.messaging import EventDispatcher
from shared.topics import partitions_of


class EventPublisher:
    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def __call__(
        self,
        event_type: EventType,
        data: BaseModel,
        *,
        ce_id: str | None = None,
        source: str = "/tests",
    ) -> str:
        key = str(getattr(data, event_type.key_field))
        record = encode(event_type.ce_type, data, source=source, key=key, ce_id=ce_id)
        await self.producer.send_and_wait(
            event_type.topic,
            value=record.value,
            key=record.key,
            headers=list(record.headers.items()),
        )
        return record.headers["ce_id"].decode()

    async def raw(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: dict[str, bytes] | None = None,
    ) -> None:
        await self.producer.send_and_wait(
            topic, value=value, key=key, headers=list((headers or {}).items())
        )


class TopicReader:
    """Reads a topic from the position it had when the reader was created (no consumer group)."""

    def __init__(self, bootstrap: Kafka, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.records: list[Any] = []
        self.consumer: AIOKafkaConsumer | None = None

    async def start(self) -> TopicReader:
        self.consumer = AIOKafkaConsumer(
            **kafka_client_options(self.bootstrap),
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await self.consumer.start()
        partitions = await partitions_of(self.bootstrap, self.topic)
        assignment = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.consumer.assign(assignment)
        await self.consumer.seek_to_end(*assignment)
        for tp in assignment:  # resolve the lazy seek now, so "from now on" holds
            await self.consumer.position(tp)
        return self

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    async def _poll(self) -> None:
        assert self.consumer is not None
        batches = await self.consumer.getmany(timeout_ms=200)
        for records in batches.values():
            self.records.extend(records)

    async def current(self) -> list[Envelope]:
        """Everything that has arrived so far (one more poll first)."""
        await self._poll()
        return self.envelopes()

    def envelopes(self) -> list[Envelope]:
        found = []
        for record in self.records:
            try:
                found.append(decode(record.key, record.value, dict(record.headers)))
            except InvalidEvent:
                continue
        return found

    async def wait_for(
        self, predicate: Callable[[Envelope], bool], timeout: float = 30.0
    ) -> Envelope:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for envelope in self.envelopes():
                if predicate(envelope):
                    return envelope
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no matching event on {self.topic}")
            await self._poll()

    async def wait_for_record(self, predicate: Callable[[Any], bool], timeout: float = 30.0) -> Any:
        """Raw records (for DLQ checks: the value may not be an event at all)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for record in self.records:
                if predicate(record):
                    return record
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no matching record on {self.topic}")
            await self._poll()

    async def expect_none(self, predicate: Callable[[Envelope], bool], within: float) -> None:
        """Fail if a matching event arrives within the next `within` seconds."""
        await self._poll()
        already = len(self.envelopes())
        arrived = [e for e in (await self.collect(within))[already:] if predicate(e)]
        assert not arrived, f"unexpected event on {self.topic}: {arrived[0]}"

    async def collect(self, seconds: float) -> list[Envelope]:
        """Everything that arrives within `seconds` (to check that nothing more came)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            await self._poll()
        return self.envelopes()


def dispatcher_of(app: FastAPI) -> EventDispatcher:
    """The event routes `create_app` built for the app: what its consumers subscribe to."""
    dispatcher: EventDispatcher | None = app.state.runtime.dispatcher
    if dispatcher is None:
        raise ValueError("this app consumes no topic")
    return dispatcher


def consumed_by(service: str) -> set[str]:
    """The topics `services.<service>` consumes, as its app built with default settings routes
    them (building the app connects to nothing)."""
    app = importlib.import_module(f"services.{service}.app").create_app()
    return set(dispatcher_of(app).subscribed)


async def start_group_at_end(bootstrap: Kafka, group_id: str, topics: Iterable[str]) -> None:
    """A fresh group would read every earlier test's events from the start of the shared
    topics; commit it at their ends instead, so a test sees only what it publishes."""
    consumer = AIOKafkaConsumer(
        **kafka_client_options(bootstrap), group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        assignment = [
            TopicPartition(topic, partition)
            for topic in sorted(topics)
            for partition in await partitions_of(bootstrap, topic)
        ]
        consumer.assign(assignment)
        await consumer.seek_to_end(*assignment)
        await consumer.commit({tp: await consumer.position(tp) for tp in assignment})
    finally:
        await consumer.stop()
