"""Losing a Kafka broker under load: a three-node KRaft cluster, every topic replicated three times
with min.insync.replicas=2, the invitations, reviews and scoring services as processes, a steady
stream of closings and survey answers, and the active controller killed with kill -9 in the middle
of it. While the node is down the services keep working and acks=all writes keep succeeding;
when it restarts it rejoins every in-sync replica set; and nothing is lost or done twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from devtools.processes import ServiceProcesses
from devtools.smtp_sink import MailSink, body_text
from shared.auth import Role, issue_token
from shared.cloudevents import encode
from shared.contracts import TRANSACTION_CLOSED
from shared.topics import Topic, all_topic_specs, ensure_topics
from tests.reliability.cluster import (
    KafkaCluster,
    PartitionState,
    coordinators,
    partition_states,
    topic_configs,
    wait_until,
)
from tests.reliability.steady_load import UNTHROTTLED, closing, publish_roster
from tests.support.kafka import EventPublisher, TopicReader
from tests.support.mails import survey_mails

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

AGENTS = 6
CLOSINGS = 120
KILL_AT = 40  # closings published before the kill; the rest go to a cluster one node short
REVIEWS = 60
PACE_SECONDS = 0.15
HTTP_PORTS = {"invitations": 8301, "reviews": 8302, "scoring": 8303}
SECRET = "broker-cluster-test-secret-of-32-bytes!!"
STRICT_TOPIC = "cluster-probe.min-isr-3"
"""Replicated three times but demanding three in sync: the control that shows acks=all waits."""
PIN = re.compile(r"\b([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})\b")
GOOD = dict.fromkeys(
    ("communication", "friendliness", "professionalism", "area_knowledge", "overall"), 5
)
SERVICE_TOPICS = [spec.name for spec in all_topic_specs()]
INTERNAL_TOPICS = ["__consumer_offsets", "__transaction_state"]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "reliability"


@pytest.fixture(scope="module")
async def cluster() -> AsyncIterator[KafkaCluster]:
    kafka = KafkaCluster(base_port=9792)
    try:
        await asyncio.to_thread(kafka.start)
        await ensure_topics(kafka.bootstrap, replication_factor=3, min_insync_replicas=2)
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(STRICT_TOPIC, 1, 3, topic_configs={"min.insync.replicas": "3"})]
            )
        finally:
            await admin.close()
        yield kafka
    finally:
        await asyncio.to_thread(kafka.stop)


@dataclass
class Deployment:
    processes: ServiceProcesses
    run: str
    database_url: str

    def schema(self, service: str) -> str:
        return f"brk_{self.run}_{service}"

    def group(self, service: str) -> str:
        return f"brk-{self.run}-{service}"

    def relay(self, service: str) -> str:
        """The outbox relay's transactional id (shared.outbox names it after service and schema)."""
        return f"outbox-relay.{service}.{self.schema(service)}"

    async def count(self, service: str, query: str) -> int:
        conn = await asyncpg.connect(self.database_url)
        try:
            return int(await conn.fetchval(query.replace("{schema}", self.schema(service))))
        finally:
            await conn.close()


@pytest.fixture(scope="module")
def deployment(
    cluster: KafkaCluster, database_url: str, smtp_sink: MailSink, tmp_path_factory: Any
) -> Iterator[Deployment]:
    run = uuid.uuid4().hex[:6]
    processes = ServiceProcesses(
        env={
            "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap,
            "DATABASE_URL": database_url,
            "SMTP_PORT": str(smtp_sink.port),
            "AUTH_SECRET": SECRET,
            "SCHEDULER_INTERVAL_SECONDS": "0.3",
            "OUTBOX_POLL_SECONDS": "0.05",
            **UNTHROTTLED,
        },
        per_service_env=lambda service: {
            "DATABASE_SCHEMA": f"brk_{run}_{service}",
            "KAFKA_GROUP_ID": f"brk-{run}-{service}",
        },
        ports=HTTP_PORTS,
        log_dir=Path(tmp_path_factory.mktemp("broker-cluster-logs")),
    )
    try:
        for name in HTTP_PORTS:
            processes.start(name)
        processes.wait_ready(180)
        yield Deployment(processes, run, database_url)
    finally:
        processes.stop_all()


def addressed_to(address: str) -> Callable[[EmailMessage], bool]:
    return lambda message: address in str(message.get("To", "")).lower()


async def acks_all_write(bootstrap: str, topic: str, timeout_ms: int) -> None:
    """One acks=all write on its own producer. Not idempotent on purpose: aiokafka never expires
    an idempotent producer's batch (it retries until the write succeeds), so only a plain one
    can report that the brokers refused the write."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", request_timeout_ms=timeout_ms
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"probe")
    finally:
        await producer.stop()


def fully_replicated(states: list[PartitionState]) -> bool:
    return bool(states) and all(len(s.replicas) == 3 and s.isr == s.replicas for s in states)


async def test_killing_the_controller_under_load_loses_nothing_and_duplicates_nothing(
    cluster: KafkaCluster, deployment: Deployment, mail: MailSink
) -> None:
    loop = asyncio.get_running_loop()
    bootstrap, tag = cluster.bootstrap, deployment.run
    agents = [f"A-brk-{tag}-{n}" for n in range(AGENTS)]
    clients = [f"client.brk.{tag}.{n}@example.com" for n in range(CLOSINGS)]
    began = loop.time()

    def progress(step: str) -> None:
        """Shown with the output of a failing run: where it got to, and when."""
        print(f"[{loop.time() - began:6.1f}s] {step}", flush=True)

    # --- the replication the test relies on, as the brokers report it
    async def internal_topics_exist() -> bool:
        # created on the services' first group join and first transaction
        found = {s.topic for s in await partition_states(bootstrap, INTERNAL_TOPICS)}
        return found == set(INTERNAL_TOPICS)

    await wait_until(internal_topics_exist, timeout=120)
    everything = await partition_states(bootstrap, [*SERVICE_TOPICS, *INTERNAL_TOPICS])
    assert fully_replicated(everything), [s for s in everything if len(s.isr) != 3]
    configs = await topic_configs(
        bootstrap, [*SERVICE_TOPICS, "__transaction_state"], ["min.insync.replicas"]
    )
    assert {name: c["min.insync.replicas"] for name, c in configs.items()} == dict.fromkeys(
        [*SERVICE_TOPICS, "__transaction_state"], "2"
    )
    await acks_all_write(bootstrap, STRICT_TOPIC, 30_000)  # the control works with 3 in sync

    progress("replication checked: RF 3, ISR 3, min.insync.replicas 2")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    readers = {
        topic: await TopicReader(bootstrap, topic).start()
        for topic in (
            Topic.MLS_TRANSACTIONS,
            Topic.INVITATIONS_EVENTS,
            Topic.REVIEWS_PUBLISHED,
            Topic.RATINGS,
        )
    }
    invitations_url = deployment.processes.url("invitations")
    load: list[asyncio.Task[None]] = []
    try:
        # --- the roster, every agent public so their ratings carry numbers
        publish = EventPublisher(producer)
        await publish_roster(publish, agents, f"brk.{tag}")
        async with httpx.AsyncClient(base_url=invitations_url, timeout=15) as http:
            for agent_id in agents:
                token = issue_token(SECRET, agent_id, Role.AGENT)

                async def made_public(agent_id: str = agent_id, token: str = token) -> bool:
                    response = await http.put(
                        f"/api/v1/agents/{agent_id}/participation",
                        json={"mode": "opt_in_public"},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    return response.status_code == 200  # 404 until the roster is consumed

                await wait_until(made_public, timeout=120)

        # --- the load: closings at a steady pace from an acks=all idempotent producer, and
        # clients answering their survey as their email arrives
        kill_point, node_killed = asyncio.Event(), asyncio.Event()
        ack_latencies: list[float] = []
        review_ids: dict[int, str] = {}
        answered_while_down: list[int] = []

        async def publish_closings() -> None:
            acks: list[asyncio.Future[Any]] = []
            for n in range(CLOSINGS):
                if n == KILL_AT:
                    kill_point.set()
                    await node_killed.wait()
                event = closing(f"brk-{tag}", n, agents[n % AGENTS], clients[n])
                record = encode(
                    TRANSACTION_CLOSED.ce_type,
                    event,
                    source="/tests/mls",
                    key=event.transaction_id,
                )
                sent = loop.time()
                ack = await producer.send(
                    TRANSACTION_CLOSED.topic,
                    value=record.value,
                    key=record.key,
                    headers=list(record.headers.items()),
                )
                ack.add_done_callback(
                    lambda _f, sent=sent: ack_latencies.append(loop.time() - sent)
                )
                acks.append(ack)
                await asyncio.sleep(PACE_SECONDS)
            await asyncio.gather(*acks)  # raises if any write was not acknowledged

        async def answer_surveys() -> None:
            async with httpx.AsyncClient(
                base_url=deployment.processes.url("reviews"), timeout=15
            ) as http:
                for n in range(REVIEWS):
                    message = await mail.wait_for(addressed_to(clients[n]), timeout=240)
                    pin = PIN.search(body_text(message))
                    assert pin, body_text(message)

                    async def submitted(n: int = n, code: str = pin.group(1)) -> bool:
                        response = await http.post(
                            "/api/v1/reviews",
                            json={"pin": code, "scores": GOOD, "comment": "Smooth sale."},
                        )
                        if response.status_code == 201:
                            review_ids[n] = response.json()["review_id"]
                        return response.status_code == 201

                    await wait_until(submitted, timeout=120)
                    if node_killed.is_set():
                        answered_while_down.append(n)

        progress("roster published, agents public; load starting")
        closings_task = asyncio.create_task(publish_closings())
        reviews_task = asyncio.create_task(answer_surveys())
        load += [closings_task, reviews_task]

        # --- kill -9 the active controller, whatever else it leads
        await asyncio.wait_for(kill_point.wait(), timeout=120)
        victim = await asyncio.to_thread(cluster.active_controller)
        before = await partition_states(bootstrap, [*SERVICE_TOPICS, *INTERNAL_TOPICS])
        victim_roles = {
            "active_controller": True,
            "partition_leaderships": sum(s.leader == victim for s in before),
            "of_partitions": len(before),
            "coordinates": sorted(
                name
                for name, node in (
                    await coordinators(
                        bootstrap,
                        [deployment.group(s) for s in HTTP_PORTS],
                        [deployment.relay(s) for s in HTTP_PORTS],
                    )
                ).items()
                if node == victim
            ),
        }
        killed_at = loop.time()
        mails_before_kill = len(mail.messages())
        await asyncio.to_thread(cluster.kill, victim)
        node_killed.set()

        async def failed_over() -> bool:
            states = await partition_states(bootstrap, [*SERVICE_TOPICS, *INTERNAL_TOPICS])
            return all(s.leader not in (victim, -1) and victim not in s.isr for s in states)

        failover_seconds = await wait_until(failed_over, timeout=120)
        progress(f"killed node {victim}; leaders moved in {failover_seconds:.1f}s")
        while_down = await partition_states(bootstrap, SERVICE_TOPICS)
        assert {len(s.isr) for s in while_down} == {2}
        # the control: with two of three in sync, a topic demanding three refuses acks=all ...
        with pytest.raises(KafkaError):
            await acks_all_write(bootstrap, STRICT_TOPIC, 5_000)

        # ... while every closing sent to the services' topics (min.insync=2) is acknowledged,
        # and the services do all their work with the node still down
        progress("control refused with 2 of 3 in sync; waiting for the load to finish")
        await asyncio.wait_for(closings_task, timeout=300)
        await asyncio.wait_for(reviews_task, timeout=300)

        async def every_client_mailed() -> bool:
            return all(mail.to(client) for client in clients)

        async def every_review_published() -> bool:
            seen = {e.data["review_id"] for e in await readers[Topic.REVIEWS_PUBLISHED].current()}
            return seen >= set(review_ids.values())

        expected_totals = Counter(agents[n % AGENTS] for n in range(REVIEWS))

        async def every_rating_current() -> bool:
            latest = {
                e.key: e.data
                for e in await readers[Topic.RATINGS].current()
                if e.type == "rating.updated.v1"
            }
            return all(
                latest.get(agent, {}).get("reviews_total") == total
                for agent, total in expected_totals.items()
            )

        progress("load sent and acknowledged; waiting for its effects with the node down")
        await wait_until(every_client_mailed, timeout=180)
        await wait_until(every_review_published, timeout=180)
        await wait_until(every_rating_current, timeout=180)
        mails_while_down = len(mail.messages()) - mails_before_kill
        down_work_done_after = loop.time() - killed_at

        # --- restart the node: it rejoins every in-sync replica set
        progress("all effects present with the node down; restarting it")
        restarted_at = loop.time()
        await asyncio.to_thread(cluster.start_node, victim)
        node_answering_seconds = loop.time() - restarted_at

        async def rejoined() -> bool:
            return fully_replicated(
                await partition_states(bootstrap, [*SERVICE_TOPICS, *INTERNAL_TOPICS])
            )

        await wait_until(rejoined, timeout=180)
        rejoin_seconds = loop.time() - restarted_at
        node_down_seconds = restarted_at - killed_at
        progress("node rejoined every ISR")
        await acks_all_write(bootstrap, STRICT_TOPIC, 30_000)  # the control succeeds again

        # --- nothing lost, nothing twice (read_committed readers; a late duplicate would
        # arrive within the extra seconds collected here)
        for reader in readers.values():
            await reader.collect(3)
        inputs = Counter(
            e.data["transaction_id"]
            for e in readers[Topic.MLS_TRANSACTIONS].envelopes()
            if e.type == TRANSACTION_CLOSED.ce_type
        )
        invitations = Counter(
            e.data["transaction_id"]
            for e in readers[Topic.INVITATIONS_EVENTS].envelopes()
            if e.type == "invitation.issued.v1"
        )
        reviews = Counter(e.data["review_id"] for e in readers[Topic.REVIEWS_PUBLISHED].envelopes())
        emails = Counter(client for client in clients for _ in survey_mails(mail, client))
        transactions = [f"T-brk-{tag}-{n}" for n in range(CLOSINGS)]
        figures: dict[str, Any] = {
            "closings_sent": CLOSINGS,
            "closings_sent_while_node_down": CLOSINGS - KILL_AT,
            "reviews_submitted": len(review_ids),
            "reviews_submitted_while_node_down": len(answered_while_down),
            "emails_sent_while_node_down": mails_while_down,
            "killed_node": victim,
            "killed_node_roles": victim_roles,
            "failover_seconds": round(failover_seconds, 1),
            "max_closing_ack_seconds": round(max(ack_latencies), 2),
            "all_work_done_with_node_down_after_seconds": round(down_work_done_after, 1),
            "node_down_seconds": round(node_down_seconds, 1),
            "restarted_node_answering_seconds": round(node_answering_seconds, 1),
            "rejoin_isr_3_seconds": round(rejoin_seconds, 1),
            "lost": {
                "closings": sum(1 for t in transactions if inputs[t] == 0),
                "invitations": sum(1 for t in transactions if invitations[t] == 0),
                "emails": sum(1 for c in clients if emails[c] == 0),
                "reviews": sum(1 for r in review_ids.values() if reviews[r] == 0),
            },
            "duplicated": {
                "closings": sum(k - 1 for k in inputs.values() if k > 1),
                "invitations": sum(k - 1 for k in invitations.values() if k > 1),
                "emails": sum(k - 1 for k in emails.values() if k > 1),
                "reviews": sum(k - 1 for k in reviews.values() if k > 1),
            },
            "at": datetime.now(UTC).isoformat(),
        }
        OUTPUT.mkdir(parents=True, exist_ok=True)
        (OUTPUT / "broker-cluster.json").write_text(json.dumps(figures, indent=2))
        print(json.dumps(figures, indent=2))

        assert len(review_ids) == REVIEWS
        assert answered_while_down, "no survey was answered while the node was down"
        assert figures["lost"] == dict.fromkeys(figures["lost"], 0), figures["lost"]
        assert figures["duplicated"] == dict.fromkeys(figures["duplicated"], 0)
        assert set(inputs) == set(transactions)
        assert set(invitations) == set(transactions)
        assert set(reviews) == set(review_ids.values())
        stored = await deployment.count(
            "scoring", "SELECT count(*) FROM {schema}.reviews WHERE agent_id LIKE 'A-brk-%'"
        )
        assert stored == REVIEWS
        for service in HTTP_PORTS:
            stranded = await deployment.count(
                service, "SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
            )
            assert stranded == 0, f"{service}: {stranded} events never relayed"
        unsent = await deployment.count(
            "invitations", "SELECT count(*) FROM {schema}.mail_outbox WHERE sent_at IS NULL"
        )
        assert unsent == 0
    finally:
        for task in load:
            task.cancel()
        for reader in readers.values():
            await reader.stop()
        # an idempotent producer retries a batch forever; do not let a broken cluster hang here
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await producer.stop()
