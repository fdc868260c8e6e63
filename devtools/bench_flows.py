"""Invitations and reviews throughput and latency, review-to-rating latency at a steady rate,
peak RSS and CPU per event of each service, each beside a bare loop doing the equivalent writes
in the same run.

    python -m devtools.bench_flows [--transactions 5000] [--smtp-connections 8]
                                   [--submissions 20000 --connections 32 --review-rate 200]
                                   [--rate 1000 --seconds 20] [--only ...] [--keep-broker]

Uses the benchmark's own Kafka broker (port 9292, see devtools/bench_scoring.py) and the local
PostgreSQL (fresh schemas, dropped afterwards). Load comes from native tools, not Python sharing
the cores: review submissions are posted by Debian's `wrk` (a Lua script, each PIN once), and
invitation mail goes to Postfix's `smtp-sink` (`make bench-tools` installs both). Beside the
invitations flow, `devtools.smtp_ceiling` sends the service's own mail through the service's
own sender with nothing else to do. The CPU each phase used in the process under test, its
PostgreSQL backends and the benchmark's broker is read from /proc (docs/capacity.md). Prints a
table and writes JSON to bench-results/. Numbers are measured, never asserted; `make bench`
runs this after the scoring benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from rich.table import Table

from devtools.bare_reviews import BARE_REVIEWS_TOPIC
from devtools.bare_reviews import SCHEMA as BARE_SCHEMA
from devtools.bare_reviews import prepare as prepare_bare_reviews
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
REVIEW_AGENTS = 2000
REVIEWS_FLOW = "reviews service: POST → review.published"
INVITATION_MAILS = "invitations service: transactions → emails accepted"
BARE_REVIEWS_FLOW = "bare ASGI → asyncpg, the same transaction and outbox rows (own process)"
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
    measured_ms: dict[str, float] = field(default_factory=dict)
    """Percentiles measured by the load generator (`p50_ms`, `p99_ms`), when it keeps the list."""
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float | None:
        if not self.latencies:
            given = self.measured_ms.get(f"p{p:.0f}_ms")
            return given / 1000 if given is not None else None
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


SMTP_SINK = "/usr/sbin/smtp-sink"


@contextmanager
def postfix_sink() -> Iterator[int]:
    """Postfix's `smtp-sink` (C; Debian's `postfix` package, its daemon never started) on a free
    port: it answers every command at once and keeps nothing, so it is not what limits a
    Python sender. Yields the port."""
    if not Path(SMTP_SINK).exists():
        raise SystemExit(f"{SMTP_SINK} missing: make bench-tools (Debian's postfix)")
    port = free_port()
    privileges = ["-u", "postfix"] if os.geteuid() == 0 else []
    process = subprocess.Popen(
        [SMTP_SINK, *privileges, f"127.0.0.1:{port}", "1024"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


async def invitations_flow(
    database_url: str, smtp_port: int, producer: AIOKafkaProducer, args: argparse.Namespace
) -> list[Flow]:
    """Throughput on a backlog of closed transactions: to invitations stored, and to every
    invitation mail accepted by `smtp-sink` (the service marks a mail sent once the server
    has answered 250; the benchmark polls those marks every 50 ms)."""
    agents = 200
    await produce(roster_records(agents), "roster")
    connections = {"SMTP_CONNECTIONS": str(args.smtp_connections)}
    schema = "bench_invitations"
    with service("invitations", database_url, schema, smtp_port, **connections) as processes:
        conn = await asyncpg.connect(database_url)
        try:
            await poll(
                lambda: _at_least(conn, f"SELECT count(*) FROM {schema}.agents", agents),
                120,
                "roster in invitations",
            )
        finally:
            await conn.close()
        count, tag = args.transactions, "burst"
        records = transaction_records(count, agents, tag)
        pid = processes.procs["invitations"].pid
        async with CpuMeter(pid, database_url, schema) as meter:
            started = time.monotonic()
            stored = asyncio.create_task(_invitations_stored(database_url, tag, count))
            await send_at_rate(producer, records, None, lambda _: None)
            conn = await asyncpg.connect(database_url)
            try:
                await poll(
                    lambda: _at_least(
                        conn,
                        f"SELECT count(*) FROM {schema}.mail_outbox m "
                        f"JOIN {schema}.invitations i "
                        "ON m.dedupe_key = 'invitation:' || i.invitation_id "
                        f"WHERE i.transaction_id LIKE 'T-{tag}-%' AND m.sent_at IS NOT NULL",
                        count,
                    ),
                    600,
                    "invitation mails sent",
                )
            finally:
                await conn.close()
            mailed = time.monotonic() - started
        stored_seconds = await stored - started
        peak = rss_mb(pid)
    figures = meter.per_event_ms(count)
    note = f"backlog, {args.smtp_connections} SMTP connections"
    return [
        Flow(
            "invitations service: transactions → invitations stored",
            count,
            stored_seconds,
            note="backlog",
        ),
        Flow(
            INVITATION_MAILS,
            count,
            mailed,
            peak_rss_mb=peak,
            note=note,
            figures=figures,
        ),
    ]


async def _invitations_stored(database_url: str, tag: str, count: int) -> float:
    """When the service has stored an invitation for each of the `tag` closings."""
    conn = await asyncpg.connect(database_url)
    query = (
        "SELECT count(*) FROM bench_invitations.invitations "
        f"WHERE transaction_id LIKE 'T-{tag}-%'"  # tag: "burst"
    )
    try:
        await poll(lambda: _at_least(conn, query, count), 600, "invitations stored")
        return time.monotonic()
    finally:
        await conn.close()


async def _timed_process(module: str, smtp_port: int, connections: int, *arguments: str) -> float:
    """Run `python -m module` and return the seconds between the start and the finish it
    prints (its last mail answered 250 by the server)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        "--smtp-port",
        str(smtp_port),
        *arguments,
        cwd=ROOT,
        env={**os.environ, "SMTP_CONNECTIONS": str(connections)},
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{module} exited with {process.returncode}")
    times = json.loads(output.decode().strip().splitlines()[-1])
    return float(times["finished"] - times["started"])


async def bare_invitations(database_url: str, smtp_port: int, args: argparse.Namespace) -> Flow:
    """`devtools.bare_invitations` as a process of its own over as many SMTP connections,
    timed from its start of consuming to its last mail answered."""
    count = args.transactions
    seconds = await _timed_process(
        "devtools.bare_invitations",
        smtp_port,
        args.smtp_connections,
        *("--database-url", database_url, "--bootstrap", BOOTSTRAP, "--count", str(count)),
    )
    return Flow(
        "bare aiokafka → asyncpg → aiosmtplib loop (own process)",
        count,
        seconds,
        note=f"backlog, {args.smtp_connections} SMTP connections",
        baseline_for=INVITATION_MAILS,
    )


async def smtp_ceiling(smtp_port: int, args: argparse.Namespace) -> Flow:
    """The service's mail through its own SMTP sender alone (`devtools.smtp_ceiling`): what
    the service's sender does with no Kafka or database work in the way."""
    seconds = await _timed_process(
        "devtools.smtp_ceiling",
        smtp_port,
        args.smtp_connections,
        *("--count", str(args.transactions), "--connections", str(args.smtp_connections)),
    )
    return Flow(
        "SMTP alone: the service's sender and mail → smtp-sink (own process)",
        args.transactions,
        seconds,
        note=f"{args.smtp_connections} connections",
    )


# -- CPU ---------------------------------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (/proc/PID/stat), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


class CpuMeter:
    """CPU used during a phase by the process under test, its PostgreSQL backends (the pool's
    `application_name`, `ratings-<schema>`) and the benchmark's broker (only the benchmark
    uses it): what an event costs each, for docs/capacity.md."""

    def __init__(self, pid: int, database_url: str, schema: str) -> None:
        self.pid, self.database_url, self.schema = pid, database_url, schema
        self.start: dict[str, dict[int, float]] = {}

    async def _pids(self) -> dict[str, list[int]]:
        conn = await asyncpg.connect(self.database_url)
        try:
            backends = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                f"ratings-{self.schema}",
            )
        finally:
            await conn.close()
        broker = ROOT / ".local" / "kafka-9292" / "kafka.pid"
        return {
            "process": [self.pid],
            "postgres": [row["pid"] for row in backends],
            "kafka": [int(broker.read_text())] if broker.exists() else [],
        }

    async def __aenter__(self) -> CpuMeter:
        self.start = {
            part: {pid: cpu_seconds(pid) for pid in pids}
            for part, pids in (await self._pids()).items()
        }
        return self

    async def __aexit__(self, *_: object) -> None:
        self.used: dict[str, float] = {}
        for part, pids in (await self._pids()).items():
            before = self.start.get(part, {})
            self.used[part] = sum(cpu_seconds(pid) - before.get(pid, 0.0) for pid in pids)

    def per_event_ms(self, events: int) -> dict[str, float]:
        return {f"cpu_ms_{part}": used * 1000 / max(events, 1) for part, used in self.used.items()}


# -- reviews ------------------------------------------------------------------------------------

WRK_SCRIPT = """
local pins = {%(pins)s}
local threads = %(threads)d
local rate = %(rate)f
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } wrk_timespec;
int clock_gettime(int clock, wrk_timespec *ts);
]]
local ts = ffi.new("wrk_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  next_pin = id + 1
  mine = math.floor((#pins - id - 1) / threads) + 1
  answered = 0
  scheduled = 0
  started = now()
  -- wrk calls the first thread's request() once before the run, to check the script
  checking = id == 0
end
local head = '{"scores": %(scores)s, "comment": "Benchmark review.", "pin": "'
function request()
  if checking then
    checking = false
    return wrk.format("GET", "/healthz")
  end
  local pin = pins[next_pin]
  next_pin = next_pin + threads
  if pin == nil then
    return wrk.format("GET", "/healthz")
  end
  return wrk.format("POST", "%(path)s", {["Content-Type"] = "application/json"}, head .. pin .. '"}')
end
function response(status, headers, body)
  if status ~= 200 then
    answered = answered + 1
    if answered >= mine then
      wrk.thread:stop()
    end
  end
end
function delay()
  if pins[next_pin] == nil then
    return 1000
  end
  if rate <= 0 then
    return 0
  end
  scheduled = scheduled + 1
  local wait = started + scheduled / (rate / threads) - now()
  if wait > 0 then return wait * 1000 end
  return 0
end
"""
"""wrk's Lua: each thread takes every `threads`-th PIN of the list and posts it once (a POST is
answered 201 or an error, never the 200 of the `/healthz` a connection idles on once the PINs
are all taken), and stops when each of its posts is answered; with a `rate`, `delay()` keeps
each thread on its share of the schedule (LuaJIT's ffi reads the monotonic clock), open-loop
as long as a connection is free."""


class Target(NamedTuple):
    """Where a reviews handler stores: its database and schema (the outbox read for latency)."""

    database_url: str
    schema: str


def wrk_script(pins: Sequence[str], path: str, threads: int, rate: float | None) -> Path:
    script = ROOT / "bench-results" / f"wrk-{os.getpid()}.lua"
    script.parent.mkdir(exist_ok=True)
    text = WRK_SCRIPT % {
        "pins": ",".join(f'"{pin}"' for pin in pins),
        "threads": threads,
        "rate": rate or 0.0,
        "scores": json.dumps(GOOD),
        "path": path,
    }
    script.write_text(text)
    return script


def wrk_figures(output: str) -> dict[str, float]:
    """Latency percentiles (ms), requests and non-2xx responses from wrk's `--latency` report."""
    figures: dict[str, float] = {}
    for percentile in ("50", "90", "99"):
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\b", output, re.MULTILINE)
        if match:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match[2]]
            figures[f"p{percentile}_ms"] = float(match[1]) * scale
    requests = re.search(r"(\d+) requests in", output)
    figures["requests"] = float(requests[1]) if requests else 0.0
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    figures["non_2xx"] = float(errors[1]) if errors else 0.0
    return figures


async def wrk_reviews(
    url: str,
    path: str,
    pins: Sequence[str],
    topic: str,
    *,
    connections: int,
    rate: float | None = None,
    target: Target,
    pid: int,
) -> tuple[float, dict[str, float]]:
    """`wrk` posts each PIN once; timed from wrk's start until the last of the reviews is on
    `topic` as a downstream consumer reads it (`read_committed`). Returns those seconds and
    wrk's figures, with the p99 of the outbox rows' wait (created → marked published by the
    relay, PostgreSQL's clock) as `outbox_p99_ms`."""
    database_url, schema = target
    threads = 1 if connections < 4 else 2
    script = wrk_script(pins, path, threads, rate)
    reader = await _consumer_at_end(topic)
    arrived: dict[str, float] = {}

    async def read() -> None:
        async for record in reader:
            if b"review.published" in dict(record.headers).get("ce_type", b""):
                arrived[json.loads(record.value)["review_id"]] = time.monotonic()

    reading = asyncio.create_task(read())
    conn = await asyncpg.connect(database_url)
    first_row = await conn.fetchval(f"SELECT COALESCE(max(id), 0) FROM {schema}.outbox")
    meter = CpuMeter(pid, database_url, schema)
    await meter.__aenter__()
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        "-d600s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(script),
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        last_count, last_change = 0, time.monotonic()

        async def done() -> bool:
            nonlocal last_count, last_change
            if len(arrived) != last_count:
                last_count, last_change = len(arrived), time.monotonic()
            # every review on the topic, or none more for 10 s (a refused submission)
            return len(arrived) >= len(pins) or time.monotonic() - last_change > 10

        await poll(done, 900, "reviews on the topic")
        seconds = max(arrived.values()) - started if arrived else 0.0
        await meter.__aexit__()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        output = (await process.communicate())[0].decode()
        reading.cancel()
        await reader.stop()
    figures = wrk_figures(output)
    figures["on_topic"] = float(len(arrived))
    figures.update(meter.per_event_ms(len(arrived)))
    figures["outbox_p99_ms"] = float(
        await conn.fetchval(
            f"""SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY
                   extract(epoch FROM published_at - created_at) * 1000)
                FROM {schema}.outbox WHERE id > $1""",
            first_row,
        )
        or 0.0
    )
    await conn.close()
    console.print(output)
    if figures["on_topic"] < len(pins):
        console.print(f"[red]{len(pins) - int(figures['on_topic'])} reviews not on {topic}[/]")
    return seconds, figures


def _wrk_flow(
    name: str, pins: int, seconds: float, figures: dict[str, float], note: str, **extra: Any
) -> Flow:
    return Flow(
        name,
        int(figures["on_topic"]),
        seconds,
        peak_rss_mb=None,
        note=note,
        measured_ms={key: figures[key] for key in ("p50_ms", "p99_ms") if key in figures},
        figures=figures,
        **extra,
    )


async def reviews_flows(
    database_url: str, sink: MailSink, producer: AIOKafkaProducer, args: argparse.Namespace
) -> list[Flow]:
    """Submissions through POST /api/v1/reviews driven by `wrk` (each PIN once) → the review on
    `reviews.published`: a backlog of `--submissions` as fast as `--connections` take them,
    then `--review-rate`/s for `--seconds`. Then the bare handler, the same two runs."""
    count, steady = args.submissions, args.review_rate * args.seconds
    hasher = SecretHasher(PEPPER)
    pins = [new_pin() for _ in range(count + steady)]
    run = time.time_ns()
    # no roster names these agents, so no review is also a notice mail to its agent: the bare
    # handler sends none, and the mail relay's rate is the invitations flow's to measure
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
        for n in range(len(pins))
    ]
    await produce(invitations, "invitations for reviews")
    backlog = f"wrk, {args.connections} connections"
    paced = f"{args.review_rate}/s (wrk, paced)"
    flows = []
    # every review is submitted at the fixed instant, several per agent: without a higher burst
    # limit the trust signals (docs/design.md 3.3) would hold them for a moderator
    burst = {"REVIEW_BURST_MAX": str(len(pins))}
    with service("reviews", database_url, "bench_reviews", sink.port, **burst) as processes:
        conn = await asyncpg.connect(database_url)
        try:
            await poll(
                lambda: _at_least(
                    conn,
                    "SELECT count(*) FROM bench_reviews.invitations "
                    f"WHERE invitation_id LIKE 'inv-bench-{run}-%'",
                    len(pins),
                ),
                300,
                "invitations in reviews",
            )
        finally:
            await conn.close()
        common = Target(database_url, "bench_reviews")
        url = processes.url("reviews")
        seconds, figures = await wrk_reviews(
            url,
            "/api/v1/reviews",
            pins[:count],
            Topic.REVIEWS_PUBLISHED,
            connections=args.connections,
            target=common,
            pid=processes.procs["reviews"].pid,
        )
        flows.append(_wrk_flow(REVIEWS_FLOW, count, seconds, figures, backlog))
        flows[-1].peak_rss_mb = rss_mb(processes.procs["reviews"].pid)
        seconds, figures = await wrk_reviews(
            url,
            "/api/v1/reviews",
            pins[count:],
            Topic.REVIEWS_PUBLISHED,
            connections=8,
            rate=args.review_rate,
            target=common,
            pid=processes.procs["reviews"].pid,
        )
        flows.append(_wrk_flow(f"{REVIEWS_FLOW} at a steady rate", steady, seconds, figures, paced))
        flows[-1].peak_rss_mb = rss_mb(processes.procs["reviews"].pid)
    flows += await bare_reviews(database_url, args)
    return flows


async def bare_reviews(database_url: str, args: argparse.Namespace) -> list[Flow]:
    """`devtools.bare_reviews` as a process of its own, driven by the same wrk runs."""
    count, steady = args.submissions, args.review_rate * args.seconds
    hasher = SecretHasher(PEPPER)
    pins = [new_pin() for _ in range(count + steady)]
    await prepare_bare_reviews(
        database_url,
        [
            (hasher.pin_hash(pin), f"inv-{n}", f"RV-{n % REVIEW_AGENTS:06d}")
            for n, pin in enumerate(pins)
        ],
    )
    port = free_port()
    command = [sys.executable, "-m", "devtools.bare_reviews", "--port", str(port)]
    command += ["--database-url", database_url, "--bootstrap", BOOTSTRAP]
    process = await asyncio.create_subprocess_exec(*command, cwd=ROOT)
    flows = []
    try:
        await poll(lambda: _listening(port), 60, "bare reviews handler")
        common = Target(database_url, BARE_SCHEMA)
        url = f"http://127.0.0.1:{port}"
        seconds, figures = await wrk_reviews(
            url,
            "/",
            pins[:count],
            BARE_REVIEWS_TOPIC,
            connections=args.connections,
            target=common,
            pid=process.pid,
        )
        flows.append(
            _wrk_flow(
                BARE_REVIEWS_FLOW,
                count,
                seconds,
                figures,
                f"wrk, {args.connections} connections",
                baseline_for=REVIEWS_FLOW,
            )
        )
        flows[-1].peak_rss_mb = rss_mb(process.pid)
        seconds, figures = await wrk_reviews(
            url,
            "/",
            pins[count:],
            BARE_REVIEWS_TOPIC,
            connections=8,
            rate=args.review_rate,
            target=common,
            pid=process.pid,
        )
        flows.append(
            _wrk_flow(
                f"{BARE_REVIEWS_FLOW} at a steady rate",
                steady,
                seconds,
                figures,
                f"{args.review_rate}/s (wrk, paced)",
            )
        )
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
        conn = await asyncpg.connect(database_url)
        await conn.execute(f"DROP SCHEMA {BARE_SCHEMA} CASCADE")
        await conn.close()
    return flows


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

        pid = processes.procs["scoring"].pid
        async with CpuMeter(pid, database_url, "bench_scoring_latency") as meter:
            started = time.monotonic()
            await send_at_rate(producer, chosen, float(args.rate), stamp)
            sending = time.monotonic() - started
            with contextlib.suppress(TimeoutError):  # unmatched reviews: counted, not awaited
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
        figures=meter.per_event_ms(len(chosen)),
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
            with postfix_sink() as smtp_port:
                flows += await invitations_flow(database_url, smtp_port, producer, args)
                flows.append(await bare_invitations(database_url, smtp_port, args))
                flows.append(await smtp_ceiling(smtp_port, args))
        if "reviews" in args.only:
            console.rule("[bold]Reviews: POST /api/v1/reviews → review.published.v1")
            flows += await reviews_flows(database_url, sink, producer, args)
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
        "CPU ms/event: process, PG, Kafka",
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
            ", ".join(
                f"{flow.figures[f'cpu_ms_{part}']:.2f}"
                for part in ("process", "postgres", "kafka")
                if f"cpu_ms_{part}" in flow.figures
            ),
        )
    console.width = max(console.width, 200)
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
    parser.add_argument("--transactions", type=int, default=5000)
    parser.add_argument(
        "--smtp-connections", type=int, default=8, help="the service's and the bare loop's"
    )
    parser.add_argument(
        "--submissions",
        type=int,
        default=20000,
        help="reviews submitted by wrk as fast as they are taken (and as many to the bare "
        "handler); then --review-rate/s for --seconds",
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk's connections")
    parser.add_argument("--review-rate", type=int, default=200, help="paced submissions/s")
    parser.add_argument("--rate", type=int, default=1000, help="review events/s for scoring")
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
