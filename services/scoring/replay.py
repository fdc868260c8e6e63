"""Rebuild the scoring store from the topics and republish the ratings that changed.

    python -m services.scoring.replay [--policy-version VERSION]

How an operator rolls out a new policy version or recovers a lost database: the roster
(`mls.agents`), participation (`agents.participation`) and every published review
(`reviews.published`) are read from offset 0 up to their ends at start, the review history is
rebuilt, every agent is re-rated under the chosen policy, and `rating.updated.v1` is published,
chunk by chunk as the re-rating goes on, for each agent whose public rating differs from the last
one published (all of them after a lost database). Stop the scoring service first (its consumers
would race the rebuild); start it again afterwards, with `SCORING_POLICY_VERSION` set to the
same version.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.scoring.app import MIGRATIONS
from services.scoring.domain.policy import Policy
from services.scoring.domain.publication import policy_for
from services.scoring.handlers import rerate, review_rows
from services.scoring.repository import ScoringRepository
from services.scoring.settings import ScoringSettings
from shared.cloudevents import InvalidEvent, decode_attributes, validate_data
from shared.contracts import event_type_of
from shared.contracts.mls import AgentUpserted
from shared.contracts.participation import ParticipationChanged
from shared.db import apply_migrations, create_pool
from shared.kafka_security import Kafka, kafka_client_options
from shared.outbox import OutboxRelay
from shared.topics import Topic, partitions_of
from shared.uow import UnitOfWorkFactory

logger = logging.getLogger(__name__)

SOURCES = (Topic.MLS_AGENTS, Topic.AGENTS_PARTICIPATION, Topic.REVIEWS_PUBLISHED)
CHUNK = 5000
RERATE_CHUNK = 1000


@dataclass
class ReplayReport:
    policy_version: str
    events: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    agents_rated: int = 0
    ratings_published: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


async def _read_topic(kafka: Kafka, topic: str, chunk: int = CHUNK) -> AsyncIterator[list[object]]:
    """Validated events of `topic` from offset 0 to its end at the start, in chunks."""
    consumer = AIOKafkaConsumer(
        **kafka_client_options(kafka), enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        partitions = await partitions_of(kafka, topic)
        assignment = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assignment)
        await consumer.seek_to_beginning(*assignment)
        ends = await consumer.end_offsets(assignment)
        remaining = {tp for tp in assignment if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=chunk)
            events: list[object] = []
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue
                    events.append(_event(record))
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            yield events
    finally:
        await consumer.stop()


def _event(record: Any) -> object:
    """The validated event of a record, or None for anything unreadable (counted, skipped): the
    live consumers dead-letter such records; a replay only reads past them."""
    try:
        envelope = decode_attributes(record.key, record.value, dict(record.headers))
        event_type = event_type_of(record.topic, envelope.type)
        if event_type is None:
            return None
        return validate_data(envelope, event_type.model)
    except InvalidEvent:
        return None


async def replay(
    settings: ScoringSettings,
    policy: Policy,
    *,
    progress: Callable[[str], None] = print,
    publish: bool = True,
) -> ReplayReport:
    """`publish=False` leaves the ratings in the rebuilt store only (a check against a scratch
    schema must not announce every agent's rating again on the shared `ratings` topic)."""
    report = ReplayReport(policy.version)
    pool = await create_pool(settings.database_url, settings.db_schema, max_size=4)
    try:
        await apply_migrations(pool, settings.db_schema, MIGRATIONS)
        started = time.perf_counter()
        async with pool.acquire() as conn:
            await ScoringRepository(conn).forget_history()
        for topic in SOURCES:
            await _load(pool, settings, topic, report, progress)
        report.seconds["load"] = time.perf_counter() - started
        started = time.perf_counter()
        # the service's own relay publishes each chunk's ratings while the next is re-rated
        relay = OutboxRelay.for_service(pool, settings, poll_seconds=0.05)
        relaying = asyncio.create_task(relay.run()) if publish else None
        try:
            await _rerate_all(pool, settings, policy, report, progress)
            report.seconds["rerate"] = time.perf_counter() - started
            started = time.perf_counter()
            if relaying is not None:
                await _drain(pool, relaying, progress)
            report.seconds["publish"] = time.perf_counter() - started
        finally:
            if relaying is not None:
                relaying.cancel()
                await asyncio.gather(relaying, return_exceptions=True)
    finally:
        await pool.close()
    return report


async def _load(
    pool: asyncpg.Pool,
    kafka: Kafka,
    topic: str,
    report: ReplayReport,
    progress: Callable[[str], None],
) -> None:
    count, started = 0, time.perf_counter()
    async for events in _read_topic(kafka, topic):
        valid = [event for event in events if event is not None]
        report.skipped += len(events) - len(valid)
        async with pool.acquire() as conn, conn.transaction():
            repo = ScoringRepository(conn)
            if topic == Topic.REVIEWS_PUBLISHED:
                await repo.save_reviews(review_rows(valid))
            await repo.save_agents(
                [
                    (e.agent_id, e.office_id, e.member_since, e.active)
                    for e in valid
                    if isinstance(e, AgentUpserted)
                ]
            )
            await repo.save_modes(
                [
                    (e.agent_id, e.mode.value, e.changed_at)
                    for e in valid
                    if isinstance(e, ParticipationChanged)
                ]
            )
        count += len(events)
        if events:
            rate = count / max(time.perf_counter() - started, 1e-6)
            progress(f"  {topic}: {count} events read ({rate:,.0f}/s)")
    report.events[topic] = count


async def _rerate_all(
    pool: asyncpg.Pool,
    settings: ScoringSettings,
    policy: Policy,
    report: ReplayReport,
    progress: Callable[[str], None],
) -> None:
    units = UnitOfWorkFactory(
        pool, settings.clock(), f"/ratings/{settings.service_name}", settings.pii_cipher()
    )
    after = ""
    while True:
        async with units() as uow:
            repo = ScoringRepository(uow.conn)
            agent_ids = await repo.all_rated_agent_ids(after, RERATE_CHUNK)
            if not agent_ids:
                break
            report.ratings_published += await rerate(uow, repo, agent_ids, policy)
        report.agents_rated += len(agent_ids)
        after = agent_ids[-1]
        progress(
            f"  re-rated {report.agents_rated} agents under {policy.version}; "
            f"{report.ratings_published} ratings changed"
        )


async def _drain(
    pool: asyncpg.Pool, relaying: asyncio.Task[None], progress: Callable[[str], None]
) -> None:
    """Wait until the relay has published every queued rating (or failed)."""
    while True:
        async with pool.acquire() as conn:
            backlog = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        if backlog == 0:
            return
        if relaying.done():
            relaying.result()
        progress(f"  publishing ratings: {backlog} to go")
        await asyncio.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--policy-version",
        help="policy to rate with (default: SCORING_POLICY_VERSION, else the newest)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = ScoringSettings()
    try:
        policy = policy_for(args.policy_version or settings.scoring_policy_version)
    except ValueError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    print(f"replay: rebuilding schema {settings.db_schema} under policy {policy.version}")
    report = asyncio.run(replay(settings, policy))
    print(
        f"replay: done: {sum(report.events.values())} events ({report.skipped} unreadable, "
        f"skipped), {report.agents_rated} agents re-rated, {report.ratings_published} ratings "
        f"published; load {report.seconds['load']:.1f}s, re-rate {report.seconds['rerate']:.1f}s, "
        f"publish {report.seconds['publish']:.1f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
