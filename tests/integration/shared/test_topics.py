"""`python -m shared.topics` brings topics that already exist to their declared configuration,
on the real broker (docs/design.md 2.1). Probe topics have unique names and are deleted after."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import UnknownTopicOrPartitionError

from shared.topics import DAY_MS, TopicSpec, all_topic_specs, reconcile_topics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
LOG_OF_RECORD = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}


@pytest.fixture
async def admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await client.start()
    created_before = set(await client.list_topics())
    try:
        yield client
    finally:
        probes = [
            topic
            for topic in set(await client.list_topics()) - created_before
            if topic.startswith("topics-probe.")
        ]
        if probes:
            await client.delete_topics(probes)
        await client.close()


async def _topic_overrides(admin: AIOKafkaAdminClient, topic: str) -> dict[str, str]:
    [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    [resource] = response.to_object()["resources"]
    return {
        entry["config_names"]: entry["config_value"]
        for entry in resource["config_entries"]
        if entry["config_source"] == 1  # set on the topic itself
    }


async def _create(admin: AIOKafkaAdminClient, topic: NewTopic) -> None:
    """Create a probe topic and wait until the broker describes it: the controller answers
    before the broker has applied the new topic, and a reconciliation that lists it may
    otherwise be told it does not exist."""
    await admin.create_topics([topic])
    for _ in range(100):
        try:
            shown = await _topic_overrides(admin, topic.name)
            if (
                shown == topic.topic_configs
                and await _partition_count(admin, topic.name) == topic.num_partitions
            ):
                return
        except UnknownTopicOrPartitionError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{topic.name} was created but never described")


async def _settled_overrides(
    admin: AIOKafkaAdminClient, topic: str, wanted: dict[str, str]
) -> dict[str, str]:
    """The topic's own configuration once it shows `wanted` (or after 10 s, what it shows):
    the broker applies an accepted change a moment after answering."""
    for _ in range(100):
        overrides = await _topic_overrides(admin, topic)
        if overrides == wanted:
            break
        await asyncio.sleep(0.1)
    return overrides


async def _partition_count(admin: AIOKafkaAdminClient, topic: str) -> int:
    [described] = await admin.describe_topics([topic])
    return len(described["partitions"])


async def test_an_existing_topic_with_other_settings_is_brought_to_the_declared_ones(
    admin: AIOKafkaAdminClient, kafka_bootstrap: str
) -> None:
    name = f"topics-probe.{uuid.uuid4().hex[:12]}"
    week = str(7 * DAY_MS)
    await _create(
        admin,
        NewTopic(name, 2, 1, topic_configs={"retention.ms": week, "max.message.bytes": "65536"}),
    )
    declared = [TopicSpec(name, 4, LOG_OF_RECORD)]
    lines: list[str] = []

    [change] = await reconcile_topics(kafka_bootstrap, declared, report=lines.append)

    assert not change.created
    assert f"retention.ms {week} -> -1" in change.changes
    assert "max.message.bytes 65536 -> broker default (not declared)" in change.changes
    assert "partitions 2 -> 4 (keys map to new partitions from now on)" in change.changes
    assert await _settled_overrides(admin, name, LOG_OF_RECORD) == LOG_OF_RECORD
    assert await _partition_count(admin, name) == 4
    assert any(line.startswith(f"{name}: retention.ms") for line in lines), lines

    [again] = await reconcile_topics(kafka_bootstrap, declared, report=lines.append)
    assert not again.changed, "a second run found more to change"


async def test_a_topic_becomes_compacted_and_never_loses_partitions(
    admin: AIOKafkaAdminClient, kafka_bootstrap: str
) -> None:
    name = f"topics-probe.{uuid.uuid4().hex[:12]}"
    await _create(admin, NewTopic(name, 3, 1, topic_configs={"cleanup.policy": "delete"}))
    lines: list[str] = []

    [change] = await reconcile_topics(
        kafka_bootstrap, [TopicSpec(name, 1, {"cleanup.policy": "compact"})], report=lines.append
    )

    assert change.changes == ("cleanup.policy delete -> compact",)
    compacted = {"cleanup.policy": "compact"}
    assert await _settled_overrides(admin, name, compacted) == compacted
    assert await _partition_count(admin, name) == 3
    assert f"{name}: keeps 3 partitions (declared 1; partitions are never removed)" in lines


async def test_a_missing_topic_is_created_with_its_declared_configuration(
    admin: AIOKafkaAdminClient, kafka_bootstrap: str
) -> None:
    name = f"topics-probe.{uuid.uuid4().hex[:12]}"
    config = {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)}

    [change] = await reconcile_topics(kafka_bootstrap, [TopicSpec(name, 2, config)])

    assert change.created
    assert await _settled_overrides(admin, name, config) == config
    assert await _partition_count(admin, name) == 2


def test_the_command_reports_every_declared_topic_as_declared_after_the_session_setup(
    kafka_bootstrap: str,
) -> None:
    """The session fixture ran the same reconciliation; the command then has nothing to do."""
    run = subprocess.run(
        [sys.executable, "-m", "shared.topics"],
        cwd=ROOT,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "reviews.published: as declared" in run.stderr
    declared = len(all_topic_specs())
    assert run.stderr.rstrip().endswith(f"0 created, 0 changed, {declared} already as declared")
