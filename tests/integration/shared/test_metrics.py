"""The operational gauges of `/metrics` on the real stack: the outbox backlog and its oldest row
while no relay can publish, the consumer lag of a group with records it has not committed, and
the mail queue while the SMTP server refuses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from shared.contracts import LEAD_ASSIGNED, RATING_UPDATED
from shared.contracts.leads import LeadAssigned
from shared.contracts.ratings import RatingUpdated
from shared.mailer import RenderedMail
from shared.messaging import EventDispatcher
from shared.outbox import OutboxShare
from shared.runtime import ServiceRuntime, create_http_app
from shared.topics import Topic, partitions_of
from shared.uow import UnitOfWork
from tests.conftest import free_port
from tests.integration.shared.conftest import PROBE_MIGRATIONS, ProbeSettings
from tests.support.builders import lead_assigned

pytestmark = pytest.mark.integration

INTERVAL = 0.2


def _settings(service_settings: Callable[..., Any], **overrides: Any) -> ProbeSettings:
    settings: ProbeSettings = service_settings(
        ProbeSettings, metrics_interval_seconds=INTERVAL, **overrides
    )
    # a service label of its own: the registry is the process's, shared with other tests
    return settings.model_copy(update={"service_name": f"probe{uuid.uuid4().hex[:8]}"})


async def _scrape(client: httpx.AsyncClient, name: str, **labels: str) -> float | None:
    """The sample's value as `/metrics` serves it (None when the series is absent)."""
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def _until(
    client: httpx.AsyncClient,
    name: str,
    labels: dict[str, str],
    holds: Callable[[float], bool],
    timeout: float = 30.0,
) -> float | None:
    deadline = asyncio.get_running_loop().time() + timeout
    value = await _scrape(client, name, **labels)
    while (value is None or not holds(value)) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        value = await _scrape(client, name, **labels)
    return value


def _rating(agent_id: str) -> RatingUpdated:
    return RatingUpdated(
        agent_id=agent_id,
        as_of=datetime.now(UTC),
        visibility="opted_out",
        policy_version="test",
    )


async def test_the_outbox_gauges_grow_while_no_relay_publishes_and_return_to_zero_after(
    service_settings, run_app, monkeypatch
) -> None:
    settings = _settings(service_settings)
    runtime = ServiceRuntime(settings, migrations=PROBE_MIGRATIONS)
    labels = {"service": runtime.service}
    # the relays of this instance's shares hold still (as while their broker is away): the
    # gauges are asked of the table, which the relay's own counts could not tell
    release = asyncio.Event()
    relay_rounds = OutboxShare._relay_rounds

    async def held(share: OutboxShare, producer: Any) -> None:
        await release.wait()
        await relay_rounds(share, producer)

    monkeypatch.setattr(OutboxShare, "_relay_rounds", held)
    async with run_app(create_http_app(runtime, title="probe")) as client:
        async with runtime.unit_of_work() as uow:
            for n in range(3):
                await uow.publish(RATING_UPDATED, _rating(f"A-metrics-{n}"))

        backlog = await _until(client, "ratings_outbox_backlog", labels, lambda v: v == 3)
        assert backlog == 3
        age = await _until(
            client, "ratings_outbox_oldest_unsent_age_seconds", labels, lambda v: v >= 1.0
        )
        assert age is not None and age >= 1.0

        release.set()
        assert await _until(client, "ratings_outbox_backlog", labels, lambda v: v == 0) == 0
        oldest = await _scrape(client, "ratings_outbox_oldest_unsent_age_seconds", **labels)
        assert oldest == 0
        relayed = await _until(client, "ratings_outbox_relayed_total", labels, lambda v: v == 3)
        assert relayed == 3


async def _commit_at_end(bootstrap: str, group: str, topic: str) -> None:
    """The group has read everything the topic holds now (so only what follows is its lag)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        await consumer.commit({tp: await consumer.position(tp) for tp in partitions})
    finally:
        await consumer.stop()


async def test_lag_counts_what_the_group_has_not_committed_and_drops_to_zero_once_it_has(
    service_settings, run_app, publish_event, kafka_bootstrap
) -> None:
    group = f"probe-lag-{uuid.uuid4().hex[:8]}"
    await _commit_at_end(kafka_bootstrap, group, Topic.LEADS_ASSIGNED)
    released = asyncio.Event()
    dispatcher = EventDispatcher("probe")

    @dispatcher.on(LEAD_ASSIGNED)
    async def stuck(event: LeadAssigned, uow: UnitOfWork) -> None:
        await released.wait()  # a handler waiting on something: its offset is not committed

    settings = _settings(service_settings, kafka_group_id=group)
    runtime = ServiceRuntime(settings, dispatcher=dispatcher, migrations=PROBE_MIGRATIONS)
    labels = {"service": runtime.service, "group": group, "topic": Topic.LEADS_ASSIGNED.value}
    async with run_app(create_http_app(runtime, title="probe")) as client:
        try:
            assert await _until(client, "ratings_consumer_lag", labels, lambda v: True) == 0
            for n in range(3):
                await publish_event(
                    LEAD_ASSIGNED,
                    lead_assigned(
                        f"L-lag-{group}-{n}",
                        "A-probe",
                        "sam@example.com",
                        name="Sam",
                        assigned_at=datetime.now(UTC),
                    ),
                )
            assert await _until(client, "ratings_consumer_lag", labels, lambda v: v == 3) == 3
            await asyncio.sleep(5 * INTERVAL)  # still 3: read (the handler has one) is not done
            assert await _scrape(client, "ratings_consumer_lag", **labels) == 3
        finally:
            released.set()
        assert await _until(client, "ratings_consumer_lag", labels, lambda v: v == 0) == 0


async def test_the_mail_queue_and_its_failures_while_the_smtp_server_refuses(
    service_settings, run_app
) -> None:
    settings = _settings(service_settings, smtp_port=free_port())  # nothing listens there
    runtime = ServiceRuntime(settings, migrations=PROBE_MIGRATIONS)
    labels = {"service": runtime.service}
    async with run_app(create_http_app(runtime, title="probe")) as client:
        async with runtime.unit_of_work() as uow:
            await uow.send_mail(
                to="sam@example.com",
                mail=RenderedMail(subject="Hello", text="Hi", template="probe"),
                dedupe_key=f"metrics-{uuid.uuid4().hex}",
            )
        failures = await _until(client, "ratings_mail_failures_total", labels, lambda v: v >= 1)
        assert failures is not None and failures >= 1
        # the failed mail waits out its back-off
        waiting = await _until(
            client, "ratings_mail_queue_depth", {**labels, "state": "waiting"}, lambda v: v == 1
        )
        assert waiting == 1
        assert await _scrape(client, "ratings_mail_queue_depth", **labels, state="due") == 0
