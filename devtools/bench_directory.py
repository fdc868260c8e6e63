"""Directory benchmark: the rebuild of the read model and profile pages per second under `wrk`.

    python -m devtools.bench_directory [--agents 10000 --reviews 200000 --seconds 20]

1. Rebuild: 10,000 roster entries and ratings and 200,000 public reviews are fed, in stream
   order, to the directory's own handlers in their units of work (`shared.messaging`'s
   `in_unit_of_work`/`batch_in_unit_of_work`: inbox, batch handlers, the read model's SQL) in
   the batches a consumer takes from a backlog, into a fresh schema.
2. Rebuild from offset 0 through Kafka: the same events are produced to a broker of the
   benchmark's own (port 9292, fresh, as `make bench` uses: a quarter of a million events never
   reach the development broker the tests share), and the directory service starts on an empty
   schema and reads them from offset 0, timed from its start until its read model holds what
   the first rebuild stored. `--no-kafka` skips it.
3. Pages: the directory runs as its own process (`python -m services.directory`) on that
   schema, and `wrk` (Debian package `wrk`) requests profiles of random public agents, then
   the first search page of random offices; requests/s and the p99 latency come from wrk's
   own report.

Prints a table and writes JSON to bench-results/. Numbers are measured, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from rich.console import Console
from rich.table import Table

from devtools.bench_scoring import Result
from services.directory import handlers
from services.directory.app import MIGRATIONS
from services.directory.settings import DirectorySettings
from shared.cloudevents import Envelope
from shared.contracts import (
    AGENT_UPSERTED,
    PUBLIC_REVIEW_PUBLISHED,
    RATING_UPDATED,
    EventType,
)
from shared.contracts.mls import AgentUpserted
from shared.contracts.ratings import RatingUpdated, Status, Visibility
from shared.contracts.reviews import CATEGORIES, Channel, ReviewPublished, Scores, SurveyKind
from shared.messaging import Batch, Delivery, batch_in_unit_of_work, in_unit_of_work
from shared.runtime import ServiceRuntime

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
FIRST_NAMES = ("Dana", "Marcus", "Ana", "Tom", "Priya", "Lee", "Sam", "Kim", "Jo", "Ravi")
LAST_NAMES = ("Whitfield", "Ng", "Lee", "Raman", "Okafor", "Chen", "Olsen", "Reyes", "Khan")
console = Console()


def delivery(event_type: EventType, event: Any, offset: int) -> Delivery:
    value = event.model_dump_json().encode()
    key = str(getattr(event, event_type.key_field))
    envelope = Envelope(uuid.uuid4().hex, "/bench", event_type.ce_type, NOW, key, value)
    return Delivery(event_type, event, envelope, event_type.topic, hash(key) % 6, offset)


def world(agents: int, reviews: int, seed: int) -> tuple[list[Delivery], ...]:
    """Roster, ratings (nine in ten public) and public reviews of the public agents."""
    rng = random.Random(seed)
    roster, ratings, public = [], [], []
    for n in range(agents):
        agent_id = f"A-bench-{n:05d}"
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)} {n}"
        roster.append(
            delivery(
                AGENT_UPSERTED,
                AgentUpserted(
                    agent_id=agent_id,
                    name=name,
                    email=f"{agent_id.lower()}@realty.example",
                    office_id=f"O-{n % 200:03d}",
                    member_since=date(2024, 1, 1),
                    active=True,
                ),
                n,
            )
        )
        shown = rng.random() < 0.9
        stars = rng.randint(0, 5)
        rating = RatingUpdated(
            agent_id=agent_id,
            as_of=NOW,
            visibility=Visibility.PUBLIC if shown else Visibility.HIDDEN,
            policy_version="bench",
            **(
                {
                    "stars": stars,
                    "status": rng.choice(list(Status)),
                    "status_since": NOW - timedelta(days=rng.randint(1, 300)),
                    "positive_reviews_3m": stars * 2,
                    "positive_reviews_6m": stars * 3,
                    "reviews_total": stars * 4,
                    "category_averages": {c: round(rng.uniform(3, 5), 2) for c in CATEGORIES},
                }
                if shown
                else {}
            ),
        )
        ratings.append(delivery(RATING_UPDATED, rating, n))
        if shown:
            public.append(agent_id)
    reviewed = []
    for n in range(reviews):
        submitted = NOW - timedelta(minutes=rng.randint(1, 500_000))
        scores = {c: rng.randint(2, 5) for c in CATEGORIES}
        event = ReviewPublished(
            review_id=f"R-bench-{n:07d}",
            agent_id=rng.choice(public),
            transaction_id=f"T-bench-{n:07d}",
            survey=SurveyKind.TRANSACTION,
            channel=Channel.EMAIL,
            submitted_at=submitted,
            published_at=submitted + timedelta(hours=2),
            scores=Scores.model_validate(scores),
            positive=min(scores.values()) >= 3,
            comment=" ".join(rng.choice(LAST_NAMES) for _ in range(rng.randint(5, 60))),
            display_name=rng.choice([None, "Pat D.", "Sam"]),
            agent_response="Thank you!" if rng.random() < 0.2 else None,
        )
        reviewed.append(delivery(PUBLIC_REVIEW_PUBLISHED, event, n))
    return roster, ratings, reviewed


async def rebuild_from_kafka(
    settings: DirectorySettings, streams: tuple[list[Delivery], ...], expected: dict[str, int]
) -> Result:
    """Produce every event to the benchmark's broker, then time the directory service reading
    them from offset 0 into an empty schema until its read model holds `expected` rows."""
    from aiokafka import AIOKafkaProducer

    from devtools.bench_scoring import BENCH_KAFKA_PORT, start_broker, stop_broker
    from services.directory.app import create_app
    from shared.cloudevents import encode
    from shared.topics import ensure_topics

    bootstrap = f"127.0.0.1:{BENCH_KAFKA_PORT}"
    await asyncio.to_thread(start_broker)
    try:
        await ensure_topics(bootstrap, report=lambda _line: None)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
        await producer.start()
        try:
            events = 0
            for stream in streams:
                for one in stream:
                    record = encode(
                        one.event_type.ce_type, one.event, source="/bench", key=one.envelope.key
                    )
                    await producer.send(
                        one.topic,
                        record.value,
                        key=record.key,
                        headers=list(record.headers.items()),
                    )
                    events += 1
            await producer.flush()
        finally:
            await producer.stop()
        fresh = settings.model_copy(
            update={
                "kafka_bootstrap_servers": bootstrap,
                "database_schema": f"{settings.db_schema}_kafka",
                "kafka_group_id": f"bench-directory-{uuid.uuid4().hex[:6]}",
            }
        )
        app = create_app(fresh)
        conn = await asyncpg.connect(fresh.database_url)
        started = time.perf_counter()
        try:
            async with app.router.lifespan_context(app):
                while True:
                    await asyncio.sleep(0.5)
                    counts = await conn.fetchrow(
                        f"SELECT (SELECT count(*) FROM {fresh.db_schema}.reviews) AS reviews,"
                        f" (SELECT count(*) FROM {fresh.db_schema}.agents) AS agents"
                    )
                    if counts is not None and dict(counts) == expected:
                        break
                seconds = time.perf_counter() - started
        finally:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{fresh.db_schema}" CASCADE')
            await conn.close()
    finally:
        await asyncio.to_thread(stop_broker)
    return Result(
        "rebuild from offset 0 through Kafka (service start to read model)", events, seconds
    )


async def rebuild(settings: DirectorySettings, streams: tuple[list[Delivery], ...]) -> Result:
    """Every event through the directory's handlers in their units of work (inbox included), in
    batches of `consumer_batch_size`: what the consumers do after decoding."""
    runtime = ServiceRuntime(
        settings, dispatcher=handlers.dispatcher, migrations=MIGRATIONS, publishes=False
    )
    await runtime.start(consume=False)
    try:
        started = time.perf_counter()
        events = 0
        for stream in streams:
            topic = stream[0].topic
            batch = settings.consumer_batch_size
            routes = handlers.dispatcher
            for at in range(0, len(stream), batch):
                part = list(stream[at : at + batch])
                if topic in routes.batch_handlers:
                    consume = batch_in_unit_of_work(
                        routes.batch_handlers[topic], runtime.unit_of_work
                    )
                    await consume(Batch(part, [None] * len(part), []))
                else:
                    for one in part:
                        handler = routes.handlers[one.envelope.type]
                        await in_unit_of_work(handler, runtime.unit_of_work)(one)
                events += len(part)
        seconds = time.perf_counter() - started
    finally:
        await runtime.stop()
    return Result("rebuild through the consumers (no Kafka fetch)", events, seconds)


def lua_script(paths: list[str], path: Path) -> None:
    """A wrk script requesting one of `paths` at random each time."""
    listed = ",".join(f'"{p}"' for p in paths)
    path.write_text(
        f"local paths = {{{listed}}}\n"
        "math.randomseed(2026)\n"
        "request = function()\n"
        '  return wrk.format("GET", paths[math.random(#paths)])\n'
        "end\n"
    )


def wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, float]:
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    console.print(output)
    figures = {"requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])}  # type: ignore[index]
    for percentile in ("50", "99"):
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)", output, re.MULTILINE)
        if match:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match[2]]
            figures[f"p{percentile}_ms"] = float(match[1]) * scale
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    figures["non_2xx"] = float(errors[1]) if errors else 0.0
    return figures


async def serve_and_measure(
    settings: DirectorySettings, pages: dict[str, list[str]], seconds: int, connections: int
) -> dict[str, dict[str, float]]:
    """wrk on each kind of page in turn, against one service process."""
    port = 18006
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "DATABASE_SCHEMA": settings.db_schema,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "KAFKA_GROUP_ID": f"bench-directory-{uuid.uuid4().hex[:8]}",
        "REBUILD_WHEN_EMPTY": "false",
        "HTTP_PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    log = (ROOT / ".local" / "bench-directory.log").open("ab")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.directory", cwd=ROOT, env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (await client.get(f"{url}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
            for paths in pages.values():
                sample = await client.get(f"{url}{paths[0]}")
                assert sample.status_code == 200, sample.status_code
        script = ROOT / ".local" / "bench-directory.lua"
        figures = {}
        for kind, paths in pages.items():
            lua_script(paths, script)
            figures[kind] = await asyncio.to_thread(wrk, url, script, seconds, connections)
        return figures
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


async def main_async(args: argparse.Namespace) -> int:
    if shutil.which("wrk") is None:
        console.print("[red]wrk is missing: apt-get install -y wrk[/]")
        return 2
    (ROOT / ".local").mkdir(exist_ok=True)
    settings = DirectorySettings(
        database_schema=f"bench_directory_{uuid.uuid4().hex[:8]}",
        database_url=os.environ.get("DATABASE_URL", DirectorySettings().database_url),
    )
    console.rule(f"[bold]Directory: {args.agents:,} agents, {args.reviews:,} reviews")
    streams = world(args.agents, args.reviews, args.seed)
    public = [d.event.agent_id for d in streams[1] if d.event.visibility is Visibility.PUBLIC]
    built = await rebuild(settings, streams)
    offices = sorted({d.event.office_id for d in streams[0]})
    conn = await asyncpg.connect(settings.database_url)
    try:
        stored = await conn.fetchrow(
            f"SELECT (SELECT count(*) FROM {settings.db_schema}.reviews) AS reviews,"
            f" (SELECT count(*) FROM {settings.db_schema}.agents) AS agents"
        )
    finally:
        await conn.close()
    assert stored is not None
    from_kafka = await rebuild_from_kafka(settings, streams, dict(stored)) if args.kafka else None
    pages = await serve_and_measure(
        settings,
        {
            "profile": [f"/agents/{agent_id}" for agent_id in public],
            "search by office": [f"/?office={office}" for office in offices],
        },
        args.seconds,
        args.connections,
    )
    conn = await asyncpg.connect(settings.database_url)
    try:
        counts = await conn.fetchrow(
            f"SELECT (SELECT count(*) FROM {settings.db_schema}.reviews) AS reviews,"
            f" (SELECT count(*) FROM {settings.db_schema}.agents) AS agents"
        )
        if not args.keep:
            await conn.execute(f'DROP SCHEMA "{settings.db_schema}" CASCADE')
    finally:
        await conn.close()
    table = Table("measure", "value")
    table.add_row("events rebuilt", f"{built.events:,}")
    table.add_row("rebuild time", f"{built.seconds:.1f} s ({built.events / built.seconds:,.0f}/s)")
    table.add_row("rows", f"{counts['agents']:,} agents, {counts['reviews']:,} reviews")
    if from_kafka is not None:
        table.add_row(
            "rebuild from offset 0 through Kafka",
            f"{from_kafka.seconds:.1f} s ({from_kafka.events / from_kafka.seconds:,.0f}/s)",
        )
    for kind, figures in pages.items():
        table.add_row(
            f"{kind} pages",
            f"{figures['requests_per_second']:,.0f} requests/s, p50 "
            f"{figures.get('p50_ms', 0):.1f} ms, p99 {figures.get('p99_ms', 0):.1f} ms, "
            f"{figures['non_2xx']:.0f} non-2xx",
        )
    console.print(table)
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / f"directory-{stamp}.json").write_text(
        json.dumps(
            {
                "agents": args.agents,
                "reviews": args.reviews,
                "rebuild_events": built.events,
                "rebuild_seconds": built.seconds,
                "rebuild_from_kafka_seconds": from_kafka.seconds if from_kafka else None,
                "wrk_seconds": args.seconds,
                "wrk_connections": args.connections,
                "pages": pages,
            },
            indent=2,
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--reviews", type=int, default=200_000)
    parser.add_argument("--seconds", type=int, default=20, help="wrk duration")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark's schema")
    parser.add_argument(
        "--no-kafka",
        dest="kafka",
        action="store_false",
        help="skip the rebuild through a broker of the benchmark's own",
    )
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
