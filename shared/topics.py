"""Every topic's declared configuration, and a command that brings the broker to it.

Run: `python -m shared.topics` (env `KAFKA_BOOTSTRAP_SERVERS` and the other `KAFKA_*` connection
settings, `TOPIC_PARTITIONS`, `TOPIC_REPLICATION_FACTOR`, `TOPIC_MIN_INSYNC_REPLICAS`,
`OUTBOX_SHARES`). It creates missing topics, changes existing ones whose configuration or
partition count differs (never fewer partitions) and prints what it did; run twice, the second
run changes nothing (docs/design.md 2.1).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.kafka_security import Kafka

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


OUTBOX_CURSOR_TOPIC = "outbox.relay.cursors"
"""Never written to: each outbox relay commits its position as a group offset on it, atomically
with the events it publishes (see shared.outbox)."""
OUTBOX_SHARES = 2
"""The cursor topic's partitions: each is a share of every service's outbox, relayed by one
instance at a time, so this many instances of a service relay together (`OUTBOX_SHARES` of
`python -m shared.topics` raises it; grow it while the relays are stopped, as keys map to other
shares afterwards)."""


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


DAY_MS = 24 * 60 * 60 * 1000


def _kept_for(days: int) -> dict[str, str]:
    return {"cleanup.policy": "delete", "retention.ms": str(days * DAY_MS), "retention.bytes": "-1"}


_FOREVER = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
_LATEST_PER_KEY = {"cleanup.policy": "compact"}

TOPIC_CONFIG: Mapping[Topic, Mapping[str, str]] = {
    # The log of record: scoring's replay and downstream readers rebuild from offset 0.
    Topic.REVIEWS_PUBLISHED: _FOREVER,
    Topic.REVIEWS_PUBLIC: _FOREVER,
    # The latest value per key is the state, kept for as long as the key lives.
    Topic.MLS_AGENTS: _LATEST_PER_KEY,
    Topic.AGENTS_PARTICIPATION: _LATEST_PER_KEY,
    Topic.RATINGS: _LATEST_PER_KEY,
    # Turned into each consumer's state within seconds; 90 days outlasts every window the rules
    # run on (compliance 14 days, invitations 30), so a consumer back from a long outage or a
    # fix re-read from a point in time still finds them, and client contact data in closings
    # and leads does not stay in the log for ever.
    Topic.MLS_TRANSACTIONS: _kept_for(90),
    Topic.LEADS_ASSIGNED: _kept_for(90),
    Topic.INVITATIONS_EVENTS: _kept_for(90),
    Topic.REVIEWS_EVENTS: _kept_for(90),
    Topic.REMOVALS_EVENTS: _kept_for(90),
    # Keyed hashes of an erased client's contact: long enough for every service to act on it,
    # short because the hashes still single that client out.
    Topic.CLIENT_ERASURES: _kept_for(30),
}
DLQ_CONFIG: Mapping[str, str] = _kept_for(30)
"""Time to look at a dead letter, fix the cause and re-publish it (docs/reliability.md)."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: Mapping[str, str]


def all_topic_specs(
    partitions: int = 6, min_insync_replicas: int = 1, outbox_shares: int = OUTBOX_SHARES
) -> list[TopicSpec]:
    """The declared topics: every Topic with its DLQ beside it, and the relays' cursor topic."""
    base = {"min.insync.replicas": str(min_insync_replicas)}
    specs: list[TopicSpec] = []
    for topic in Topic:
        specs.append(TopicSpec(topic.value, partitions, {**base, **TOPIC_CONFIG[topic]}))
        specs.append(TopicSpec(dlq(topic.value), 1, {**base, **DLQ_CONFIG}))
    # Never written (relays commit group offsets on it): any retention keeps nothing.
    specs.append(TopicSpec(OUTBOX_CURSOR_TOPIC, outbox_shares, {**base, **DLQ_CONFIG}))
    return specs


@dataclass(frozen=True)
class TopicChange:
    """What reconciling did to one topic: nothing, or the changes in words."""

    topic: str
    created: bool
    changes: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.created or bool(self.changes)


_DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs config_source: set on the topic itself
_TOPIC_ALREADY_EXISTS = 36


def _raise_on_errors(what: str, errors: Sequence[tuple[str, int, str | None]]) -> None:
    from aiokafka.errors import for_code

    failed = [(name, code, message) for name, code, message in errors if code]
    if failed:
        name, code, message = failed[0]
        raise for_code(code)(f"{what} {name}: {message or ''} ({len(failed)} failed)")


async def reconcile_topics(
    kafka: Kafka,
    specs: Sequence[TopicSpec],
    *,
    replication_factor: int = 1,
    report: Callable[[str], None] = logger.info,
) -> list[TopicChange]:
    """Bring the broker to `specs`: create what is missing, set each existing topic's own
    configuration to exactly the declared one (an override not declared is removed), add
    partitions where there are fewer. Reports one line per topic as it goes."""
    from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from shared.kafka_security import kafka_client_options

    admin = AIOKafkaAdminClient(**kafka_client_options(kafka), client_id="topic-setup")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            created = await admin.create_topics(
                [
                    NewTopic(
                        spec.name,
                        spec.partitions,
                        replication_factor,
                        topic_configs=dict(spec.config),
                    )
                    for spec in missing
                ]
            )
            _raise_on_errors(
                "creating topic",
                [
                    (entry[0], 0 if entry[1] == _TOPIC_ALREADY_EXISTS else entry[1], None)
                    for entry in created.topic_errors
                ],
            )
            # listed a moment too early (a topic just created elsewhere): reconcile it instead
            raced = {e[0] for e in created.topic_errors if e[1] == _TOPIC_ALREADY_EXISTS}
            existing |= raced
            missing = [spec for spec in missing if spec.name not in raced]
        present = [spec for spec in specs if spec.name in existing]
        configs = await _topic_configs(admin, [spec.name for spec in present])
        described = await admin.describe_topics([spec.name for spec in present]) if present else []
        layouts = {topic["topic"]: topic["partitions"] for topic in described}
        to_alter: list[ConfigResource] = []
        to_grow: dict[str, NewPartitions] = {}
        outcome: dict[str, TopicChange] = {}
        for spec in missing:
            outcome[spec.name] = TopicChange(spec.name, True, ())
            settings = ", ".join(f"{key}={value}" for key, value in spec.config.items())
            report(f"{spec.name}: created ({spec.partitions} partitions, {settings})")
        for spec in present:
            current, overrides = configs[spec.name]
            changes = [
                f"{key} {current.get(key)} -> {value}"
                for key, value in spec.config.items()
                if current.get(key) != value
            ]
            changes += [
                f"{key} {value} -> broker default (not declared)"
                for key, value in overrides.items()
                if key not in spec.config
            ]
            if changes:
                to_alter.append(
                    ConfigResource(ConfigResourceType.TOPIC, spec.name, dict(spec.config))
                )
            partitions = layouts[spec.name]
            if len(partitions) < spec.partitions:
                to_grow[spec.name] = NewPartitions(spec.partitions)
                changes.append(
                    f"partitions {len(partitions)} -> {spec.partitions} (keys map to new "
                    "partitions from now on)"
                )
            elif len(partitions) > spec.partitions:
                report(
                    f"{spec.name}: keeps {len(partitions)} partitions (declared "
                    f"{spec.partitions}; partitions are never removed)"
                )
            replicas = {len(partition["replicas"]) for partition in partitions}
            if replicas != {replication_factor}:
                report(
                    f"{spec.name}: replication factor {sorted(replicas)} not changed "
                    f"(declared {replication_factor}; that needs a partition reassignment)"
                )
            outcome[spec.name] = TopicChange(spec.name, False, tuple(changes))
            report(f"{spec.name}: {'; '.join(changes) or 'as declared'}")
        if to_alter:
            # AlterConfigs (the only one aiokafka speaks) replaces a topic's whole set of
            # overrides: sending the declared config is what removes undeclared ones.
            for response in await admin.alter_configs(to_alter):
                _raise_on_errors(
                    "configuring topic",
                    [
                        (r["resource_name"], r["error_code"], r["error_message"])
                        for r in response.to_object()["resources"]
                    ],
                )
            report(f"configuration applied to {len(to_alter)} topic(s)")
        if to_grow:
            await admin.create_partitions(to_grow)
            report(f"partitions added to {len(to_grow)} topic(s)")
    finally:
        await admin.close()
    return [outcome[spec.name] for spec in specs]


async def _topic_configs(
    admin: Any, topics: Sequence[str]
) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """Each topic's effective configuration and the part set on the topic itself."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    if not topics:
        return {}
    described: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
    )
    for response in responses:
        for resource in response.to_object()["resources"]:
            _raise_on_errors(
                "describing topic",
                [(resource["resource_name"], resource["error_code"], resource["error_message"])],
            )
            entries = resource["config_entries"]
            described[resource["resource_name"]] = (
                {e["config_names"]: e["config_value"] for e in entries},
                {
                    e["config_names"]: e["config_value"]
                    for e in entries
                    if e["config_source"] == _DYNAMIC_TOPIC_CONFIG
                },
            )
    return described


async def ensure_topics(
    kafka: Kafka,
    *,
    partitions: int = 6,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
    outbox_shares: int = OUTBOX_SHARES,
    report: Callable[[str], None] = logger.info,
) -> list[TopicChange]:
    """Bring every declared topic to its declared configuration (`python -m shared.topics`)."""
    return await reconcile_topics(
        kafka,
        all_topic_specs(partitions, min_insync_replicas, outbox_shares),
        replication_factor=replication_factor,
        report=report,
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from shared.settings import KafkaSettings

    kafka = KafkaSettings()
    logger.info("topics: reconciling the declared topics on %s", kafka.kafka_bootstrap_servers)
    changes = asyncio.run(
        ensure_topics(
            kafka,
            partitions=int(os.environ.get("TOPIC_PARTITIONS", "6")),
            replication_factor=int(os.environ.get("TOPIC_REPLICATION_FACTOR", "1")),
            min_insync_replicas=int(os.environ.get("TOPIC_MIN_INSYNC_REPLICAS", "1")),
            outbox_shares=int(os.environ.get("OUTBOX_SHARES", str(OUTBOX_SHARES))),
        )
    )
    created = sum(change.created for change in changes)
    altered = sum(change.changed and not change.created for change in changes)
    logger.info(
        "topics: %d created, %d changed, %d already as declared",
        created,
        altered,
        len(changes) - created - altered,
    )


if __name__ == "__main__":
    main()


async def partitions_of(kafka: Kafka, topic: str) -> list[int]:
    """The topic's partition numbers, from the broker (a new consumer knows none yet)."""
    from aiokafka.admin import AIOKafkaAdminClient

    from shared.kafka_security import kafka_client_options

    admin = AIOKafkaAdminClient(**kafka_client_options(kafka))
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = sorted(p["partition"] for p in described[0]["partitions"])
    if not partitions:
        raise RuntimeError(f"topic {topic} does not exist")
    return partitions
