"""Scoring benchmark: review events/s from the topic to rating updates, and the full replay
time, each beside a bare aiokafka → asyncpg loop doing the same writes in the same run.

    python -m devtools.bench_scoring [--reviews 50000 --agents 5000]
                                     [--replay-reviews 1000000 --replay-agents 100000]

Runs on its own fresh Kafka broker (port 9292, so the benchmark's million events never reach
the development broker the tests use) and the local PostgreSQL. Prints a table and writes JSON
to bench-results/. Numbers are measured, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rich.console import Console
from rich.table import Table

from devtools.processes import ServiceProcesses
from services.scoring.domain.publication import policy_for
from services.scoring.replay import replay
from services.scoring.settings import ScoringSettings
from shared.cloudevents import encode
from shared.contracts import AGENT_UPSERTED, PARTICIPATION_CHANGED, REVIEW_PUBLISHED
from shared.contracts.reviews import CATEGORIES
from shared.topics import Topic, ensure_topics, partitions_of

ROOT = Path(__file__).resolve().parent.parent
BENCH_KAFKA_PORT = 9292
BOOTSTRAP = f"127.0.0.1:{BENCH_KAFKA_PORT}"
BARE_RATINGS_TOPIC = "bench.bare.ratings"
BARE_BATCH = ScoringSettings().consumer_batch_size  # the same batch size as the service
START = datetime(2026, 11, 1, tzinfo=UTC)
console = Console()


@dataclass
class Result:
    name: str
    events: int
    seconds: float
    peak_rss_mb: float | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


# -- the events ---------------------------------------------------------------------------------


def roster_records(agents: int, prefix: str = "B") -> list[tuple[str, Any]]:
    records = []
    for n in range(agents):
        agent_id = f"{prefix}-{n:06d}"
        records.append(
            (
                AGENT_UPSERTED.topic,
                encode(
                    AGENT_UPSERTED.ce_type,
                    {
                        "agent_id": agent_id,
                        "name": f"Agent {n}",
                        "email": f"agent{n}@bench.example",
                        "office_id": f"O-{n % 50}",
                        "member_since": (date(2023, 1, 1) + timedelta(days=n % 900)).isoformat(),
                        "active": True,
                    },
                    source="/bench",
                    key=agent_id,
                ),
            )
        )
        records.append(
            (
                PARTICIPATION_CHANGED.topic,
                encode(
                    PARTICIPATION_CHANGED.ce_type,
                    {
                        "agent_id": agent_id,
                        "mode": "opt_in_public",
                        "reason": "agent_choice",
                        "changed_at": "2026-01-01T00:00:00Z",
                    },
                    source="/bench",
                    key=agent_id,
                ),
            )
        )
    return records


def review_records(
    reviews: int, agents: int, seed: int, prefix: str = "B"
) -> list[tuple[str, Any]]:
    rng = random.Random(seed)
    records = []
    for n in range(reviews):
        agent_id = f"{prefix}-{rng.randrange(agents):06d}"
        submitted = START - timedelta(minutes=rng.randrange(60 * 24 * 365))
        scores = {c: rng.choice((2, 3, 4, 4, 5, 5, 5)) for c in CATEGORIES}
        data = {
            "review_id": f"R-{seed}-{n:07d}",
            "agent_id": agent_id,
            "transaction_id": f"T-{n}",
            "survey": "transaction",
            "removal_reason": None,
            "channel": "email",
            "submitted_at": submitted.isoformat().replace("+00:00", "Z"),
            "published_at": submitted.isoformat().replace("+00:00", "Z"),
            "scores": scores,
            "positive": min(scores.values()) >= 3,
            "comment": "Benchmark review.",
            "display_name": None,
            "agent_response": None,
        }
        records.append(
            (
                REVIEW_PUBLISHED.topic,
                encode(REVIEW_PUBLISHED.ce_type, data, source="/bench", key=agent_id),
            )
        )
    return records


async def produce(records: list[tuple[str, Any]], label: str) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for index, (topic, record) in enumerate(records, start=1):
            pending.append(
                await producer.send(
                    topic,
                    value=record.value,
                    key=record.key,
                    headers=list(record.headers.items()),
                )
            )
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending.clear()
                console.print(f"  {label}: {index}/{len(records)} produced", end="\r")
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    seconds = time.perf_counter() - started
    console.print(f"  {label}: {len(records)} produced in {seconds:.1f}s" + " " * 20)
    return seconds


SERVICE = "scoring service: reviews → ratings"
SAME_WRITES = "bare loop, the same writes (inbox, outbox)"
FLOOR = "bare loop, floor (reviews and a count)"


# -- the service --------------------------------------------------------------------------------


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float, label: str, *, every: float = 0.2
) -> None:
    """Ask `check` every `every` seconds until it holds; TimeoutError naming `label` after
    `timeout`."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{label}: not done in {timeout:.0f}s")
        await asyncio.sleep(every)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class ScoringUnderTest:
    """The scoring service as a process, in two runs: the roster first, then (restarted on a
    backlog of reviews produced while it was stopped, as the bare loops read it) the timed one.
    A service consuming while the reviews were being produced had a head start on the clock."""

    database_url: str
    args: argparse.Namespace
    schema: str = "bench_scoring"

    def __post_init__(self) -> None:
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
            "DATABASE_URL": self.database_url,
            "DATABASE_SCHEMA": self.schema,
            "KAFKA_GROUP_ID": "bench-scoring",
            "CLOCK_FIXED_AT": START.isoformat(),
            "LOG_LEVEL": "WARNING",
        }
        self.processes = ServiceProcesses(
            env=env, ports={"scoring": 8093}, log_dir=ROOT / "bench-results" / "logs"
        )

    async def load_roster(self) -> None:
        conn = await asyncpg.connect(self.database_url)
        await conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        await produce(roster_records(self.args.agents), "roster")
        self.processes.start("scoring")
        try:
            self.processes.wait_ready(120)
            await wait_until(
                # public: the participation events were consumed too, not only the roster's
                lambda: _count(
                    conn,
                    f"SELECT count(*) FROM {self.schema}.ratings WHERE visibility = 'public'",
                    self.args.agents,
                ),
                300,
                "roster",
            )
            # and their ratings relayed: none of that work left for the clock
            await self._all_relayed(conn, 300, "roster ratings relayed")
        finally:
            self.processes.stop_all()
            await conn.close()

    async def consume_backlog(self) -> Result:
        """Timed by the database, not by polling it: from the start of the transaction of the
        first batch of reviews to the relay's mark on the last rating it sent to Kafka."""
        conn = await asyncpg.connect(self.database_url)
        schema, expected = self.schema, self.args.reviews
        self.processes.start("scoring")
        try:
            self.processes.wait_ready(120)
            await wait_until(
                lambda: _count(conn, f"SELECT count(*) FROM {schema}.reviews", expected),
                600,
                "reviews",
            )
            await self._all_relayed(conn, 600, "ratings relayed")
            first, last = await conn.fetchrow(
                f"""SELECT (SELECT min(processed_at) FROM {schema}.inbox WHERE ce_type = $1),
                           (SELECT max(published_at) FROM {schema}.outbox)""",
                REVIEW_PUBLISHED.ce_type,
            )
            peak = rss_mb(self.processes.procs["scoring"].pid)
        finally:
            self.processes.stop_all()
            await conn.close()
        return Result(SERVICE, expected, (last - first).total_seconds(), peak)

    async def _all_relayed(self, conn: asyncpg.Connection, timeout: float, label: str) -> None:
        unpublished = f"SELECT count(*) FROM {self.schema}.outbox WHERE published_at IS NULL"
        await wait_until(lambda: _count(conn, unpublished, 0), timeout, label)


async def _count(conn: asyncpg.Connection, query: str, target: int) -> bool:
    value = await conn.fetchval(query)
    return bool(value == target) if target == 0 else bool(value >= target)


# -- the bare loop --------------------------------------------------------------------------------


BARE_SCHEMA = """
DROP SCHEMA IF EXISTS bench_bare CASCADE;
CREATE SCHEMA bench_bare;
CREATE TABLE bench_bare.inbox (ce_id text PRIMARY KEY, ce_type text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE bench_bare.reviews (review_id text PRIMARY KEY, agent_id text NOT NULL,
    submitted_at timestamptz NOT NULL, s1 int2, s2 int2, s3 int2, s4 int2, s5 int2);
CREATE INDEX ON bench_bare.reviews (agent_id);
CREATE TABLE bench_bare.ratings (agent_id text PRIMARY KEY, reviews int NOT NULL,
    positive int NOT NULL, averages jsonb, computed_at timestamptz, published jsonb);
CREATE TABLE bench_bare.outbox (id bigserial PRIMARY KEY, message_key text NOT NULL,
    ce_id text NOT NULL UNIQUE, payload bytea NOT NULL, published_at timestamptz);
"""

ReviewTuple = tuple[str, str, datetime, list[int], str]
"""(review_id, agent_id, submitted_at, scores, ce_id) as the bare loop parses a record."""


async def _insert_reviews(conn: asyncpg.Connection, rows: list[ReviewTuple]) -> None:
    await conn.execute(
        """INSERT INTO bench_bare.reviews
           SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[],
                                $4::int2[], $5::int2[], $6::int2[], $7::int2[], $8::int2[])
           ON CONFLICT DO NOTHING""",
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        *[[r[3][i] for r in rows] for i in range(len(CATEGORIES))],
    )


async def floor_writes(
    conn: asyncpg.Connection, producer: AIOKafkaProducer, rows: list[ReviewTuple]
) -> None:
    """The floor: the reviews and a per-agent count, one message per touched agent produced
    straight after the commit."""
    async with conn.transaction():
        await _insert_reviews(conn, rows)
        counts = await conn.fetch(
            """INSERT INTO bench_bare.ratings (agent_id, reviews, positive)
               SELECT r.agent_id, count(*), count(*) FILTER (WHERE LEAST(s1, s2, s3, s4, s5) >= 3)
                 FROM bench_bare.reviews r WHERE r.agent_id = ANY($1::text[])
                GROUP BY r.agent_id
               ON CONFLICT (agent_id) DO UPDATE
                  SET reviews = EXCLUDED.reviews, positive = EXCLUDED.positive
               RETURNING agent_id, reviews, positive""",
            sorted({r[1] for r in rows}),
        )
    for row in counts:
        await producer.send(
            BARE_RATINGS_TOPIC, key=row["agent_id"].encode(), value=json.dumps(dict(row)).encode()
        )


async def same_writes(
    conn: asyncpg.Connection, producer: AIOKafkaProducer, rows: list[ReviewTuple]
) -> None:
    """The service's writes without the service: the inbox (redeliveries skipped), the reviews,
    a full rating row per touched agent, an outbox row per rating, all in one transaction; then
    the ratings produced from memory and their outbox rows marked published."""
    async with conn.transaction():
        fresh = {
            row["ce_id"]
            for row in await conn.fetch(
                """INSERT INTO bench_bare.inbox (ce_id, ce_type)
                   SELECT unnest($1::text[]), 'review.published.v1'
                   ON CONFLICT DO NOTHING RETURNING ce_id""",
                [r[4] for r in rows],
            )
        }
        rows = [r for r in rows if r[4] in fresh]
        await _insert_reviews(conn, rows)
        ratings = await conn.fetch(
            """INSERT INTO bench_bare.ratings AS t
                      (agent_id, reviews, positive, averages, computed_at, published)
               SELECT agent_id, count(*), count(*) FILTER (WHERE LEAST(s1, s2, s3, s4, s5) >= 3),
                      jsonb_build_array(avg(s1), avg(s2), avg(s3), avg(s4), avg(s5)), now(),
                      NULL
                 FROM bench_bare.reviews WHERE agent_id = ANY($1::text[])
                GROUP BY agent_id
               ON CONFLICT (agent_id) DO UPDATE
                  SET reviews = EXCLUDED.reviews, positive = EXCLUDED.positive,
                      averages = EXCLUDED.averages, computed_at = EXCLUDED.computed_at,
                      published = to_jsonb(EXCLUDED.reviews)
               RETURNING agent_id, reviews, positive, averages""",
            sorted({r[1] for r in rows}),
        )
        messages = [
            (
                row["agent_id"],
                str(uuid.uuid4()),
                json.dumps(
                    {
                        "agent_id": row["agent_id"],
                        "reviews": row["reviews"],
                        "positive": row["positive"],
                        "averages": row["averages"],
                    }
                ).encode(),
            )
            for row in ratings
        ]
        ids = await conn.fetch(
            """INSERT INTO bench_bare.outbox (message_key, ce_id, payload)
               SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) RETURNING id""",
            [m[0] for m in messages],
            [m[1] for m in messages],
            [m[2] for m in messages],
        )
    for key, ce_id, payload in messages:
        await producer.send(
            BARE_RATINGS_TOPIC, key=key.encode(), value=payload, headers=[("ce_id", ce_id.encode())]
        )
    await producer.flush()
    await conn.execute(
        "UPDATE bench_bare.outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
        [row["id"] for row in ids],
    )


BareWrites = Callable[[asyncpg.Connection, AIOKafkaProducer, list[ReviewTuple]], Awaitable[None]]


async def bare_loop(database_url: str, expected: int, label: str, writes: BareWrites) -> Result:
    """aiokafka → asyncpg with no framework: parse each review (no validation) and do `writes`
    per batch of the service's size, committing offsets after each."""
    conn = await asyncpg.connect(database_url)
    await conn.execute(BARE_SCHEMA)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP,
        group_id=f"bench-bare-{time.time_ns()}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    partitions = [
        TopicPartition(Topic.REVIEWS_PUBLISHED, p)
        for p in await partitions_of(BOOTSTRAP, Topic.REVIEWS_PUBLISHED)
    ]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    done = 0
    started = time.perf_counter()
    try:
        while done < expected:
            batch = await consumer.getmany(timeout_ms=1000, max_records=BARE_BATCH)
            rows: list[ReviewTuple] = []
            for records in batch.values():
                for record in records:
                    data = json.loads(record.value)
                    rows.append(
                        (
                            data["review_id"],
                            data["agent_id"],
                            datetime.fromisoformat(data["submitted_at"]),
                            [data["scores"][c] for c in CATEGORIES],
                            dict(record.headers)["ce_id"].decode(),
                        )
                    )
            if not rows:
                continue
            await writes(conn, producer, rows)
            await consumer.commit()
            done += len(rows)
        await producer.flush()
    finally:
        await consumer.stop()
        await producer.stop()
        await conn.close()
    return Result(label, expected, time.perf_counter() - started)


# -- replay -------------------------------------------------------------------------------------


async def service_replay(database_url: str, expected: int) -> Result:
    settings = ScoringSettings(
        kafka_bootstrap_servers=BOOTSTRAP,
        database_url=database_url,
        database_schema="bench_replay",
        clock_fixed_at=START.isoformat(),
    )
    conn = await asyncpg.connect(database_url)
    await conn.execute("DROP SCHEMA IF EXISTS bench_replay CASCADE")
    await conn.close()
    lines: list[str] = []
    started = time.perf_counter()
    report = await replay(
        settings, policy_for(settings.scoring_policy_version), progress=lines.append
    )
    seconds = time.perf_counter() - started
    console.print(
        f"  replay: load {report.seconds['load']:.1f}s, re-rate {report.seconds['rerate']:.1f}s "
        f"({report.agents_rated} agents), publish {report.seconds['publish']:.1f}s"
    )
    return Result("scoring replay (rebuild + republish)", expected, seconds)


# -- the run ------------------------------------------------------------------------------------


def start_broker() -> None:
    """A fresh broker, with Kafka's own 3 s wait for a new group's members: with the test
    brokers' 0, a restarted service's first consumer took every partition and the second one
    then forced a rebalance inside the timed window (one member alone for 3.5 s of 13)."""
    shutil.rmtree(ROOT / ".local" / f"kafka-{BENCH_KAFKA_PORT}", ignore_errors=True)
    subprocess.run(
        [str(ROOT / "deploy/local/kafka.sh"), "start"],
        env={
            **os.environ,
            "KAFKA_PORT": str(BENCH_KAFKA_PORT),
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "3000",
        },
        check=True,
    )


def stop_broker() -> None:
    subprocess.run(
        [str(ROOT / "deploy/local/kafka.sh"), "stop"],
        env={**os.environ, "KAFKA_PORT": str(BENCH_KAFKA_PORT)},
        check=False,
    )


async def throughput_round(
    args: argparse.Namespace, database_url: str, number: int
) -> list[Result]:
    """The service and both bare loops over one backlog, on a broker of their own; odd rounds
    run the service first, even ones last, so that neither side always meets a cold broker."""
    await ensure_topics(BOOTSTRAP)
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    await admin.create_topics([NewTopic(BARE_RATINGS_TOPIC, 6, 1)])
    await admin.close()
    service = ScoringUnderTest(database_url, args)
    await service.load_roster()
    await produce(review_records(args.reviews, args.agents, seed=1), "reviews")
    runs: list[Callable[[], Awaitable[Result]]] = [
        lambda: bare_loop(database_url, args.reviews, SAME_WRITES, same_writes),
        lambda: bare_loop(database_url, args.reviews, FLOOR, floor_writes),
    ]
    runs.insert(0 if number % 2 else len(runs), service.consume_backlog)
    results = {result.name: result for result in [await run() for run in runs]}
    return [results[name] for name in (SERVICE, SAME_WRITES, FLOOR)]


async def replay_phase(args: argparse.Namespace, database_url: str) -> list[Result]:
    """On the last round's broker: top its topics up to the replay's size, then rebuild."""
    extra = args.replay_reviews - args.reviews
    await produce(roster_records(args.replay_agents)[2 * args.agents :], "replay roster")
    await produce(review_records(extra, args.replay_agents, seed=2), "replay reviews")
    return [
        await service_replay(database_url, args.replay_reviews),
        await bare_loop(
            database_url, args.replay_reviews, "bare loop over the same topic", floor_writes
        ),
    ]


def rates(results: list[Result], name: str) -> list[float]:
    return [r.rate for r in results if r.name == name]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, default=50_000)
    parser.add_argument("--agents", type=int, default=5_000)
    parser.add_argument("--replay-reviews", type=int, default=1_000_000)
    parser.add_argument("--replay-agents", type=int, default=100_000)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="throughput rounds, each on a fresh broker; the medians are compared (one run on "
        "this machine varies by 10-20%%)",
    )
    args = parser.parse_args(argv)
    database_url = os.environ.get(
        "DATABASE_URL", "postgresql://ratings:ratings@127.0.0.1:5432/ratings"
    )
    subprocess.run([str(ROOT / "deploy/local/postgres.sh"), "start"], check=True)
    rounds: list[Result] = []
    replayed: list[Result] = []
    for number in range(1, args.rounds + 1):
        console.rule(f"[bold]Throughput round {number}/{args.rounds}: review events → ratings")
        start_broker()
        try:
            rounds += asyncio.run(throughput_round(args, database_url, number))
            if number == args.rounds and args.replay_reviews:
                console.rule("[bold]Replay")
                replayed = asyncio.run(replay_phase(args, database_url))
        finally:
            stop_broker()
    table = Table(title=f"Scoring benchmark (this machine, {args.rounds} rounds)")
    for column in ("flow", "round", "events", "seconds", "events/s", "peak RSS MB"):
        table.add_column(column)
    per_round = len(rounds) // max(args.rounds, 1)
    for index, result in enumerate([*rounds, *replayed]):
        table.add_row(
            result.name,
            str(index // per_round + 1) if index < len(rounds) else "",
            f"{result.events:,}",
            f"{result.seconds:.1f}",
            f"{result.rate:,.0f}",
            f"{result.peak_rss_mb:.0f}" if result.peak_rss_mb else "",
        )
    console.print(table)
    service, same, floor = (
        statistics.median(rates(rounds, name)) for name in (SERVICE, SAME_WRITES, FLOOR)
    )
    ratios = [
        a / b for a, b in zip(rates(rounds, SERVICE), rates(rounds, SAME_WRITES), strict=True)
    ]
    summary: dict[str, Any] = {
        "service_median": service,
        "same_writes_median": same,
        "floor_median": floor,
        "vs_same_writes": service / same,
        "vs_floor": service / floor,
        "round_ratios_vs_same_writes": ratios,
    }
    console.print(
        f"medians: service {service:,.0f}/s, same-writes bare {same:,.0f}/s "
        f"({summary['vs_same_writes']:.2f}x), floor {floor:,.0f}/s ({summary['vs_floor']:.2f}x); "
        "per round vs same writes: " + ", ".join(f"{r:.2f}x" for r in ratios)
    )
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    path = out / f"scoring-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(
        json.dumps(
            {
                "results": [
                    {**asdict(r), "events_per_second": r.rate} for r in [*rounds, *replayed]
                ],
                "summary": summary,
            },
            indent=2,
            default=str,
        )
    )
    console.print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
