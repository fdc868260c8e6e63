"""Outbox relay throughput with one instance and with two, in the same run (issue 27: the relay
scales with its service).

    python -m devtools.bench_relay [--rows 60000] [--rounds 2] [--bootstrap 127.0.0.1:9092]

Each phase starts N relay processes (`OutboxRelay` as a service builds it: the settings'
batch size and linger) on a fresh, empty outbox schema, waits until they have split the
outbox's shares, then commits `--rows` rating-sized rows over 10,000 keys in one transaction
and times the relays from that commit until PostgreSQL says every row is published. The rows
go to a topic of the benchmark's own (6 partitions, deleted afterwards). The phases alternate
(1, 2, 1, 2, ...) so that a machine shared with other work slows both alike. CPU is read from
/proc for the relay processes, their PostgreSQL backends (application_name `ratings-<schema>`)
and the Kafka broker when its pid file is found (`.local/kafka-<port>/kafka.pid`, here or in
`RATINGS_ROOT`), and for the whole machine (/proc/stat), to show which part is the limit.
Prints a table and writes JSON to bench-results/. Measured, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
from shared.outbox import OutboxRelay, outbox_rows
from shared.settings import ServiceSettings
from shared.topics import OUTBOX_SHARES

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results"
TICKS = os.sysconf("SC_CLK_TCK")
KEYS = 10_000
console = Console()


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
    instances: int
    rows: int
    seconds: float = 0.0
    rows_per_second: float = 0.0
    shares: list[list[int]] = field(default_factory=list)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    """Per part (relays, postgres, kafka), and the machine's busy seconds (of 2 cores times `seconds`)."""


async def relay_main(database_url: str, schema: str, bootstrap: str, name: str) -> None:
    """One relay instance, as a service runs it; prints the shares it holds when they change."""
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

    async def report() -> None:
        said: list[int] | None = None
        while True:
            if relay.owned_shares != said:
                said = relay.owned_shares
                print("shares", ",".join(map(str, said)) or "-", flush=True)
            await asyncio.sleep(0.05)

    reporting = asyncio.create_task(report())
    try:
        await relay.run()
    finally:
        reporting.cancel()


class RelayProcess:
    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.shares: list[int] = []
        self.process: asyncio.subprocess.Process | None = None
        self.reading: asyncio.Task[None] | None = None

    async def start(self) -> RelayProcess:
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


async def _wait(what: str, seconds: float, check: object) -> None:
    deadline = time.monotonic() + seconds
    while True:
        result = check() if callable(check) else check
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.02)


def _row_template(topic: str) -> tuple[str, bytes]:
    rating = RatingUpdated(
        agent_id="A-0000000",
        as_of=datetime(2026, 1, 1, tzinfo=UTC),
        visibility="opted_out",
        policy_version="bench",
    )
    row = outbox_rows(RATING_UPDATED, [rating], source="/bench", time=datetime.now(UTC))[0]
    return row[4], row[5]


async def run_phase(
    database_url: str, bootstrap: str, topic: str, instances: int, rows: int
) -> Phase:
    phase = Phase(instances, rows)
    schema = f"bench_relay_{uuid.uuid4().hex[:8]}"
    pool = await create_pool(database_url, schema, max_size=2)
    await apply_migrations(pool, schema, None)
    headers, payload = _row_template(topic)
    command = [
        sys.executable,
        "-m",
        "devtools.bench_relay",
        "--relay",
        database_url,
        schema,
        bootstrap,
        f"bench-{schema}",
    ]
    relays = [RelayProcess(command) for _ in range(instances)]
    try:
        for relay in relays:
            await relay.start()

        def split() -> bool:
            held = [set(relay.shares) for relay in relays]
            every = set().union(*held)
            return every == set(range(OUTBOX_SHARES)) and sum(map(len, held)) == len(every)

        await _wait("the relays never split the shares", 90, split)
        await asyncio.sleep(1.0)  # let the rebalance's new producers settle
        phase.shares = [relay.shares for relay in relays]

        async def backends() -> list[int]:
            async with pool.acquire() as conn:
                return [
                    row["pid"]
                    for row in await conn.fetch(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 "
                        "AND pid <> pg_backend_pid()",
                        f"ratings-{schema}",
                    )
                ]

        broker = broker_pid(bootstrap)
        parts = {
            "relays": [relay.pid for relay in relays],
            "postgres": await backends(),
            "kafka": [broker] if broker else [],
        }
        before = {pid: cpu_seconds(pid) for pids in parts.values() for pid in pids}
        busy_before, _ = machine_busy_seconds()
        async with pool.acquire() as conn:
            started = time.perf_counter()
            await conn.execute(
                """INSERT INTO outbox (topic, message_key, ce_id, ce_type, headers, payload)
                   SELECT $1, 'A-' || lpad((n % $4)::text, 7, '0'), $5 || n, $6, $2::jsonb, $3
                     FROM generate_series(1, $7::int) AS n""",
                topic,
                headers,
                payload,
                KEYS,
                f"{schema}-",
                RATING_UPDATED.ce_type,
                rows,
            )

        async def published() -> bool:
            async with pool.acquire() as conn:
                return bool(
                    await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                    == 0
                )

        await _wait("the relays did not finish", 600, published)
        phase.seconds = time.perf_counter() - started
        phase.rows_per_second = rows / phase.seconds
        # and the backends the relays' pools opened meanwhile (a pool grows on demand)
        parts["postgres"] = sorted({*parts["postgres"], *await backends()})
        phase.cpu_seconds = {
            part: round(sum(cpu_seconds(p) - before.get(p, 0.0) for p in pids), 2)
            for part, pids in parts.items()
        }
        phase.cpu_seconds["machine"] = round(machine_busy_seconds()[0] - busy_before, 2)
    finally:
        for relay in relays:
            await relay.stop()
        await pool.close()
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()
    return phase


async def bench(database_url: str, bootstrap: str, rows: int, rounds: int) -> list[Phase]:
    topic = f"bench.relay.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 6, 1)])
        phases = []
        for round_ in range(rounds):
            for instances in (1, 2):
                phase = await run_phase(database_url, bootstrap, topic, instances, rows)
                console.print(
                    f"round {round_ + 1}: {instances} instance(s) {phase.shares}: "
                    f"{phase.rows_per_second:,.0f} rows/s, CPU {phase.cpu_seconds}"
                )
                phases.append(phase)
        return phases
    finally:
        await admin.delete_topics([topic])
        await admin.close()


def report(phases: list[Phase]) -> None:
    table = Table(title=f"Outbox relay: {OUTBOX_SHARES} shares, backlog drained")
    for column in ("instances", "rows", "seconds", "rows/s", "relays", "PG", "Kafka", "machine"):
        table.add_column(column, justify="right")
    for phase in phases:
        cpu = phase.cpu_seconds
        table.add_row(
            str(phase.instances),
            f"{phase.rows:,}",
            f"{phase.seconds:.2f}",
            f"{phase.rows_per_second:,.0f}",
            *(
                f"{cpu.get(part, 0):.2f} s ({1000 * cpu.get(part, 0) / phase.rows:.3f} ms/row)"
                for part in ("relays", "postgres", "kafka")
            ),
            f"{cpu.get('machine', 0):.2f} of {2 * phase.seconds:.2f} s",
        )
    console.print(table)
    for instances in (1, 2):
        rates = [p.rows_per_second for p in phases if p.instances == instances]
        console.print(f"{instances} instance(s): mean {sum(rates) / len(rates):,.0f} rows/s")


def main() -> None:
    if sys.argv[1:2] == ["--relay"]:
        asyncio.run(relay_main(*sys.argv[2:6]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=2)
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
    phases = asyncio.run(bench(args.database_url, args.bootstrap, args.rows, args.rounds))
    report(phases)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"relay-{stamp}.json"
    path.write_text(json.dumps([asdict(p) for p in phases], indent=2))
    console.print(f"written to {path}")


if __name__ == "__main__":
    main()
