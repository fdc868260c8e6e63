"""Inbox and dead-letter behaviour of the shared dispatcher, on real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from aiokafka.partitioner import murmur2
from faststream.kafka.subscriber.usecase import BatchSubscriber

from shared.contracts import LEAD_ASSIGNED
from shared.contracts.leads import LeadAssigned
from shared.messaging import Delivery, EventDispatcher
from shared.runtime import ServiceRuntime
from shared.topics import Topic, dlq
from shared.uow import UnitOfWork
from tests.integration.shared.conftest import PROBE_MIGRATIONS, ProbeSettings
from tests.support.builders import lead_assigned

pytestmark = pytest.mark.integration


def _lead(lead_id: str) -> LeadAssigned:
    """A lead of the probe's agent, assigned now."""
    return lead_assigned(
        lead_id, "A-probe", "sam@example.com", name="Sam", assigned_at=datetime.now(UTC)
    )


async def _probe_runtime(
    service_settings: Callable[..., Any], probe_group: Callable[[str], Awaitable[str]]
) -> ServiceRuntime:
    dispatcher = EventDispatcher("probe")

    @dispatcher.on(LEAD_ASSIGNED)
    async def count(event: LeadAssigned, uow: UnitOfWork) -> None:
        if event.lead_id.startswith("poison-"):
            raise RuntimeError("this handler cannot cope with poison")
        await uow.conn.execute(
            """INSERT INTO probe_effects (lead_id, times) VALUES ($1, 1)
               ON CONFLICT (lead_id) DO UPDATE SET times = probe_effects.times + 1""",
            event.lead_id,
        )

    settings = service_settings(
        ProbeSettings, kafka_group_id=await probe_group("probe"), consumer_max_attempts=2
    )
    return ServiceRuntime(settings, dispatcher=dispatcher, migrations=PROBE_MIGRATIONS)


async def _times(runtime: ServiceRuntime, lead_id: str) -> int | None:
    async with runtime.pool.acquire() as conn:
        times: int | None = await conn.fetchval(
            "SELECT times FROM probe_effects WHERE lead_id = $1", lead_id
        )
    return times


def _key_beside(key: str, prefix: str, partitions: int = 6) -> str:
    """A new key that Kafka's default partitioner puts in `key`'s partition: processed after it,
    so once it is seen, everything before it in that partition has been too."""
    wanted = (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
    for n in range(10_000):
        candidate = f"{prefix}-{n}"
        if (murmur2(candidate.encode()) & 0x7FFFFFFF) % partitions == wanted:
            return candidate
    raise AssertionError("no key found")


async def _eventually(
    probe: Callable[[], Awaitable[Any]], expected: Any, timeout: float = 30.0
) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if value == expected or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.1)


async def test_the_same_ce_id_twice_changes_state_once(
    service_settings, publish_event, probe_group
) -> None:
    runtime = await _probe_runtime(service_settings, probe_group)
    await runtime.start()
    try:
        lead_id = f"L-{uuid.uuid4().hex[:8]}"
        ce_id = str(uuid.uuid4())
        await publish_event(
            LEAD_ASSIGNED,
            _lead(lead_id),
            ce_id=ce_id,
        )
        await publish_event(
            LEAD_ASSIGNED,
            _lead(lead_id),
            ce_id=ce_id,
        )
        # a marker after both in their partition: once it is processed, both copies were seen
        marker = _key_beside(lead_id, f"L-{uuid.uuid4().hex[:8]}")
        await publish_event(
            LEAD_ASSIGNED,
            _lead(marker),
        )
        assert await _eventually(lambda: _times(runtime, marker), 1) == 1
        assert await _times(runtime, lead_id) == 1
    finally:
        await runtime.stop()


async def test_malformed_messages_go_to_the_dlq_and_consumption_goes_on(
    service_settings, publish_event, topic_reader, probe_group
) -> None:
    dead = await topic_reader(dlq(Topic.LEADS_ASSIGNED))
    runtime = await _probe_runtime(service_settings, probe_group)
    await runtime.start()
    try:
        tag = uuid.uuid4().hex[:8]
        good_headers = {
            "ce_specversion": b"1.0",
            "ce_id": f"x-{tag}".encode(),
            "ce_source": b"/tests",
            "ce_type": b"lead.assigned.v1",
            "content-type": b"application/json",
        }
        await publish_event.raw(
            Topic.LEADS_ASSIGNED,
            b"this is not json",
            key=f"nj-{tag}".encode(),
            headers=good_headers,
        )
        await publish_event.raw(
            Topic.LEADS_ASSIGNED,
            b'{"lead_id": "only this"}',
            key=f"schema-{tag}".encode(),
            headers={**good_headers, "ce_id": f"y-{tag}".encode()},
        )
        await publish_event.raw(
            Topic.LEADS_ASSIGNED,
            _lead("x").model_dump_json().encode(),
            key=f"noce-{tag}".encode(),
        )
        await publish_event(
            LEAD_ASSIGNED,
            _lead(f"poison-{tag}"),
        )
        await publish_event(
            LEAD_ASSIGNED,
            _lead(f"good-{tag}"),
        )

        assert await _eventually(lambda: _times(runtime, f"good-{tag}"), 1) == 1
        reasons = {}
        for prefix in ("nj", "schema", "noce"):
            record = await dead.wait_for_record(lambda r, p=prefix: r.key == f"{p}-{tag}".encode())
            headers = dict(record.headers)
            reasons[prefix] = headers["dlq_reason"].decode()
            assert headers["dlq_original_topic"] == Topic.LEADS_ASSIGNED.value.encode()
            assert int(headers["dlq_original_offset"]) >= 0
            assert "dlq_original_partition" in headers
        assert reasons == {
            "nj": "value_not_json",
            "schema": "schema_validation_failed",
            "noce": "missing_cloudevents_headers",
        }
        poison = await dead.wait_for_record(lambda r: r.key == f"poison-{tag}".encode())
        assert dict(poison.headers)["dlq_reason"] == b"handler_failed"
        assert b"cannot cope" in dict(poison.headers)["dlq_detail"]
    finally:
        await runtime.stop()


async def test_batch_handlers_see_each_event_once_and_isolate_poison(
    service_settings, publish_event, topic_reader, probe_group
) -> None:
    dead = await topic_reader(dlq(Topic.LEADS_ASSIGNED))
    dispatcher = EventDispatcher("probe-batch")
    batch_sizes: list[int] = []

    @dispatcher.on_batch(Topic.LEADS_ASSIGNED)
    async def count_all(deliveries: Sequence[Delivery], uow: UnitOfWork) -> None:
        batch_sizes.append(len(deliveries))
        for delivery in deliveries:
            if delivery.event.lead_id.startswith("poison-"):
                raise RuntimeError("poison in the batch")
        await uow.conn.executemany(
            """INSERT INTO probe_effects (lead_id, times) VALUES ($1, 1)
               ON CONFLICT (lead_id) DO UPDATE SET times = probe_effects.times + 1""",
            [(d.event.lead_id,) for d in deliveries],
        )

    settings = service_settings(
        ProbeSettings, kafka_group_id=await probe_group("probe-b"), consumer_max_attempts=2
    )
    tag = uuid.uuid4().hex[:8]
    ce_id = str(uuid.uuid4())
    await publish_event(
        LEAD_ASSIGNED,
        _lead(f"dup-{tag}"),
        ce_id=ce_id,
    )
    await publish_event(
        LEAD_ASSIGNED,
        _lead(f"dup-{tag}"),
        ce_id=ce_id,
    )
    for i in range(40):
        await publish_event(
            LEAD_ASSIGNED,
            _lead(f"b{i}-{tag}"),
        )
    await publish_event(
        LEAD_ASSIGNED,
        _lead(f"poison-{tag}"),
    )
    last = _key_beside(f"dup-{tag}", f"last-{tag}")
    await publish_event(
        LEAD_ASSIGNED,
        _lead(last),
    )
    runtime = ServiceRuntime(settings, dispatcher=dispatcher, migrations=PROBE_MIGRATIONS)
    await runtime.start()
    try:
        assert await _eventually(lambda: _times(runtime, last), 1) == 1
        assert await _times(runtime, f"dup-{tag}") == 1
        for i in range(40):  # other partitions: each in its own time
            assert await _eventually(partial(_times, runtime, f"b{i}-{tag}"), 1) == 1
        assert max(batch_sizes) > 1, "events should arrive in batches"
        poison = await dead.wait_for_record(lambda r: r.key == f"poison-{tag}".encode())
        assert dict(poison.headers)["dlq_reason"] == b"handler_failed"
    finally:
        await runtime.stop()


async def test_concurrent_members_split_the_partitions_and_see_each_event_once(
    service_settings, publish_event, probe_group
) -> None:
    dispatcher = EventDispatcher("probe-members")
    handled_by: dict[int, set[str]] = {}
    tag = uuid.uuid4().hex[:8]

    @dispatcher.on_batch(Topic.LEADS_ASSIGNED)
    async def count_all(deliveries: Sequence[Delivery], uow: UnitOfWork) -> None:
        member = asyncio.current_task()
        assert member is not None
        for delivery in deliveries:
            if delivery.event.lead_id.endswith(tag):  # not the topic's older events
                handled_by.setdefault(delivery.partition, set()).add(member.get_name())
        await uow.conn.executemany(
            """INSERT INTO probe_effects (lead_id, times) VALUES ($1, 1)
               ON CONFLICT (lead_id) DO UPDATE SET times = probe_effects.times + 1""",
            [(d.event.lead_id,) for d in deliveries],
        )

    settings = service_settings(
        ProbeSettings, kafka_group_id=await probe_group("probe-m"), consumer_concurrency=2
    )
    runtime = ServiceRuntime(settings, dispatcher=dispatcher, migrations=PROBE_MIGRATIONS)
    await runtime.start()
    try:
        members: list[Any] = [  # FastStream's Kafka subscribers: .consumer is aiokafka's
            s
            for s in runtime.broker.subscribers
            if Topic.LEADS_ASSIGNED in s.topic_names_for_subscribe  # type: ignore[attr-defined]
        ]
        assert len(members) == 2

        def assignments() -> list[set[int]]:
            return [
                {tp.partition for tp in m.consumer.assignment()} if m.consumer else set()
                for m in members
            ]

        async def split_between_both() -> bool:
            # during the rebalance the first member still reports all six for a moment
            parts = assignments()
            return all(parts) and not parts[0] & parts[1] and parts[0] | parts[1] == set(range(6))

        assert await _eventually(split_between_both, True), assignments()

        leads = [f"m{i}-{tag}" for i in range(60)]
        for lead_id in leads:
            await publish_event(
                LEAD_ASSIGNED,
                _lead(lead_id),
            )
        for lead_id in leads:
            assert await _eventually(partial(_times, runtime, lead_id), 1) == 1
        # each partition was consumed by one member only, and both members consumed
        assert all(len(tasks) == 1 for tasks in handled_by.values()), handled_by
        assert len(set().union(*handled_by.values())) == 2, handled_by
    finally:
        await runtime.stop()


async def test_the_members_of_a_services_group_start_together(
    service_settings, probe_group, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiokafka's start() returns once the member has partitions: started one after another,
    each member joined alone, a rebalance (a heartbeat) after the one before it, and the last
    one idled for seconds at every start. Each start here waits for all the others to begin."""
    dispatcher = EventDispatcher("probe-together")

    @dispatcher.on_batch(Topic.LEADS_ASSIGNED)
    async def ignore(deliveries: Sequence[Delivery], uow: UnitOfWork) -> None:
        return None

    settings = service_settings(
        ProbeSettings, kafka_group_id=await probe_group("probe-t"), consumer_concurrency=3
    )
    runtime = ServiceRuntime(settings, dispatcher=dispatcher, migrations=PROBE_MIGRATIONS)
    everyone_starting = asyncio.Barrier(3)
    start_alone = BatchSubscriber.start

    async def start_with_the_others(subscriber: Any) -> None:
        await asyncio.wait_for(everyone_starting.wait(), timeout=15)
        await start_alone(subscriber)

    monkeypatch.setattr(BatchSubscriber, "start", start_with_the_others)
    try:
        await runtime.start()
        members: list[Any] = list(runtime.consumers)
        assert len(members) == 3 and {type(m) for m in members} == {BatchSubscriber}
        assert all(m.consumer.assignment() for m in members)
    finally:
        await runtime.stop()


async def test_the_outbox_relay_takes_its_batch_size_from_the_settings(service_settings) -> None:
    settings = service_settings(ProbeSettings, outbox_batch_size=1234)
    runtime = ServiceRuntime(settings, dispatcher=None, migrations=PROBE_MIGRATIONS)
    await runtime.start()
    try:
        assert runtime.outbox_relay is not None
        assert runtime.outbox_relay.batch_size == 1234
    finally:
        await runtime.stop()
