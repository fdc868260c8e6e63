"""Two relays of one service split its outbox's shares, and every row reaches the topic exactly
once and in per-key order while they do, when one leaves mid-stream (its share moves at once),
when one is killed mid-stream (its share moves after its session expires) and when it returns."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.cloudevents import Envelope
from shared.contracts import RATING_UPDATED
from shared.contracts.ratings import RatingUpdated
from shared.db import apply_migrations, create_pool
from shared.outbox import (
    SHARE_SEQ_BITS,
    OutboxRelay,
    insert_outbox_rows,
    outbox_rows,
    share_condition,
    share_of,
)
from shared.topics import OUTBOX_SHARES, Topic

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 1, tzinfo=UTC)
KEYS = 20


async def _fresh_outbox(database_url: str) -> tuple[asyncpg.Pool, str]:
    schema = f"t_{uuid.uuid4().hex[:10]}_shares"
    pool = await create_pool(database_url, schema)
    await apply_migrations(pool, schema, None)
    return pool, schema


async def _published(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(
            await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
        )


def _published_at_least(pool: asyncpg.Pool, rows: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await _published(pool) >= rows

    return check


def _in_flight(pool: asyncpg.Pool, share: int) -> Callable[[], Awaitable[bool]]:
    """Whether rows of the share are numbered and not marked published: a batch under way."""

    async def check() -> bool:
        async with pool.acquire() as conn:
            return bool(
                await conn.fetchval(
                    """SELECT EXISTS (SELECT FROM outbox WHERE published_at IS NULL
                                         AND relay_seq >= $1 AND relay_seq < $2)""",
                    share << SHARE_SEQ_BITS,
                    (share + 1) << SHARE_SEQ_BITS,
                )
            )

    return check


async def _until(
    what: str,
    seconds: float,
    check: Callable[[], bool] | Callable[[], Awaitable[bool]],
    every: float = 0.05,
) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(every)


def _key(tag: str, i: int) -> str:
    return f"A-{tag}-{i % KEYS}"


async def _stream(pool: asyncpg.Pool, tag: str, rows: int, *, chunk: int = 10) -> None:
    """`rows` ratings over `KEYS` agents, `chunk` a transaction, as handlers would commit them."""
    for first in range(0, rows, chunk):
        ratings = [
            RatingUpdated(
                agent_id=_key(tag, i),
                as_of=START + timedelta(minutes=i),
                visibility="opted_out",
                policy_version="test",
            )
            for i in range(first, min(first + chunk, rows))
        ]
        async with pool.acquire() as conn:
            await insert_outbox_rows(
                conn, outbox_rows(RATING_UPDATED, ratings, source="/tests", time=START)
            )
        await asyncio.sleep(0.01)


def _assert_once_in_key_order(events: list[Envelope], tag: str, rows: int) -> None:
    mine = [e for e in events if e.key and e.key.startswith(f"A-{tag}-")]
    ids = [e.id for e in mine]
    assert len(set(ids)) == len(ids), "an outbox row was published twice"
    assert len(ids) == rows, f"{len(ids)} events for {rows} rows"
    per_key: dict[str, list[str]] = defaultdict(list)
    for envelope in mine:
        assert envelope.key is not None
        per_key[envelope.key].append(envelope.data["as_of"])
    assert len(per_key) == KEYS
    for key, instants in per_key.items():
        assert instants == sorted(instants), f"out of order for {key}"


async def _assert_numbered_in_their_keys_share(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        numbered = await conn.fetch("SELECT message_key, relay_seq FROM outbox")
    shares = {row["relay_seq"] >> SHARE_SEQ_BITS for row in numbered}
    assert shares == set(range(OUTBOX_SHARES)), f"rows of shares {shares} only"
    for row in numbered:
        assert row["relay_seq"] >> SHARE_SEQ_BITS == share_of(row["message_key"], OUTBOX_SHARES)


async def test_postgresql_puts_each_row_in_the_share_python_says(database_url: str) -> None:
    pool, _ = await _fresh_outbox(database_url)
    try:
        async with pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO outbox (topic, message_key, ce_id, ce_type, headers, payload)
                   SELECT 'ratings', CASE WHEN n = 0 THEN NULL ELSE 'agent-' || n END,
                          'c-' || n, 'rating.updated.v1', '{}'::jsonb, '\\x7b7d'::bytea
                     FROM generate_series(0, 499) AS n"""
            )
            for shares in (1, 2, 3, 6):
                for share in range(shares):
                    keys = {
                        row["message_key"]
                        for row in await conn.fetch(
                            f"SELECT message_key FROM outbox WHERE {share_condition(share, shares)}"
                        )
                    }
                    expected = {None if n == 0 else f"agent-{n}" for n in range(500)}
                    assert keys == {k for k in expected if share_of(k, shares) == share}
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def _relaying(relay: OutboxRelay) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(relay.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _split(first: OutboxRelay, second: OutboxRelay) -> bool:
    """Each holds shares, none held twice, none left out."""
    a, b = set(first.owned_shares), set(second.owned_shares)
    return bool(a and b and not a & b and a | b == set(range(OUTBOX_SHARES)))


async def test_two_relays_split_the_shares_and_publish_every_row_once_in_key_order(
    database_url, kafka_bootstrap, topic_reader
) -> None:
    rows = 1000
    pool, _ = await _fresh_outbox(database_url)
    other_pool = await create_pool(database_url, _)
    reader = await topic_reader(Topic.RATINGS)
    tag, name = uuid.uuid4().hex[:8], f"test-shares-{uuid.uuid4().hex[:8]}"
    first = OutboxRelay(pool, kafka=kafka_bootstrap, relay_name=name, batch_size=50)
    second = OutboxRelay(other_pool, kafka=kafka_bootstrap, relay_name=name, batch_size=50)
    try:
        async with _relaying(first), _relaying(second):
            await _until("the relays never split the shares", 60, lambda: _split(first, second))
            held = (first.owned_shares, second.owned_shares)
            await _stream(pool, tag, rows)
            await _until("the relays did not finish", 60, _published_at_least(pool, rows))
            assert (first.owned_shares, second.owned_shares) == held, "a rebalance meanwhile"
            assert first.relayed > 0 and second.relayed > 0, "one relay did all the work"
            assert first.relayed + second.relayed == rows
        _assert_once_in_key_order(await reader.collect(3.0), tag, rows)
        await _assert_numbered_in_their_keys_share(pool)
    finally:
        await other_pool.close()
        await pool.close()


async def test_a_relay_leaving_mid_stream_hands_its_share_over_and_nothing_is_lost_or_repeated(
    database_url, kafka_bootstrap, topic_reader
) -> None:
    rows = 1500
    pool, _ = await _fresh_outbox(database_url)
    other_pool = await create_pool(database_url, _)
    reader = await topic_reader(Topic.RATINGS)
    tag, name = uuid.uuid4().hex[:8], f"test-shares-{uuid.uuid4().hex[:8]}"
    staying = OutboxRelay(pool, kafka=kafka_bootstrap, relay_name=name, batch_size=20)
    leaving = OutboxRelay(other_pool, kafka=kafka_bootstrap, relay_name=name, batch_size=20)
    try:
        async with _relaying(staying):
            async with _relaying(leaving) as leaving_task:
                await _until("the relays never split", 60, lambda: _split(staying, leaving))
                streaming = asyncio.create_task(_stream(pool, tag, rows))
                await _until("no progress", 60, _published_at_least(pool, rows // 3))
                assert leaving.relayed > 0
                leaving_task.cancel()  # a graceful stop: it leaves the group
                await asyncio.gather(leaving_task, return_exceptions=True)
            left_at = await _published(pool)
            assert left_at < rows, "the stop should land mid-stream"
            # no session to wait out: the group moves the share as the member leaves
            await _until(
                "the share did not move",
                8,
                lambda: staying.owned_shares == list(range(OUTBOX_SHARES)),
            )
            await streaming
            await _until("the relay did not finish", 60, _published_at_least(pool, rows))
        _assert_once_in_key_order(await reader.collect(3.0), tag, rows)
        await _assert_numbered_in_their_keys_share(pool)
    finally:
        await other_pool.close()
        await pool.close()


async def test_the_single_relay_of_earlier_versions_and_the_shares_never_relay_together(
    database_url, kafka_bootstrap
) -> None:
    """The single relay led while it held an advisory lock on its group's name; beside the
    shares it would number rows into share 1's range. The shares hold that lock shared: they
    wait while an old relay leads, and an old relay cannot lead while they run."""
    pool, _ = await _fresh_outbox(database_url)
    name = f"test-shares-{uuid.uuid4().hex[:8]}"
    election = f"outbox-relay.{name}"
    old = await asyncpg.connect(database_url)
    relay = OutboxRelay(pool, kafka=kafka_bootstrap, relay_name=name)
    try:
        assert await old.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", election)
        async with _relaying(relay):
            await asyncio.sleep(3.0)  # time to join the group, were it allowed to
            assert relay.owned_shares == [], "the shares started while an old relay led"
            await old.execute("SELECT pg_advisory_unlock(hashtext($1))", election)
            everything = list(range(OUTBOX_SHARES))
            await _until("the shares never started", 30, lambda: relay.owned_shares == everything)
            assert not await old.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", election), (
                "an old relay could lead beside the shares"
            )
    finally:
        await old.close()
        await pool.close()


@dataclass
class RelayProcess:
    """A relay in a process of its own (tests/support/relay_process.py), and what it holds."""

    command: list[str]
    process: asyncio.subprocess.Process | None = None
    shares: list[int] = field(default_factory=list)
    reading: asyncio.Task[None] | None = None

    async def start(self) -> RelayProcess:
        self.shares = []
        self.process = await asyncio.create_subprocess_exec(
            *self.command, stdout=asyncio.subprocess.PIPE, env={**os.environ}
        )
        self.reading = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            said = line.decode().split()
            if said[:1] == ["shares"]:
                self.shares = [] if said[1] == "-" else [int(n) for n in said[1].split(",")]

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self.shares = []

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self.reading is not None:
            await asyncio.gather(self.reading, return_exceptions=True)


async def test_a_relay_killed_mid_stream_loses_its_share_to_the_other_and_gets_one_back(
    database_url, kafka_bootstrap, topic_reader
) -> None:
    """kill -9 of one of two relay processes while rows stream in, while its batch is numbered
    in PostgreSQL and its Kafka transaction open: its share waits for its session to expire,
    then the other relays it from the cursor its last transaction committed, the numbered batch
    first; the killed one returns and the shares split again. Every row once, in key order."""
    rows = 3000
    pool, schema = await _fresh_outbox(database_url)
    reader = await topic_reader(Topic.RATINGS)
    tag = uuid.uuid4().hex[:8]
    command = [
        sys.executable,
        "-m",
        "tests.support.relay_process",
        database_url,
        schema,
        kafka_bootstrap,
        f"test-shares-{tag}",
        "slow",  # each transaction held open 250 ms: the kill lands mid-batch
    ]
    victim, survivor = RelayProcess(command), RelayProcess(command)
    everything = set(range(OUTBOX_SHARES))

    def split() -> bool:
        a, b = set(victim.shares), set(survivor.shares)
        return bool(a and b and not a & b and a | b == everything)

    streaming: asyncio.Task[None] | None = None
    try:
        await victim.start()
        await survivor.start()
        await _until("the relays never split the shares", 60, split)
        # about 10 s of rows: through the kill, the session timeout and the return
        streaming = asyncio.create_task(_stream(pool, tag, rows, chunk=5))
        await _until("no progress", 60, _published_at_least(pool, rows // 5))
        # kill as soon as a batch of the victim's is numbered and not yet published
        (share,) = victim.shares
        in_flight = _in_flight(pool, share)
        await _until("the victim never had a batch in flight", 30, in_flight, every=0.005)
        await victim.kill()
        assert await in_flight(), "the kill should land mid-batch"
        killed_at = await _published(pool)
        assert killed_at < rows, "the kill should land mid-stream"
        await _until("the share never moved", 60, lambda: set(survivor.shares) == everything)
        moved_at = await _published(pool)
        assert moved_at < rows, "the stream should outlast the handover"
        await victim.start()
        await _until("the returning relay got no share back", 60, split)
        await streaming
        await _until("the relays did not finish", 90, _published_at_least(pool, rows))
        events = await reader.collect(3.0)
    finally:
        if streaming is not None:
            streaming.cancel()
        await victim.stop()
        await survivor.stop()
    try:
        _assert_once_in_key_order(events, tag, rows)
        await _assert_numbered_in_their_keys_share(pool)
    finally:
        await pool.close()
