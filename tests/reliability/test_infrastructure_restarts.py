"""The broker and the database restarted under load: the invitations, reviews and scoring services
run as processes against a Kafka broker and a PostgreSQL of the test's own (never the shared
stack), closings arrive at a steady pace and clients answer their surveys, and in the middle of it
the broker is stopped (SIGTERM, later kill -9) and the database is stopped (pg_ctl -m fast, later
-m immediate), each held down for a few seconds while the load goes on, then started again on the
same data. The services are never restarted: they wait the outage out and catch up by
themselves. Afterwards nothing is lost and nothing is done twice, nothing is dead-lettered or
stranded, the scoring store equals a fresh replay, and no client contact detail is on any topic
the services write or in any of their logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from devtools.processes import ServiceProcesses
from devtools.smtp_sink import MailSink, body_text
from shared.cloudevents import encode
from shared.contracts import TRANSACTION_CLOSED
from shared.topics import Topic, ensure_topics
from tests.conftest import free_port
from tests.reliability.infrastructure import LocalKafka, LocalPostgres
from tests.reliability.steady_load import (
    GOOD,
    OUTPUT,
    PIN,
    UNTHROTTLED,
    closing,
    eventually,
    fetchval,
    live_and_replayed_ratings,
    publish_roster,
    stranded,
)
from tests.support.kafka import EventPublisher, TopicReader
from tests.support.mails import survey_mails

# 100 s on an idle 2-core machine, over 3 minutes on a loaded one (a Kafka restart alone takes 8 to
# 35 s there): slow, so it runs in make test-reliability only
pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

KAFKA_PORT = 9492  # and 9493 for its controller; the shared broker is 9092
PG_PORT = 5442  # the shared PostgreSQL is 5432
SERVICES = ("invitations", "reviews", "scoring")
AGENTS = 8
PACE_SECONDS = 0.2  # one closing every PACE_SECONDS, outages or not
LEAD_IN = 15  # closings sent between one restart and the next fault
TAIL = 15  # closings sent after the last recovery
MAX_CLOSINGS = 1500  # a bound only: 230 to 420 are sent, depending on how long restarts take
ANSWER_LAG = 10  # clients answer this many closings late, so that some answers meet an outage
DOWN_SECONDS = 3.0  # how long the broker or database stays down while the load goes on
CATCH_UP_TIMEOUT = 120.0


@dataclass(frozen=True)
class Fault:
    target: str  # "kafka" or "postgres"
    how: str  # kafka: SIGTERM | SIGKILL; postgres: fast | immediate

    def __str__(self) -> str:
        if self.target == "kafka":
            return f"Kafka broker {'kill -9' if self.how == 'SIGKILL' else 'SIGTERM'}"
        return f"PostgreSQL pg_ctl stop -m {self.how}"


FAULTS = (
    Fault("kafka", "SIGTERM"),
    Fault("postgres", "fast"),
    Fault("kafka", "SIGKILL"),
    Fault("postgres", "immediate"),
)


@dataclass
class Infrastructure:
    kafka: LocalKafka
    postgres: LocalPostgres

    def stop(self, fault: Fault) -> None:
        if fault.target == "postgres":
            self.postgres.stop(fault.how)
        elif fault.how == "SIGKILL":
            self.kafka.kill()
        else:
            self.kafka.stop()

    def start(self, fault: Fault) -> None:
        if fault.target == "postgres":
            self.postgres.start()
        else:
            self.kafka.start()


@pytest.fixture(scope="module")
async def infrastructure() -> AsyncIterator[Infrastructure]:
    infra = Infrastructure(LocalKafka(KAFKA_PORT), LocalPostgres(PG_PORT))
    try:
        await asyncio.gather(
            asyncio.to_thread(infra.kafka.start, fresh=True),
            asyncio.to_thread(infra.postgres.start, fresh=True),
        )
        await ensure_topics(infra.kafka.bootstrap)
        yield infra
    finally:
        for stop in (infra.kafka.stop, infra.postgres.stop):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(stop)


@dataclass
class Deployment:
    processes: ServiceProcesses
    run: str

    def schema(self, service: str) -> str:
        return f"infra_{self.run}_{service}"


@pytest.fixture(scope="module")
def deployment(
    infrastructure: Infrastructure, smtp_sink: MailSink, tmp_path_factory: Any
) -> Iterator[Deployment]:
    run = uuid.uuid4().hex[:6]
    processes = ServiceProcesses(
        env={
            "KAFKA_BOOTSTRAP_SERVERS": infrastructure.kafka.bootstrap,
            "DATABASE_URL": infrastructure.postgres.url,
            "SMTP_PORT": str(smtp_sink.port),
            "SCHEDULER_INTERVAL_SECONDS": "0.3",
            "OUTBOX_POLL_SECONDS": "0.05",
            **UNTHROTTLED,
        },
        per_service_env=lambda service: {
            "DATABASE_SCHEMA": f"infra_{run}_{service}",
            "KAFKA_GROUP_ID": f"infra-{run}-{service}",
        },
        ports={service: free_port() for service in SERVICES},
        log_dir=Path(tmp_path_factory.mktemp("infrastructure-restart-logs")),
    )
    try:
        for service in SERVICES:
            processes.start(service)
        processes.wait_ready(120)
        yield Deployment(processes, run)
    finally:
        processes.stop_all()


def contact_patterns(tag: str) -> list[re.Pattern[bytes]]:
    """This run's client emails, and their phone numbers however they are formatted."""
    return [
        re.compile(rb"client\.infra\." + tag.encode() + rb"\.\d+@example\.com", re.IGNORECASE),
        re.compile(rb"(?:\+?1[\s.-]?)?\(?713\)?[\s.-]?555[\s.-]?01\d\d"),
    ]


def hits(patterns: Iterable[re.Pattern[bytes]], blob: bytes) -> int:
    return sum(len(pattern.findall(blob)) for pattern in patterns)


async def every_record(bootstrap: str) -> dict[str, list[Any]]:
    """Every record of every non-internal topic on the broker, from offset 0, aborted
    transactions included (read_uncommitted): what a PII scan has to look at."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = sorted(t for t in await admin.list_topics() if not t.startswith("__"))
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    assignment = [
        TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_uncommitted"
    )
    await consumer.start()
    found: dict[str, list[Any]] = {topic: [] for topic in topics}
    try:
        consumer.assign(assignment)
        await consumer.seek_to_beginning(*assignment)
        ends = await consumer.end_offsets(assignment)
        remaining = {tp for tp in assignment if ends[tp] > 0}
        while remaining:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                found[tp.topic].extend(r for r in records if r.offset < ends[tp])
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return found


def record_bytes(record: Any) -> bytes:
    return b"\n".join(
        [record.key or b"", record.value or b"", *(value for _name, value in record.headers)]
    )


async def test_broker_and_database_restarts_under_load_lose_nothing_and_duplicate_nothing(
    infrastructure: Infrastructure, deployment: Deployment, mail: MailSink
) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    bootstrap, tag = infrastructure.kafka.bootstrap, deployment.run
    processes = deployment.processes
    agents = [f"A-infra-{tag}-{n}" for n in range(AGENTS)]
    service_pids = {service: processes.procs[service].pid for service in SERVICES}

    def client(n: int) -> str:
        return f"client.infra.{tag}.{n}@example.com"

    def phone(n: int) -> str:
        return f"+1 713-555-{100 + n % 100:04d}"

    def progress(step: str) -> None:
        """Shown with the output of a failing run: where it got to, and when."""
        print(f"[{loop.time() - began:6.1f}s] {step}", flush=True)

    # an MLS feed that never drops a closing: idempotent, acks=all, retried until acknowledged
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    issued = await TopicReader(bootstrap, Topic.INVITATIONS_EVENTS).start()
    published = await TopicReader(bootstrap, Topic.REVIEWS_PUBLISHED).start()
    load: list[asyncio.Task[None]] = []
    try:
        publish = EventPublisher(producer)
        await publish_roster(publish, agents, f"infra.{tag}")

        # --- the load: closings at a steady pace, every other client answering once mailed
        sent: list[int] = []  # closing numbers, in order sent
        faults_done, closings_done = asyncio.Event(), asyncio.Event()
        review_ids: dict[int, str] = {}  # client number -> review id from the 201
        answered: set[int] = set()  # includes a submission whose 201 an outage swallowed
        http_failures = Counter[str]()

        async def publish_closings() -> None:
            acks: list[asyncio.Future[Any]] = []
            tail_from: int | None = None
            for n in range(MAX_CLOSINGS):
                if faults_done.is_set():
                    tail_from = n if tail_from is None else tail_from
                    if n - tail_from >= TAIL:
                        break
                event = closing(tag, n, agents[n % AGENTS], client(n), phone(n))
                record = encode(
                    TRANSACTION_CLOSED.ce_type, event, source="/tests/mls", key=event.transaction_id
                )
                acks.append(
                    await producer.send(
                        TRANSACTION_CLOSED.topic,
                        value=record.value,
                        key=record.key,
                        headers=list(record.headers.items()),
                    )
                )
                sent.append(n)
                await asyncio.sleep(PACE_SECONDS)
            await asyncio.gather(*acks)  # raises if the broker never took one
            closings_done.set()

        async def answer(http: httpx.AsyncClient, n: int) -> None:
            message = await mail.wait_for(
                lambda m: client(n) in str(m.get("To", "")).lower(), timeout=CATCH_UP_TIMEOUT
            )
            pin = PIN.search(body_text(message))
            assert pin, body_text(message)
            failed = False
            deadline = loop.time() + CATCH_UP_TIMEOUT
            while loop.time() < deadline:
                try:
                    response = await http.post(
                        "/api/v1/reviews",
                        json={"pin": pin.group(1), "scores": GOOD, "comment": "Smooth sale."},
                    )
                except httpx.HTTPError as exc:
                    http_failures[type(exc).__name__] += 1
                    failed = True
                else:
                    if response.status_code == 201:
                        review_ids[n] = response.json()["review_id"]
                        answered.add(n)
                        return
                    if response.status_code == 409 and failed:
                        answered.add(n)  # an earlier try committed, its answer was lost
                        return
                    if response.status_code != 404:  # 404: invitation not consumed yet
                        http_failures[str(response.status_code)] += 1
                        failed = True
                await asyncio.sleep(0.3)
            raise TimeoutError(f"client {n}: review not accepted")

        async def answer_surveys() -> None:
            async with httpx.AsyncClient(base_url=processes.url("reviews"), timeout=15) as http:
                n = 0
                while not (closings_done.is_set() and n >= len(sent)):
                    if n + ANSWER_LAG < len(sent) or (closings_done.is_set() and n < len(sent)):
                        await answer(http, n)
                        n += 2
                    else:
                        await asyncio.sleep(PACE_SECONDS)

        lag: dict[str, int] = {}

        async def caught_up(closings: int, reviews: set[int]) -> bool:
            """Every closing up to `closings` mailed, every review in `reviews` published."""
            mailed = {str(m.get("To", "")).lower() for m in mail.messages()}
            on_topic = {e.data["transaction_id"] for e in await published.current()}
            lag["unmailed"] = sum(1 for n in range(closings) if client(n) not in mailed)
            lag["unpublished"] = sum(1 for n in reviews if f"T-{tag}-{n}" not in on_topic)
            return not any(lag.values())

        async def catch_up(closings: int, reviews: set[int], what: str) -> None:
            started, shown = loop.time(), loop.time()
            while not await caught_up(closings, reviews):
                if loop.time() - started > CATCH_UP_TIMEOUT:
                    raise TimeoutError(f"{what}: not caught up: {lag}")
                if loop.time() - shown > 5:
                    progress(f"{what}: still to catch up {lag}")
                    shown = loop.time()
                await asyncio.sleep(0.2)

        progress("roster published; load starting")
        load += [
            asyncio.create_task(publish_closings()),
            asyncio.create_task(answer_surveys()),
        ]

        # --- the faults, one after another, each once the load has flowed for a while
        faults: list[dict[str, Any]] = []
        database_stops: list[tuple[float, float]] = []  # (stop issued, stopped), loop time
        for fault in FAULTS:
            mark = len(sent)

            async def lead_in_sent(mark: int = mark) -> bool:
                return len(sent) >= mark + LEAD_IN

            await eventually(lead_in_sent, every=0.1)
            sent_before, answered_before = len(sent), len(answered)
            stopping = loop.time()
            await asyncio.to_thread(infrastructure.stop, fault)
            stopped = loop.time()
            if fault.target == "postgres":
                database_stops.append((stopping, stopped))
            progress(f"{fault}: down in {stopped - stopping:.1f}s")
            await asyncio.sleep(DOWN_SECONDS)
            await asyncio.to_thread(infrastructure.start, fault)
            back = loop.time()
            closings_at_restart, reviews_at_restart = len(sent), set(answered)
            await asyncio.to_thread(processes.wait_ready, CATCH_UP_TIMEOUT)
            ready = loop.time()
            await catch_up(closings_at_restart, reviews_at_restart, str(fault))
            done = loop.time()
            faults.append(
                {
                    "fault": str(fault),
                    "stop_seconds": round(stopped - stopping, 1),
                    "down_seconds": round(back - stopping, 1),
                    "closings_sent_while_down": closings_at_restart - sent_before,
                    "reviews_submitted_while_down": len(reviews_at_restart) - answered_before,
                    "services_ready_after_seconds": round(ready - back, 1),
                    "recovery_seconds": round(done - back, 1),
                }
            )
            progress(
                f"{fault}: back after {back - stopped:.1f}s, services ready {ready - back:.1f}s "
                f"and caught up {done - back:.1f}s later"
            )
        faults_done.set()
        await asyncio.wait_for(asyncio.gather(*load), timeout=CATCH_UP_TIMEOUT)
        progress(f"load over: {len(sent)} closings, {len(answered)} reviews submitted")

        # --- every effect, once
        await catch_up(len(sent), answered, "end of load")

        async def scoring_caught_up() -> bool:
            stored = await fetchval(
                infrastructure.postgres.url,
                f"SELECT count(*) FROM {deployment.schema('scoring')}.reviews",
            )
            return bool(stored == len(answered))

        await eventually(scoring_caught_up, timeout=CATCH_UP_TIMEOUT)

        async def nothing_stranded() -> bool:
            left = [
                await stranded(infrastructure.postgres.url, deployment.schema(s)) for s in SERVICES
            ]
            return all(v == 0 for counts in left for v in counts.values())

        await eventually(nothing_stranded, timeout=60)
        for reader in (issued, published):
            await reader.collect(2)  # a late duplicate would arrive now
        progress("all effects present; counting")

        transactions = [f"T-{tag}-{n}" for n in sent]
        invitations = Counter(
            e.data["transaction_id"] for e in issued.envelopes() if e.type == "invitation.issued.v1"
        )
        emails = Counter(c for c in map(client, sent) for _ in survey_mails(mail, c))
        # The one duplicate the design allows (docs/reliability.md): the SMTP server took a mail
        # and the database went away before the relay's commit marked it sent, so it is sent
        # again after the restart. Such a first copy was accepted as the database was stopping.
        accepted_at: dict[str, list[float]] = {}
        for at, recipients in mail.accepted:
            for recipient in recipients:
                accepted_at.setdefault(recipient.lower(), []).append(at)
        resent_across_restart = {
            c
            for c, count in emails.items()
            if count > 1
            and any(start - 2 <= accepted_at[c][0] <= end + 1 for start, end in database_stops)
        }
        reviews_per_transaction = Counter(
            e.data["transaction_id"] for e in published.envelopes() if e.data["agent_id"] in agents
        )
        ce_ids_per_review: dict[str, set[str]] = {}
        for e in published.envelopes():
            ce_ids_per_review.setdefault(e.data["review_id"], set()).add(e.id)
        answered_transactions = {f"T-{tag}-{n}" for n in answered}

        # --- the scoring store equals a fresh replay of the topics
        live, rebuilt = await live_and_replayed_ratings(
            bootstrap,
            infrastructure.postgres.url,
            deployment.schema("scoring"),
            f"infra_{tag}_replay",
            agents,
        )

        # --- the PII scan: every record of every topic, every line the services logged
        patterns = contact_patterns(tag)
        records = await every_record(bootstrap)
        pii_on_topics = {
            topic: found
            for topic, items in records.items()
            if topic != Topic.MLS_TRANSACTIONS  # the MLS's own input carries the contacts
            and (found := sum(hits(patterns, record_bytes(r)) for r in items))
        }
        # the control: the scan does find the contacts where the contract puts them
        contacts_in_input = sum(
            hits(patterns, record_bytes(r)) for r in records["mls.transactions"]
        )
        pii_in_logs = {
            log.name: found
            for log in sorted(processes.log_dir.glob("*.log"))
            if (found := hits(patterns, log.read_bytes()))
        }
        dead_lettered = {t: len(items) for t, items in records.items() if t.endswith(".dlq")}
        restarted = [s for s in SERVICES if processes.procs[s].pid != service_pids[s]]

        figures: dict[str, Any] = {
            "closings_sent": len(sent),
            "reviews_submitted": len(answered),
            "faults_injected": len(faults),
            "faults": faults,
            "max_recovery_seconds": max(f["recovery_seconds"] for f in faults),
            "invitations_issued": sum(invitations.values()),
            "emails": sum(emails.values()),
            "reviews_published": sum(reviews_per_transaction.values()),
            "lost": {
                "invitations": sum(1 for t in transactions if invitations[t] == 0),
                "emails": sum(1 for n in sent if emails[client(n)] == 0),
                "reviews": sum(1 for t in answered_transactions if reviews_per_transaction[t] == 0),
            },
            "duplicated": {
                "invitations": sum(k - 1 for k in invitations.values() if k > 1),
                "emails": sum(
                    k - 1 for c, k in emails.items() if k > 1 and c not in resent_across_restart
                ),
                "reviews": sum(k - 1 for k in reviews_per_transaction.values() if k > 1)
                + sum(len(ids) - 1 for ids in ce_ids_per_review.values()),
            },
            "dead_lettered": sum(dead_lettered.values()),
            "pii_hits": {"topics": pii_on_topics, "service_logs": pii_in_logs},
            "client_contacts_found_in_mls_input_control": contacts_in_input,
            "emails_sent_again_after_a_database_stop_interrupted_their_commit": sum(
                emails[c] - 1 for c in resent_across_restart
            ),
            "http_errors_seen_by_clients": dict(http_failures),
            "service_restarts": len(restarted),
            "ratings_equal_replay": live == rebuilt,
            "test_seconds": round(loop.time() - began, 1),
            "at": datetime.now(UTC).isoformat(),
        }
        OUTPUT.mkdir(parents=True, exist_ok=True)
        (OUTPUT / "infrastructure-restarts.json").write_text(json.dumps(figures, indent=2))
        print(json.dumps(figures, indent=2))

        assert not restarted, f"services restarted: {restarted}"
        assert figures["lost"] == dict.fromkeys(figures["lost"], 0), figures["lost"]
        assert figures["duplicated"] == dict.fromkeys(figures["duplicated"], 0)
        assert set(invitations) == set(transactions)
        assert set(reviews_per_transaction) == answered_transactions
        assert set(review_ids.values()) <= set(ce_ids_per_review)
        assert dead_lettered == dict.fromkeys(dead_lettered, 0), dead_lettered
        assert live == rebuilt and len(live) == AGENTS
        assert sum(row[5] for row in live) == len(answered)
        assert contacts_in_input >= 2 * len(sent)  # the scan sees an email and a phone each
        assert not pii_on_topics, f"client contact on topics: {pii_on_topics}"
        assert not pii_in_logs, f"client contact in service logs: {pii_in_logs}"
    finally:
        for task in load:
            task.cancel()
        for reader in (issued, published):
            await reader.stop()
        # an idempotent producer retries a batch forever; do not let a dead broker hang here
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await producer.stop()
