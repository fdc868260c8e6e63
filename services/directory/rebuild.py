"""Rebuilding the read model from offset 0 when the schema is new.

The subscribers start at the earliest offset only when their group has no committed offsets.
A schema dropped and created again under the same `KAFKA_GROUP_ID` would otherwise resume where
the old schema left off and show an empty directory. So at start, before the consumers join,
the service checks its `rebuilds` table: empty means this schema has never been built, and the
group's committed offsets are moved to the beginning of the three topics first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from services.directory.repository import DirectoryRepository
from shared.kafka_security import Kafka, kafka_client_options
from shared.runtime import ServiceRuntime
from shared.topics import partitions_of

logger = logging.getLogger(__name__)


class RebuildRefused(RuntimeError):
    """The group still has live members: moving its offsets now would be overruled by them."""


async def rewind_group(kafka: Kafka, group_id: str, topics: Iterable[str]) -> int:
    """Commit the beginning of every partition of `topics` as `group_id`'s offsets. Kafka
    accepts this only while the group has no live member. Returns the partitions rewound."""
    consumer = AIOKafkaConsumer(
        **kafka_client_options(kafka),
        group_id=group_id,
        enable_auto_commit=False,
        client_id=f"{group_id}-rebuild",
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in sorted(topics)
            for p in await partitions_of(kafka, topic)
        ]
        consumer.assign(partitions)
        beginnings = await consumer.beginning_offsets(partitions)
        try:
            await consumer.commit(
                {tp: OffsetAndMetadata(offset, "") for tp, offset in beginnings.items()}
            )
        except KafkaError as exc:
            raise RebuildRefused(
                f"consumer group {group_id} has live members: stop every directory instance "
                "(or set a new KAFKA_GROUP_ID) to rebuild this schema"
            ) from exc
        return len(partitions)
    finally:
        await consumer.stop()


async def rebuild_if_new(runtime: ServiceRuntime) -> None:
    """`before_consuming` hook: rewind the group once per schema, under a lock so that several
    instances starting together rewind it once."""
    settings = runtime.settings
    if runtime.dispatcher is None or not getattr(settings, "rebuild_when_empty", True):
        return
    async with runtime.unit_of_work() as uow:
        await uow.conn.execute("SELECT pg_advisory_xact_lock(hashtext('directory.rebuild'))")
        repo = DirectoryRepository(uow.conn)
        if await repo.rebuilt_before():
            return
        rewound = await rewind_group(settings, settings.group_id, runtime.dispatcher.subscribed)
        await repo.record_rebuild(settings.group_id, uow.now)
    logger.info(
        "new schema: rebuilding from offset 0",
        extra={"group_id": settings.group_id, "partitions": rewound},
    )
