"""The outbox relay publishes every row exactly once, in per-key order, across a kill -9 and
across a Kafka transaction that aborts after its rows were numbered."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from shared.contracts import RATING_UPDATED
from shared.contracts.ratings import RatingUpdated
from shared.db import apply_migrations, create_pool
from shared.outbox import (
    OutboxRelay,
    OutboxShare,
    insert_outbox_rows,
    outbox_rows,
    prune_published,
)
from shared.topics import Topic

pytestmark = pytest.mark.integration

ROWS, KEYS = 1000, 20


async def _published(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(
            await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
        )


async def _fresh_outbox(database_url: str) -> tuple[asyncpg.Pool, str]:
    schema = f"t_{uuid.uuid4().hex[:10]}_outbox"
    pool = await create_pool(database_url, schema)
    await apply_migrations(pool, schema, None)
    return pool, schema


START = datetime(2026, 1, 1, tzinfo=UTC)


async def test_rows_arrive_exactly_once_in_key_order_across_a_killed_relay(
    database_url, kafka_bootstrap, topic_reader
) -> None:
    pool, schema = await _fresh_outbox(database_url)
    reader = await topic_reader(Topic.RATINGS)
    tag = uuid.uuid4().hex[:8]
    async with pool.acquire() as conn, conn.transaction():
        for i in range(ROWS):
            rating = RatingUpdated(
                agent_id=f"A-{tag}-{i % KEYS}",
                as_of=START + timedelta(minutes=i),
                visibility="opted_out",
                policy_version="test",
            )
            await insert_outbox_rows(
                conn, outbox_rows(RATING_UPDATED, [rating], source="/tests", time=START)
            )

    command = [
        sys.executable,
        "-m",
        "tests.support.relay_process",
        database_url,
        schema,
        kafka_bootstrap,
        f"test-{tag}",
    ]
    first = subprocess.Popen(command, env={**os.environ})
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while await _published(pool) < 200:
            assert asyncio.get_running_loop().time() < deadline, "relay made no progress"
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = await _published(pool)
        assert killed_at < ROWS, "the kill should land mid-way"
        second = subprocess.Popen(command, env={**os.environ})
        try:
            deadline = asyncio.get_running_loop().time() + 90
            while await _published(pool) < ROWS:
                assert asyncio.get_running_loop().time() < deadline, "relay did not finish"
                await asyncio.sleep(0.1)
            mine = [e for e in await reader.collect(3.0) if e.key and e.key.startswith(f"A-{tag}-")]
        finally:
            second.terminate()
            second.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
        await pool.close()

    ids = [e.id for e in mine]
    assert len(ids) == ROWS, f"{len(ids)} events for {ROWS} rows (killed after {killed_at})"
    assert len(set(ids)) == ROWS, "an outbox row was published twice"
    per_key: dict[str, list[str]] = defaultdict(list)
    for envelope in mine:
        assert envelope.key is not None
        per_key[envelope.key].append(envelope.data["as_of"])
    assert len(per_key) == KEYS
    for key, instants in per_key.items():
        assert instants == sorted(instants), f"out of order for {key}"


class _FailingOnce(AIOKafkaProducer):  # type: ignore[misc]  # aiokafka is untyped
    """The first transaction's send fails, after the relay numbered that batch's rows."""

    failed = False

    async def send(self, *args: object, **kwargs: object) -> object:
        if not _FailingOnce.failed:
            _FailingOnce.failed = True
            raise RuntimeError("broker said no")
        return await super().send(*args, **kwargs)


async def test_rows_numbered_before_an_aborted_transaction_go_first_and_once(
    database_url, kafka_bootstrap, topic_reader
) -> None:
    pool, _ = await _fresh_outbox(database_url)
    reader = await topic_reader(Topic.RATINGS)
    tag = uuid.uuid4().hex[:8]
    ratings = [
        RatingUpdated(
            agent_id=f"A-{tag}",
            as_of=START + timedelta(minutes=i),
            visibility="opted_out",
            policy_version="test",
        )
        for i in range(30)
    ]
    async with pool.acquire() as conn:
        await insert_outbox_rows(
            conn, outbox_rows(RATING_UPDATED, ratings[:10], source="/tests", time=START)
        )
    relay = OutboxRelay(
        pool,
        kafka=kafka_bootstrap,
        relay_name=f"test-abort-{tag}",
        batch_size=4,
        poll_seconds=0.05,
        producer_factory=_FailingOnce,
    )
    task = asyncio.create_task(relay.run())
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while not _FailingOnce.failed:
            assert asyncio.get_running_loop().time() < deadline, "relay never sent"
            await asyncio.sleep(0.02)
        async with pool.acquire() as conn:  # rows arriving while the relay starts over
            await insert_outbox_rows(
                conn, outbox_rows(RATING_UPDATED, ratings[10:], source="/tests", time=START)
            )
        while await _published(pool) < len(ratings):
            assert asyncio.get_running_loop().time() < deadline, "relay did not finish"
            await asyncio.sleep(0.05)
        mine = [e for e in await reader.collect(2.0) if e.key == f"A-{tag}"]
        async with pool.acquire() as conn:
            seqs = [
                r["relay_seq"] for r in await conn.fetch("SELECT relay_seq FROM outbox ORDER BY id")
            ]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pool.close()

    assert [e.data["as_of"] for e in mine] == [
        r.model_dump(mode="json")["as_of"] for r in ratings
    ], "lost, duplicated or out of order"
    assert seqs == list(range(seqs[0], seqs[0] + len(ratings))), "gap-free relay_seq in id order"


async def test_a_holding_whose_broker_cannot_be_reached_closes_its_producer(
    database_url: str,
) -> None:
    """A share's relay starts its holding over after any failure; a producer that failed to
    start must be closed all the same, or every restart during a Kafka outage leaks a client."""
    pool, _schema = await _fresh_outbox(database_url)
    stopped: list[AIOKafkaProducer] = []

    class RecordingProducer(AIOKafkaProducer):  # type: ignore[misc]  # aiokafka is untyped
        async def stop(self) -> None:
            stopped.append(self)
            await super().stop()

    unreachable = "127.0.0.1:1"  # nothing listens on port 1
    relay = OutboxRelay(
        pool,
        kafka=unreachable,
        relay_name=f"test-{uuid.uuid4().hex[:8]}",
        producer_factory=RecordingProducer,
    )
    try:
        with pytest.raises(KafkaConnectionError):
            await OutboxShare(relay, 0, 1)._hold()
        assert len(stopped) == 1
    finally:
        await pool.close()


async def test_published_rows_are_pruned_after_the_retention_and_the_rest_kept(
    database_url,
) -> None:
    pool, _ = await _fresh_outbox(database_url)
    try:
        async with pool.acquire() as conn:
            await conn.execute(
                """
                INSERT INTO outbox (topic, message_key, ce_id, ce_type, headers, payload,
                                    relay_seq, published_at)
                SELECT 'ratings', 'A-1', 'old-' || n, 'rating.updated.v1', '{}'::jsonb, '\\x7b7d'::bytea,
                       n, now() - interval '8 days'
                  FROM generate_series(1, 7) AS n
                UNION ALL
                SELECT 'ratings', 'A-1', 'recent', 'rating.updated.v1', '{}'::jsonb, '\\x7b7d'::bytea, 8,
                       now() - interval '1 day'
                UNION ALL
                SELECT 'ratings', 'A-1', 'unpublished', 'rating.updated.v1', '{}'::jsonb, '\\x7b7d'::bytea,
                       NULL, NULL
                """
            )
        assert await prune_published(pool, timedelta(days=7), batch=3) == 7
        async with pool.acquire() as conn:
            left = {r["ce_id"] for r in await conn.fetch("SELECT ce_id FROM outbox")}
        assert left == {"recent", "unpublished"}
        assert await prune_published(pool, timedelta(days=7)) == 0
    finally:
        await pool.close()
