"""Topic names and specs, and an idempotent command that creates them with their DLQs.

Run: `python -m shared.topics` (env `KAFKA_BOOTSTRAP_SERVERS`, `TOPIC_PARTITIONS`,
`TOPIC_REPLICATION_FACTOR`, `TOPIC_MIN_INSYNC_REPLICAS`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from enum import StrEnum

logger = logging.getLogger(__name__)


class Topic(StrEnum):
    MLS_AGENTS = "mls.agents"
    MLS_TRANSACTIONS = "mls.transactions"
    LEADS_ASSIGNED = "leads.assigned"
    AGENTS_PARTICIPATION = "agents.participation"
    REVIEWS_PUBLISHED = "reviews.published"
    REVIEWS_PUBLIC = "reviews.public"
    RATINGS = "ratings"
    INVITATIONS_EVENTS = "invitations.events"
    REMOVALS_EVENTS = "removals.events"
    REVIEWS_EVENTS = "reviews.events"
    CLIENT_ERASURES = "clients.erasures"


COMPACTED: frozenset[str] = frozenset({Topic.MLS_AGENTS, Topic.AGENTS_PARTICIPATION, Topic.RATINGS})

OUTBOX_CURSOR_TOPIC = "outbox.relay.cursors"
"""Never written to: each outbox relay commits its position as a group offset on it, atomically
with the events it publishes (see shared.outbox)."""


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


def all_topic_specs(partitions: int = 6, min_insync_replicas: int = 1) -> list[TopicSpec]:
    specs: list[TopicSpec] = []
    base = {"min.insync.replicas": str(min_insync_replicas)}
    for topic in Topic:
        policy = "compact" if topic in COMPACTED else "delete"
        specs.append(TopicSpec(topic.value, partitions, {**base, "cleanup.policy": policy}))
        specs.append(TopicSpec(dlq(topic.value), 1, {**base, "cleanup.policy": "delete"}))
    specs.append(TopicSpec(OUTBOX_CURSOR_TOPIC, 1, base))
    return specs


async def create_topics(
    bootstrap_servers: str,
    *,
    partitions: int = 6,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
) -> list[str]:
    """Create every missing topic; return the names created. Existing topics are left alone."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="topic-setup")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            spec
            for spec in all_topic_specs(partitions, min_insync_replicas)
            if spec.name not in existing
        ]
        if wanted:
            await admin.create_topics(
                [
                    NewTopic(
                        name=spec.name,
                        num_partitions=spec.partitions,
                        replication_factor=replication_factor,
                        topic_configs=spec.config,
                    )
                    for spec in wanted
                ]
            )
        return [spec.name for spec in wanted]
    finally:
        await admin.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    created = asyncio.run(
        create_topics(
            bootstrap,
            partitions=int(os.environ.get("TOPIC_PARTITIONS", "6")),
            replication_factor=int(os.environ.get("TOPIC_REPLICATION_FACTOR", "1")),
            min_insync_replicas=int(os.environ.get("TOPIC_MIN_INSYNC_REPLICAS", "1")),
        )
    )
    total = len(all_topic_specs())
    logger.info(
        "topics: %d created, %d already present (%s)", len(created), total - len(created), bootstrap
    )


if __name__ == "__main__":
    main()


async def partitions_of(bootstrap_servers: str, topic: str) -> list[int]:
    """The topic's partition numbers, from the broker (a new consumer knows none yet)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = sorted(p["partition"] for p in described[0]["partitions"])
    if not partitions:
        raise RuntimeError(f"topic {topic} does not exist")
    return partitions
