"""Outbox relay throughput and CPU with one instance and with two, in the same run, beside the
single elected relay it replaced (issue 27: the relay scales with its service).

    python -m devtools.bench_relay [--rows 60000] [--rate 500 --seconds 20] [--rounds 2]
                                   [--baseline-tree /work/main] [--bootstrap 127.0.0.1:9092]

Each phase starts relay processes (`OutboxRelay` as a service builds it: the settings' batch
size, linger and poll) on a fresh, empty outbox schema and waits until they have split the
outbox's shares. Then, **backlog**: it commits `--rows` rating-sized rows over 10,000 keys in
one transaction and times the relays from that commit until PostgreSQL says every row is
published. Then, **steady**: it commits `--rate` rows a second (50 commits a second) for
`--seconds` and reads the CPU the relays and their PostgreSQL backends used per row. Phases:
`after x1` and `after x2` (this tree's relay, one and two instances) and, with
`--baseline-tree`, `before x1` (that tree's relay, the single relay the shares replaced); the
rounds repeat them in turn, so a machine shared with other work slows each alike. The rows go
to a topic of the benchmark's own (6 partitions, deleted afterwards). CPU is read from /proc for
the relay processes, their PostgreSQL backends (application_name `ratings-<schema>`), the
Kafka broker when its pid file is found (`.local/kafka-<port>/kafka.pid` here or in
`RATINGS_ROOT`) and the whole machine (/proc/stat), to show which part is the limit. Prints a
table and writes JSON to bench-results/. Measured, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.console import Console
from rich.table import Table

from shared.contracts import RATING_UPDATED
from shared.contracts.ratings import RatingUpdated
from shared.db import apply_migrations, create_pool
from shared.outbox import outbox_rows
from shared.topics import OUTBOX_SHARES

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results"
TICKS = os.sysconf("SC_CLK_TCK")
KEYS = 10_000
console = Console(width=160)


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (/proc/PID/stat), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


def broker_pid(bootstrap: str) -> int | None:
    port = bootstrap.split(",")[0].rsplit(":", 1)[1]
    for root in (ROOT, Path(os.environ.get("RATINGS_ROOT", "/work/main"))):
        pid_file = root / ".local" / f"kafka-{port}" / "kafka.pid"
        if pid_file.exists():
            return int(pid_file.read_text())
    return None


@dataclass
class Phase:
    relay: str
    """`before` (the baseline tree's single relay) or `after` (this tree's shares)."""
    instances: int
    rows: int
    seconds: float = 0.0
    rows_per_second: float = 0.0
    shares: list[list[int] | None] = field(default_factory=list)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    """Backlog: per part (relays, postgres, kafka), and the machine's busy seconds (of 2 cores
    times `seconds`)."""
    steady_rows: int = 0
    steady_seconds: float = 0.0
    steady_cpu_seconds: dict[str, float] = field(default_factory=dict)
    """Steady rate: the same parts."""

    @property
    def name(self) -> str:
        return f"{self.relay} x{self.instances}"


RELAY_SCRIPT = """
import asyncio, sys
from shared.db import create_pool
from shared.outbox import OutboxRelay
from shared.settings import ServiceSettings

async def main(database_url, schema, bootstrap, name):
    defaults = ServiceSettings.model_fields
    pool = await create_pool(database_url, schema)
    relay = OutboxRelay(
        pool,
        kafka=bootstrap,
        relay_name=name,
        poll_seconds=defaults["outbox_poll_seconds"].default,
        batch_size=defaults["outbox_batch_size"].default,
        linger_seconds=defaults["outbox_linger_seconds"].default,
    )

    async def report():
        said = None
        while True:
            # a relay without shares (the single elected one) holds the whole outbox
            held = getattr(relay, "owned_shares", None)
            now = "*" if held is None else ",".join(map(str, held)) or "-"
            if now != said:
                said = now
                print("shares", now, flush=True)
            await asyncio.sleep(0.05)

    reporting = asyncio.create_task(report())
    await relay.run()

asyncio.run(main(*sys.argv[1:5]))
"""
"""One relay instance as a service runs it, in a process of its own with PYTHONPATH at the
tree under test; it prints the shares it holds when they change."""


class RelayProcess:
    def __init__(self, command: list[str], tree: Path) -> None:
        self.command, self.tree = command, tree
        self.shares: list[int] | None = []
        """None: the single relay of the baseline tree, which relays everything."""
        self.process: asyncio.subprocess.Process | None = None
        self.reading: asyncio.Task[None] | None = None

    async def start(self) -> RelayProcess:
        self.process = await asyncio.create_subprocess_exec(
            *self.command,
            stdout=asyncio.subprocess.PIPE,
            # `python -c` puts the working directory first on sys.path: the tree's, too
            cwd=self.tree,
            env={**os.environ, "PYTHONPATH": str(self.tree)},
        )
        self.reading = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            said = line.decode().split()
            if said[:1] == ["shares"]:
                held = said[1]
                self.shares = (
                    None
                    if held == "*"
                    else []
                    if held == "-"
                    else [int(n) for n in held.split(",")]
                )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
        if self.reading is not None:
            await asyncio.gather(self.reading, return_exceptions=True)


async def _wait(what: str, seconds: float, check: object, every: float = 0.02) -> None:
    deadline = time.monotonic() + seconds
    while True:
        result = check() if callable(check) else check
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(every)


def _row_template(topic: str) -> tuple[str, bytes]:
    rating = RatingUpdated(
        agent_id="A-0000000",
        as_of=datetime(2026, 1, 1, tzinfo=UTC),
        visibility="opted_out",
        policy_version="bench",
    )
    row = outbox_rows(RATING_UPDATED, [rating], source="/bench", time=datetime.now(UTC))[0]
    return row[4], row[5]


class CpuMeter:
    """CPU used since `start` by the relays, their PostgreSQL backends, the broker and the
    machine (a pool opens backends on demand: those that appear later count from zero)."""

    def __init__(self, pool: asyncpg.Pool, schema: str, relays: list[int], broker: int | None):
        self.pool, self.schema, self.relays, self.broker = pool, schema, relays, broker
        self.before: dict[int, float] = {}
        self.machine = 0.0

    async def backends(self) -> list[int]:
        async with self.pool.acquire() as conn:
            return [
                row["pid"]
                for row in await conn.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = $1 "
                    "AND pid <> pg_backend_pid()",
                    f"ratings-{self.schema}",
                )
            ]

    async def start(self) -> None:
        pids = [*self.relays, *await self.backends(), *([self.broker] if self.broker else [])]
        self.before = {pid: cpu_seconds(pid) for pid in pids}
        self.machine = machine_busy_seconds()[0]

    async def used(self) -> dict[str, float]:
        parts = {
            "relays": self.relays,
            "postgres": await self.backends(),
            "kafka": [self.broker] if self.broker else [],
        }
        used = {
            part: round(sum(cpu_seconds(p) - self.before.get(p, 0.0) for p in pids), 2)
            for part, pids in parts.items()
        }
        used["machine"] = round(machine_busy_seconds()[0] - self.machine, 2)
        return used


async def _unpublished(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


async def _drained(pool: asyncpg.Pool) -> bool:
    return await _unpublished(pool) == 0


INSERT = """INSERT INTO outbox (topic, message_key, ce_id, ce_type, headers, payload)
            SELECT $1, 'A-' || lpad((n % $4)::text, 7, '0'), $5 || n, $6, $2::jsonb, $3
              FROM generate_series($7::int, $8::int) AS n"""


async def run_phase(
    database_url: str,
    bootstrap: str,
    topic: str,
    relay: str,
    tree: Path,
    instances: int,
    rows: int,
    rate: int,
    seconds: float,
) -> Phase:
    phase = Phase(relay, instances, rows)
    schema = f"bench_relay_{uuid.uuid4().hex[:8]}"
    setup = await create_pool(database_url, schema, max_size=1)
    try:
        await apply_migrations(setup, schema, None)
    finally:
        await setup.close()
    # the benchmark's own connections, named apart from the relays' (`ratings-<schema>`)
    pool = await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=2,
        server_settings={"search_path": schema, "application_name": f"bench-{schema}"},
    )
    headers, payload = _row_template(topic)
    command = [sys.executable, "-c", RELAY_SCRIPT, database_url, schema, bootstrap, f"b-{schema}"]
    relays = [RelayProcess(command, tree) for _ in range(instances)]

    async def insert(first: int, last: int) -> None:
        async with pool.acquire() as conn:
            await conn.execute(
                INSERT, topic, headers, payload, KEYS, f"{schema}-", RATING_UPDATED.ce_type,
                first, last,
            )  # fmt: skip

    try:
        for process in relays:
            await process.start()

        def split() -> bool:
            if any(process.shares is None for process in relays):
                return True  # the single relay: one of them leads, the others stand by
            held = [set(process.shares or ()) for process in relays]
            every = set().union(*held)
            return (
                all(held)  # each instance relays (there are no more of them than shares)
                and every == set(range(OUTBOX_SHARES))
                and sum(map(len, held)) == len(every)
            )

        await _wait("the relays never split the shares", 90, split)
        await asyncio.sleep(1.0)  # let the rebalance's new producers settle
        phase.shares = [process.shares for process in relays]
        meter = CpuMeter(pool, schema, [p.pid for p in relays], broker_pid(bootstrap))

        # backlog: every row committed at once, timed until all are published
        await meter.start()
        started = time.perf_counter()
        await insert(1, rows)
        await _wait("the relays did not finish the backlog", 600, lambda: _drained(pool), 0.1)
        phase.seconds = time.perf_counter() - started
        phase.rows_per_second = rows / phase.seconds
        phase.cpu_seconds = await meter.used()

        # steady: `rate` rows a second in 50 commits a second, CPU per row
        await asyncio.sleep(1.0)
        await meter.start()
        started = time.perf_counter()
        chunk = max(1, rate // 50)
        first = rows + 1
        while (elapsed := time.perf_counter() - started) < seconds:
            await insert(first, first + chunk - 1)
            first += chunk
            ahead = (first - rows - 1) / rate - elapsed
            await asyncio.sleep(max(0.0, ahead))
        await _wait("the relays did not keep up", 120, lambda: _drained(pool), 0.1)
        phase.steady_rows = first - rows - 1
        phase.steady_seconds = time.perf_counter() - started
        phase.steady_cpu_seconds = await meter.used()
    finally:
        for process in relays:
            await process.stop()
        await pool.close()
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()
    return phase


async def bench(
    database_url: str,
    bootstrap: str,
    *,
    rows: int,
    rate: int,
    seconds: float,
    rounds: int,
    baseline: Path | None,
) -> list[Phase]:
    topic = f"bench.relay.{uuid.uuid4().hex[:8]}"
    kinds: list[tuple[str, Path, int]] = [("after", ROOT, 1), ("after", ROOT, 2)]
    if baseline is not None:
        kinds.insert(0, ("before", baseline, 1))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 6, 1)])
        phases = []
        for round_ in range(rounds):
            for relay, tree, instances in kinds:
                phase = await run_phase(
                    database_url, bootstrap, topic, relay, tree, instances, rows, rate, seconds
                )
                console.print(
                    f"round {round_ + 1}: {phase.name} {phase.shares}: "
                    f"{phase.rows_per_second:,.0f} rows/s, CPU {phase.cpu_seconds}; "
                    f"steady {phase.steady_rows} rows in {phase.steady_seconds:.1f} s, "
                    f"CPU {phase.steady_cpu_seconds}"
                )
                phases.append(phase)
        return phases
    finally:
        await admin.delete_topics([topic])
        await admin.close()


def _per_row(cpu: dict[str, float], part: str, rows: int) -> str:
    return f"{1000 * cpu.get(part, 0) / max(rows, 1):.3f}"


def report(phases: list[Phase]) -> None:
    table = Table(title=f"Outbox relay ({OUTBOX_SHARES} shares): backlog, then a steady rate")
    for column in (
        "relay",
        "backlog rows/s",
        "ms CPU/row: relays",
        "PG",
        "Kafka",
        "machine busy",
        "steady rows/s",
        "ms CPU/row: relays",
        "PG",
        "Kafka",
    ):
        table.add_column(column, justify="right")
    for phase in phases:
        cpu, steady = phase.cpu_seconds, phase.steady_cpu_seconds
        table.add_row(
            phase.name,
            f"{phase.rows_per_second:,.0f}",
            *(_per_row(cpu, part, phase.rows) for part in ("relays", "postgres", "kafka")),
            f"{cpu.get('machine', 0) / max(phase.seconds, 1e-9):.2f} cores",
            f"{phase.steady_rows / max(phase.steady_seconds, 1e-9):,.0f}",
            *(
                _per_row(steady, part, phase.steady_rows)
                for part in ("relays", "postgres", "kafka")
            ),
        )
    console.print(table)
    for name in dict.fromkeys(phase.name for phase in phases):
        rates = [p.rows_per_second for p in phases if p.name == name]
        console.print(f"{name}: backlog mean {sum(rates) / len(rates):,.0f} rows/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--rate", type=int, default=500, help="rows a second, steady phase")
    parser.add_argument("--seconds", type=float, default=20.0, help="of the steady phase")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="a checkout whose relay is the single elected one, measured as `before`",
    )
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "DATABASE_URL", "postgresql://ratings:ratings@127.0.0.1:5432/ratings"
        ),
    )
    args = parser.parse_args()
    phases = asyncio.run(
        bench(
            args.database_url,
            args.bootstrap,
            rows=args.rows,
            rate=args.rate,
            seconds=args.seconds,
            rounds=args.rounds,
            baseline=args.baseline_tree,
        )
    )
    report(phases)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"relay-{stamp}.json"
    trees = {"after": ROOT, **({"before": args.baseline_tree} if args.baseline_tree else {})}
    commits = {
        name: subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        for name, tree in trees.items()
    }
    path.write_text(
        json.dumps(
            {"commits": commits, "phases": [{**asdict(p), "name": p.name} for p in phases]},
            indent=2,
        )
    )
    console.print(f"written to {path}")


if __name__ == "__main__":
    main()
