"""Invitations and reviews throughput and latency, review-to-rating latency at a steady rate, and
peak RSS of each service, each beside a bare loop doing the equivalent writes in the same run.

    python -m devtools.bench_flows [--transactions 3000] [--submissions 6000]
                                   [--rate 500 --seconds 20]

Uses the benchmark's own Kafka broker (port 9292, see devtools/bench_scoring.py), the local
PostgreSQL (fresh schemas, dropped afterwards) and an in-process SMTP sink that stamps the time it
accepts each message. Beside the invitations flow, `devtools.smtp_ceiling` sends the service's own
mail through the service's own sender with nothing else to do: what the sink takes on this
machine, the ceiling of that flow's email rate. Prints a table and writes JSON to bench-results/.
Numbers are measured, never asserted; `make bench` runs this after the scoring benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from rich.table import Table

from devtools.bare_reviews import BARE_REVIEWS_TOPIC
from devtools.bare_reviews import serve as serve_bare_reviews
from devtools.bench_scoring import (
    BOOTSTRAP,
    ROOT,
    START,
    console,
    produce,
    review_records,
    roster_records,
    rss_mb,
    start_broker,
    stop_broker,
    wait_until,
)
from devtools.processes import ServiceProcesses
from devtools.smtp_sink import MailSink, start_sink
from shared.cloudevents import KafkaRecord, encode
from shared.contracts import INVITATION_ISSUED, TRANSACTION_CLOSED
from shared.contracts.reviews import CATEGORIES
from shared.crypto import SecretHasher, new_pin
from shared.settings import ServiceSettings
from shared.topics import Topic, ensure_topics, partitions_of

PEPPER = ServiceSettings().token_pepper
GOOD = dict.fromkeys(CATEGORIES, 5)
REVIEW_AGENTS = 200
REVIEWS_FLOW = "reviews service: POST → review.published"
HTTP_PORTS = {"invitations": 8101, "reviews": 8102, "scoring": 8103}


@dataclass
class Flow:
    """One measured flow: events through it, wall seconds, latencies (seconds), peak RSS."""

    name: str
    events: int
    seconds: float
    latencies: list[float] = field(default_factory=list, repr=False)
    peak_rss_mb: float | None = None
    note: str = ""
    baseline_for: str | None = None
    """The name of the service flow this bare loop is the baseline of."""

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("latencies")
        p50, p99 = self.percentile(50), self.percentile(99)
        return {
            **data,
            "events_per_second": self.rate,
            "p50_ms": p50 * 1000 if p50 is not None else None,
            "p99_ms": p99 * 1000 if p99 is not None else None,
        }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def poll(check: Callable[[], Awaitable[bool]], timeout: float, label: str) -> None:
    """`wait_until`, asking often: these waits end timed phases."""
    await wait_until(check, timeout, label, every=0.05)


@contextmanager
def service(
    name: str, database_url: str, schema: str, smtp_port: int, **extra: str
) -> Iterator[ServiceProcesses]:
    """One service as its own process (as in production), on the benchmark's broker."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "DATABASE_URL": database_url,
        "DATABASE_SCHEMA": schema,
        "KAFKA_GROUP_ID": f"bench-{schema}",
        "SMTP_PORT": str(smtp_port),
        "CLOCK_FIXED_AT": START.isoformat(),
        "LOG_LEVEL": "WARNING",
        **extra,
    }
    processes = ServiceProcesses(
        env=env, ports={name: HTTP_PORTS[name]}, log_dir=ROOT / "bench-results" / "logs"
    )
    processes.start(name)
    try:
        processes.wait_ready(120)
        yield processes
    finally:
        processes.stop_all()


async def send_at_rate(
    producer: AIOKafkaProducer,
    records: Sequence[tuple[str, KafkaRecord]],
    rate: float | None,
    on_sent: Callable[[int], None],
) -> None:
    """Produce `records`, at `rate` per second when given (else as fast as possible)."""
    started = time.monotonic()
    for index, (topic, record) in enumerate(records):
        if rate is not None:
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        on_sent(index)
        await producer.send(
            topic, value=record.value, key=record.key, headers=list(record.headers.items())
        )
    await producer.flush()


# -- invitations --------------------------------------------------------------------------------


def transaction_records(count: int, agents: int, tag: str) -> list[tuple[str, KafkaRecord]]:
    """One closed sale per record, one client with an email each (so one invitation mail each)."""
    records = []
    for n in range(count):
        transaction_id = f"T-{tag}-{n:06d}"
        data = {
            "transaction_id": transaction_id,
            "mls_number": f"MLS{n}",
            "kind": "sale",
            "closed_at": (START - timedelta(days=1)).isoformat().replace("+00:00", "Z"),
            "property": {"street": f"{n} Elm Rd", "city": "Houston", "postcode": "77002"},
            "representations": [
                {
                    "agent_id": f"B-{n % agents:06d}",
                    "side": "buyer",
                    "clients": [{"name": "Pat Doe", "email": client_email(tag, n), "phone": None}],
                }
            ],
        }
        records.append(
            (
                TRANSACTION_CLOSED.topic,
                encode(TRANSACTION_CLOSED.ce_type, data, source="/bench", key=transaction_id),
            )
        )
    return records


def client_email(tag: str, n: int) -> str:
    return f"client-{tag}-{n}@bench.example"


async def invitations_flow(
    database_url: str, sink: MailSink, producer: AIOKafkaProducer, args: argparse.Namespace
) -> list[Flow]:
    """Throughput on a backlog of closed transactions, then latency at a steady rate; both from
    publish to the invitation email accepted by the SMTP sink."""
    agents = 200
    await produce(roster_records(agents), "roster")
    flows = []
    with service("invitations", database_url, "bench_invitations", sink.port) as processes:
        conn = await asyncpg.connect(database_url)
        try:
            await poll(
                lambda: _at_least(conn, "SELECT count(*) FROM bench_invitations.agents", agents),
                120,
                "roster in invitations",
            )
        finally:
            await conn.close()
        for label, count, rate in (
            ("invitations service: transactions → emails", args.transactions, None),
            ("invitations service at a steady rate", args.seconds * 50, 50.0),
        ):
            tag = "rate" if rate else "burst"
            records = transaction_records(count, agents, tag)
            started = time.monotonic()
            stored = asyncio.create_task(_invitations_stored(database_url, tag, count))
            sent = await _mail_flow(
                sink, producer, records, rate, [client_email(tag, n) for n in range(count)]
            )
            if rate is None:  # the consumer alone, apart from the mail relay behind it
                flows.append(
                    Flow(
                        "invitations service: transactions → invitations stored",
                        count,
                        await stored - started,
                        note="backlog",
                    )
                )
            stored.cancel()
            flows.append(
                Flow(label, count, sent[0], sent[1], note=f"{rate:.0f}/s" if rate else "backlog")
            )
        flows[0].peak_rss_mb = rss_mb(processes.procs["invitations"].pid)
    return flows


async def _invitations_stored(database_url: str, tag: str, count: int) -> float:
    """When the service has stored an invitation for each of the `tag` closings."""
    conn = await asyncpg.connect(database_url)
    query = (
        "SELECT count(*) FROM bench_invitations.invitations "
        f"WHERE transaction_id LIKE 'T-{tag}-%'"  # tag: "burst" or "rate"
    )
    try:
        await poll(lambda: _at_least(conn, query, count), 600, "invitations stored")
        return time.monotonic()
    finally:
        await conn.close()


async def _mail_flow(
    sink: MailSink,
    producer: AIOKafkaProducer,
    records: Sequence[tuple[str, KafkaRecord]],
    rate: float | None,
    recipients: Sequence[str],
) -> tuple[float, list[float]]:
    """(seconds from the first publish to the last mail accepted, per-mail latencies)."""
    already = len(sink.accepted)
    published_at: dict[str, float] = {}

    def stamp(index: int) -> None:
        published_at[recipients[index]] = time.monotonic()

    started = time.monotonic()
    await send_at_rate(producer, records, rate, stamp)
    wanted = set(recipients)

    async def all_accepted() -> bool:
        return sum(1 for _, to in sink.accepted[already:] if to[0] in wanted) >= len(wanted)

    await poll(all_accepted, 600, "invitation emails")
    accepted = {to[0]: at for at, to in sink.accepted[already:] if to[0] in wanted}
    latencies = [accepted[r] - published_at[r] for r in recipients]
    return max(accepted.values()) - started, latencies


async def _timed_process(module: str, sink: MailSink, *arguments: str) -> float:
    """Run `python -m module` and return the seconds from the start it prints to the sink's
    acceptance of the last mail it sent."""
    already = len(sink.accepted)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        "--smtp-port",
        str(sink.port),
        *arguments,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{module} exited with {process.returncode}")
    started = json.loads(output.decode().strip().splitlines()[-1])["started"]
    return float(max(at for at, _ in sink.accepted[already:]) - started)


async def bare_invitations(database_url: str, sink: MailSink, count: int) -> Flow:
    """`devtools.bare_invitations` as a process of its own, timed from its start of consuming to
    the sink's acceptance of its last mail."""
    seconds = await _timed_process(
        "devtools.bare_invitations",
        sink,
        *("--database-url", database_url, "--bootstrap", BOOTSTRAP, "--count", str(count)),
    )
    return Flow(
        "bare aiokafka → asyncpg → SMTP loop (own process)",
        count,
        seconds,
        note="backlog",
        baseline_for="invitations service: transactions → emails",
    )


async def smtp_ceiling(sink: MailSink, count: int) -> Flow:
    """The service's mail through its own SMTP sender alone (`devtools.smtp_ceiling`): what the
    sink takes on this machine with no Kafka or database work in the way."""
    seconds = await _timed_process("devtools.smtp_ceiling", sink, "--count", str(count))
    return Flow(
        "SMTP alone: the service's sender and mail → sink (own process)",
        count,
        seconds,
        note=f"{ServiceSettings().smtp_connections} connections",
    )


# -- reviews ------------------------------------------------------------------------------------


async def reviews_flow(
    database_url: str, sink: MailSink, producer: AIOKafkaProducer, args: argparse.Namespace
) -> Flow:
    """Submissions through POST /api/v1/reviews (16 clients at once) → `review.published.v1`;
    latency from the POST to the event on the topic."""
    count = args.submissions
    hasher = SecretHasher(PEPPER)
    pins = [new_pin() for _ in range(count)]
    run = time.time_ns()
    # no roster names these agents, so no review is also a notice mail to its agent: the bare
    # handler sends none, and the mail relay's rate is the invitations flow's to measure (the
    # invitations flow's roster named the agents before, so a full run mailed and a run of
    # this flow alone did not)
    invitations = [
        (
            INVITATION_ISSUED.topic,
            encode(
                INVITATION_ISSUED.ce_type,
                {
                    "invitation_id": f"inv-bench-{run}-{n}",
                    "agent_id": f"RV-{n % REVIEW_AGENTS:06d}",
                    "transaction_id": f"T-rv-{n}",
                    "survey": "transaction",
                    "channel": "email",
                    "pin_hash": hasher.pin_hash(pins[n]),
                    "token_hash": None,
                    "issued_at": START.isoformat().replace("+00:00", "Z"),
                    "expires_at": (START + timedelta(days=30)).isoformat().replace("+00:00", "Z"),
                },
                source="/bench",
                key=f"inv-bench-{run}-{n}",
            ),
        )
        for n in range(count)
    ]
    await produce(invitations, "invitations for reviews")
    # every review is submitted at the fixed instant, several per agent: without a higher burst
    # limit the trust signals (docs/design.md 3.3) would hold them for a moderator
    burst = {"REVIEW_BURST_MAX": str(count)}
    with service("reviews", database_url, "bench_reviews", sink.port, **burst) as processes:
        conn = await asyncpg.connect(database_url)
        try:
            await poll(
                lambda: _at_least(
                    conn,
                    "SELECT count(*) FROM bench_reviews.invitations "
                    f"WHERE invitation_id LIKE 'inv-bench-{run}-%'",
                    count,
                ),
                300,
                "invitations in reviews",
            )
        finally:
            await conn.close()
        reader = await _consumer_at_end(Topic.REVIEWS_PUBLISHED)
        posted_at: dict[str, float] = {}
        arrived: dict[str, float] = {}

        async def read() -> None:
            async for record in reader:
                arrived[json.loads(record.value)["review_id"]] = time.monotonic()

        reading = asyncio.create_task(read())
        queue: asyncio.Queue[str] = asyncio.Queue()
        for pin in pins:
            queue.put_nowait(pin)
        started = time.monotonic()

        async def client(http: httpx.AsyncClient) -> None:
            while not queue.empty():
                pin = queue.get_nowait()
                at = time.monotonic()
                response = await http.post(
                    "/api/v1/reviews",
                    json={"scores": GOOD, "comment": "Benchmark review.", "pin": pin},
                )
                if response.status_code != 201:
                    raise RuntimeError(
                        f"POST /api/v1/reviews: {response.status_code} {response.text}"
                    )
                posted_at[response.json()["review_id"]] = at

        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(
            base_url=processes.url("reviews"), limits=limits, timeout=30
        ) as http:
            await asyncio.gather(*(client(http) for _ in range(16)))
        await poll(lambda: _true(len(arrived.keys() & posted_at.keys()) >= count), 300, "published")
        reading.cancel()
        await reader.stop()
        seconds = max(arrived[r] for r in posted_at) - started
        peak = rss_mb(processes.procs["reviews"].pid)
    latencies = [arrived[r] - posted_at[r] for r in posted_at]
    return Flow(REVIEWS_FLOW, count, seconds, latencies, peak, "16 clients")


async def bare_reviews(database_url: str, count: int, *, own_process: bool) -> Flow:
    """`devtools.bare_reviews` driven like the service by the same 16 clients, as a process of
    its own or in this one; timed to the last response (sent once its event is on the topic)."""
    conn = await asyncpg.connect(database_url)
    await conn.execute(
        """DROP SCHEMA IF EXISTS bench_bare_rev CASCADE; CREATE SCHEMA bench_bare_rev;
           CREATE TABLE bench_bare_rev.invitations (pin_hash text PRIMARY KEY,
               invitation_id text NOT NULL, agent_id text NOT NULL, used_at timestamptz);
           CREATE TABLE bench_bare_rev.reviews (review_id text PRIMARY KEY,
               invitation_id text NOT NULL UNIQUE, agent_id text NOT NULL,
               scores jsonb NOT NULL, comment text, submitted_at timestamptz NOT NULL)"""
    )
    hasher = SecretHasher(PEPPER)
    pins = [new_pin() for _ in range(count)]
    await conn.executemany(
        "INSERT INTO bench_bare_rev.invitations VALUES ($1, $2, $3, NULL)",
        [
            (hasher.pin_hash(pin), f"inv-{n}", f"RV-{n % REVIEW_AGENTS:06d}")
            for n, pin in enumerate(pins)
        ],
    )
    port = free_port()
    stop = asyncio.Event()
    stopped: asyncio.Task[Any]
    if own_process:
        command = [sys.executable, "-m", "devtools.bare_reviews", "--port", str(port)]
        command += ["--database-url", database_url, "--bootstrap", BOOTSTRAP]
        process = await asyncio.create_subprocess_exec(*command, cwd=ROOT)
        stopped = asyncio.create_task(process.wait())
    else:
        stopped = asyncio.create_task(serve_bare_reviews(port, database_url, BOOTSTRAP, stop))
    try:
        await poll(lambda: _listening(port), 60, "bare reviews handler")
        queue: asyncio.Queue[str] = asyncio.Queue()
        for pin in pins:
            queue.put_nowait(pin)
        latencies: list[float] = []

        async def client(http: httpx.AsyncClient) -> None:
            while not queue.empty():
                pin = queue.get_nowait()
                at = time.monotonic()
                response = await http.post(
                    "/", json={"scores": GOOD, "comment": "Benchmark review.", "pin": pin}
                )
                response.raise_for_status()
                latencies.append(time.monotonic() - at)

        started = time.monotonic()
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            limits=httpx.Limits(max_connections=16),
            timeout=30,
        ) as http:
            await asyncio.gather(*(client(http) for _ in range(16)))
        seconds = time.monotonic() - started
        peak = rss_mb(process.pid) if own_process else None
    finally:
        if own_process:
            process.terminate()
        stop.set()
        await asyncio.wait_for(stopped, 30)
        await conn.execute("DROP SCHEMA bench_bare_rev CASCADE")
        await conn.close()
    where = "own process" if own_process else "in the clients' event loop"
    return Flow(
        f"bare asyncio HTTP → asyncpg → aiokafka ({where})",
        count,
        seconds,
        latencies,
        peak,
        "16 clients",
        baseline_for=REVIEWS_FLOW,
    )


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


# -- scoring latency ----------------------------------------------------------------------------


async def scoring_latency(
    database_url: str, sink: MailSink, producer: AIOKafkaProducer, args: argparse.Namespace
) -> Flow:
    """Reviews at a steady rate → the matching `rating.updated.v1`; one review in flight per
    agent, so each rating answers exactly one review. Agents of their own (L-…): the
    invitations phase announced its agents (B-…) as hidden when it first saw them, and a review
    of a hidden agent rightly changes nothing on the topic (that was the "169 unmatched")."""
    agents = 5000
    await produce(roster_records(agents, prefix="L"), "roster")
    with service("scoring", database_url, "bench_scoring_latency", sink.port) as processes:
        conn = await asyncpg.connect(database_url)
        try:
            await poll(
                lambda: _at_least(
                    conn, "SELECT count(*) FROM bench_scoring_latency.ratings", agents
                ),
                300,
                "roster in scoring",
            )
            await poll(
                lambda: _at_least(
                    conn,
                    "SELECT 1 - count(*) FROM bench_scoring_latency.outbox "
                    "WHERE published_at IS NULL",
                    1,
                ),
                300,
                "roster ratings relayed",
            )
        finally:
            await conn.close()
        reader = await _consumer_at_end(Topic.RATINGS)
        in_flight: dict[str, float] = {}
        latencies: list[float] = []

        async def read() -> None:
            async for record in reader:
                sent = in_flight.pop(record.key.decode(), None)
                if sent is not None:
                    latencies.append(time.monotonic() - sent)

        reading = asyncio.create_task(read())
        records = [
            (topic, record)
            for topic, record in review_records(
                args.rate * args.seconds * 2, agents, seed=9, prefix="L"
            )
        ]
        chosen: list[tuple[str, KafkaRecord]] = []
        for topic, record in records:
            if len(chosen) == args.rate * args.seconds:
                break
            chosen.append((topic, record))

        def stamp(index: int) -> None:
            key = chosen[index][1].key
            assert key is not None
            in_flight.setdefault(key.decode(), time.monotonic())

        started = time.monotonic()
        await send_at_rate(producer, chosen, float(args.rate), stamp)
        sending = time.monotonic() - started
        with contextlib.suppress(TimeoutError):  # unmatched reviews are counted, not waited for
            await poll(lambda: _true(not in_flight), 60, "ratings for every review")
        reading.cancel()
        await reader.stop()
        peak = rss_mb(processes.procs["scoring"].pid)
    return Flow(
        "scoring service: review → rating",
        len(chosen),
        sending,
        latencies,
        peak,
        f"{args.rate}/s steady" + (f", {len(in_flight)} unmatched" if in_flight else ""),
    )


# -- plumbing -----------------------------------------------------------------------------------


async def _at_least(conn: asyncpg.Connection, query: str, target: int) -> bool:
    try:
        return bool(await conn.fetchval(query) >= target)
    except asyncpg.UndefinedTableError:
        return False


async def _true(value: bool) -> bool:
    return value


async def _consumer_at_end(topic: str) -> AIOKafkaConsumer:
    """A reader of `topic` from now on that sees what a downstream consumer sees: committed
    relay transactions only (read_uncommitted would count a rating before its commit, and one
    from a batch later aborted)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in await partitions_of(BOOTSTRAP, topic)]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for partition in partitions:  # resolve the positions now, before anything is produced
        await consumer.position(partition)
    return consumer


async def run(args: argparse.Namespace) -> list[Flow]:
    database_url = os.environ.get(
        "DATABASE_URL", "postgresql://ratings:ratings@127.0.0.1:5432/ratings"
    )
    await ensure_topics(BOOTSTRAP)
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(BARE_REVIEWS_TOPIC, 6, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()
    controller, sink = start_sink(port=free_port())
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=1)
    await producer.start()
    conn = await asyncpg.connect(database_url)
    schemas = ("bench_invitations", "bench_reviews", "bench_scoring_latency")
    for schema in schemas:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    flows: list[Flow] = []
    try:
        if "invitations" in args.only:
            console.rule("[bold]Invitations: closed transactions → invitation emails")
            flows += await invitations_flow(database_url, sink, producer, args)
            flows.append(
                await bare_invitations(database_url, sink, args.transactions + args.seconds * 50)
            )
            flows.append(await smtp_ceiling(sink, args.transactions))
        if "reviews" in args.only:
            console.rule("[bold]Reviews: POST /api/v1/reviews → review.published.v1")
            flows.append(await reviews_flow(database_url, sink, producer, args))
            flows.append(await bare_reviews(database_url, args.submissions, own_process=True))
            flows.append(await bare_reviews(database_url, args.submissions, own_process=False))
        if "scoring" in args.only:
            console.rule(f"[bold]Scoring: review → rating at {args.rate}/s")
            flows.append(await scoring_latency(database_url, sink, producer, args))
    finally:
        await producer.stop()
        controller.stop()
        for schema in schemas:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()
    return flows


def report(flows: list[Flow]) -> None:
    table = Table(title=f"Flows benchmark ({datetime.now(UTC):%Y-%m-%d}, this machine, one run)")
    for column in (
        "flow",
        "load",
        "events",
        "seconds",
        "events/s",
        "p50 ms",
        "p99 ms",
        "peak RSS MB",
    ):
        table.add_column(column)
    for flow in flows:
        p50, p99 = flow.percentile(50), flow.percentile(99)
        table.add_row(
            flow.name,
            flow.note,
            f"{flow.events:,}",
            f"{flow.seconds:.1f}",
            f"{flow.rate:,.0f}",
            f"{p50 * 1000:.0f}" if p50 is not None else "",
            f"{p99 * 1000:.0f}" if p99 is not None else "",
            f"{flow.peak_rss_mb:.0f}" if flow.peak_rss_mb else "",
        )
    console.print(table)
    rates = {flow.name: flow.rate for flow in flows}
    for flow in flows:
        if flow.baseline_for in rates and flow.rate:
            ratio = rates[flow.baseline_for] / flow.rate
            console.print(f"{flow.baseline_for} / {flow.name}: {ratio:.2f}x")
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    path = out / f"flows-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps([flow.summary() for flow in flows], indent=2, default=str))
    console.print(f"written to {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=3000)
    parser.add_argument(
        "--submissions",
        type=int,
        default=6000,
        help="reviews submitted (and as many by the bare handler); 1,500 finished in 9 s, where "
        "warm-up (a prepared statement per pooled connection) weighed on the ratio",
    )
    parser.add_argument("--rate", type=int, default=500, help="review events/s for scoring")
    parser.add_argument("--seconds", type=int, default=20, help="length of the steady phases")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=("invitations", "reviews", "scoring"),
        default=("invitations", "reviews", "scoring"),
    )
    parser.add_argument("--keep-broker", action="store_true", help="reuse a running 9292 broker")
    args = parser.parse_args(argv)
    if not args.keep_broker:
        start_broker()
    try:
        flows = asyncio.run(run(args))
    finally:
        if not args.keep_broker:
            stop_broker()
    report(flows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
