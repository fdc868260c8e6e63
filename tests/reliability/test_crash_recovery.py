"""kill -9 mid-stream: services as processes on the real stack, a steady stream of closings and
reviews, a service killed and restarted in the middle of it. Afterwards nothing is lost and
nothing is done twice: one invitation and one email per client, one published review per
submission, no event left in an outbox, and the scoring store equal to a fresh replay of the
topics."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devtools.processes import ServiceProcesses
from devtools.smtp_sink import MailSink, body_text
from services.scoring.domain.publication import policy_for
from services.scoring.replay import replay
from services.scoring.settings import ScoringSettings
from shared.contracts import AGENT_UPSERTED, TRANSACTION_CLOSED
from shared.contracts.mls import AgentUpserted, TransactionClosed
from shared.topics import Topic
from tests.conftest import free_port
from tests.support.kafka import EventPublisher, TopicReader

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

PIN = re.compile(r"\b([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})\b")
GOOD = dict.fromkeys(
    ("communication", "friendliness", "professionalism", "area_knowledge", "overall"), 5
)
AGENTS = 8
CLOSINGS = 90
REVIEWS = 45
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "reliability"


class Stack:
    def __init__(self, processes: ServiceProcesses, run: str, database_url: str) -> None:
        self.processes, self.run, self.database_url = processes, run, database_url

    def schema(self, service: str) -> str:
        return f"rel_{self.run}_{service}"

    def crash(self, service: str) -> None:
        """kill -9, then the same service again on the same schema and consumer group."""
        self.processes.kill(service)
        self.processes.start(service)

    async def fetchval(self, service: str, query: str) -> Any:
        conn = await asyncpg.connect(self.database_url)
        try:
            return await conn.fetchval(query.replace("{schema}", self.schema(service)))
        finally:
            await conn.close()


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, database_url: str, smtp_sink: MailSink, tmp_path_factory: Any
) -> Iterator[Stack]:
    run = uuid.uuid4().hex[:6]
    ports = {name: free_port() for name in ("invitations", "reviews", "scoring")}
    processes = ServiceProcesses(
        env={
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "DATABASE_URL": database_url,
            "SMTP_PORT": str(smtp_sink.port),
            "SCHEDULER_INTERVAL_SECONDS": "0.3",
            "OUTBOX_POLL_SECONDS": "0.05",
        },
        per_service_env=lambda service: {
            "DATABASE_SCHEMA": f"rel_{run}_{service}",
            "KAFKA_GROUP_ID": f"rel-{run}-{service}",
        },
        ports=ports,
        log_dir=Path(tmp_path_factory.mktemp("reliability-logs")),
    )
    try:
        for name in ports:
            processes.start(name)
        processes.wait_ready(120)
        yield Stack(processes, run, database_url)
    finally:
        processes.stop_all()


async def _eventually(check: Callable[[], Awaitable[Any]], timeout: float = 120.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.3)
    return result


def _closing(tag: str, n: int, agent_id: str) -> TransactionClosed:
    return TransactionClosed.model_validate(
        {
            "transaction_id": f"T-{tag}-{n}",
            "mls_number": f"MLS-{tag}-{n}",
            "kind": "sale",
            "closed_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
            "property": {"street": f"{n} Elm Rd", "city": "Houston", "postcode": "77002"},
            "representations": [
                {
                    "agent_id": agent_id,
                    "side": "buyer",
                    "clients": [
                        {"name": "Pat Doe", "email": f"client.{tag}.{n}@example.com", "phone": None}
                    ],
                }
            ],
        }
    )


async def test_kill_9_mid_stream_loses_nothing_and_does_nothing_twice(
    stack: Stack,
    publish_event: EventPublisher,
    topic_reader: Callable[[str], Awaitable[TopicReader]],
    mail: MailSink,
) -> None:
    tag = stack.run
    agents = [f"A-rel-{tag}-{n}" for n in range(AGENTS)]
    issued = await topic_reader(Topic.INVITATIONS_EVENTS)
    published = await topic_reader(Topic.REVIEWS_PUBLISHED)
    for n, agent_id in enumerate(agents):
        await publish_event(
            AGENT_UPSERTED,
            AgentUpserted(
                agent_id=agent_id,
                name=f"Agent {n}",
                email=f"agent.{tag}.{n}@realty.example",
                office_id=f"O-{tag}",
                member_since=(datetime.now(UTC) - timedelta(days=400)).date(),
                active=True,
            ),
        )
    faults: list[str] = []

    # closings at a steady pace; invitations is killed a third of the way through
    for n in range(CLOSINGS):
        await publish_event(TRANSACTION_CLOSED, _closing(tag, n, agents[n % AGENTS]))
        if n == CLOSINGS // 3:
            stack.crash("invitations")
            faults.append("kill -9 invitations while consuming closings")
        await asyncio.sleep(0.02)
    await asyncio.to_thread(stack.processes.wait_ready, 120)
    clients = [f"client.{tag}.{n}@example.com" for n in range(CLOSINGS)]

    async def every_client_mailed() -> bool:
        return all(mail.to(client) for client in clients)

    await _eventually(every_client_mailed)

    # clients answer from the PIN in their email; scoring is killed a third of the way through
    async with httpx.AsyncClient(base_url=stack.processes.url("reviews"), timeout=15) as http:
        review_ids = []
        for n, client in enumerate(clients[:REVIEWS]):
            pin = PIN.search(body_text(mail.to(client)[0]))
            assert pin, body_text(mail.to(client)[0])

            async def submitted(code: str = pin.group(1)) -> httpx.Response | None:
                # the email can arrive before reviews has consumed the invitation
                response = await http.post(
                    "/api/v1/reviews", json={"pin": code, "scores": GOOD, "comment": "Fine."}
                )
                return response if response.status_code == 201 else None

            review_ids.append((await _eventually(submitted, timeout=60)).json()["review_id"])
            if n == REVIEWS // 3:
                stack.crash("scoring")
                faults.append("kill -9 scoring while consuming reviews")
    await asyncio.to_thread(stack.processes.wait_ready, 120)

    async def all_published() -> bool:
        seen = {e.data["review_id"] for e in await published.current() if e.key in agents}
        return seen >= set(review_ids)

    await _eventually(all_published)

    async def scoring_caught_up() -> bool:
        stored = await stack.fetchval(
            "scoring",
            "SELECT count(*) FROM {schema}.reviews WHERE agent_id LIKE 'A-rel-" + tag + "-%'",
        )
        unrelayed = await stack.fetchval(
            "scoring", "SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
        )
        return bool(stored == REVIEWS and unrelayed == 0)

    await _eventually(scoring_caught_up)

    # exactly once, as seen from outside: one invitation and one email per client ...
    await issued.collect(2)
    invitations = Counter(
        e.data["transaction_id"]
        for e in issued.envelopes()
        if e.type == "invitation.issued.v1" and e.data["agent_id"] in agents
    )
    mails = {client: len(mail.to(client)) for client in clients}
    assert sorted(invitations.values()) == [1] * CLOSINGS, invitations
    assert set(mails.values()) == {1}, {c: k for c, k in mails.items() if k != 1}
    # ... one review.published per submission (a redelivery of the same ce_id is not a duplicate)
    ids_per_review: dict[str, set[str]] = {}
    for e in published.envelopes():
        if e.key in agents:
            ids_per_review.setdefault(e.data["review_id"], set()).add(e.id)
    assert {r: len(ids) for r, ids in ids_per_review.items()} == dict.fromkeys(review_ids, 1)
    # ... nothing stranded in any outbox
    for service in ("invitations", "reviews", "scoring"):
        stranded = await stack.fetchval(
            service, "SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
        )
        assert stranded == 0, f"{service}: {stranded} events never relayed"
    unsent = await stack.fetchval(
        "invitations", "SELECT count(*) FROM {schema}.mail_outbox WHERE sent_at IS NULL"
    )
    assert unsent == 0

    # ... and the scoring store equals a fresh replay of the topics
    fresh = ScoringSettings(
        kafka_bootstrap_servers=stack.processes.env["KAFKA_BOOTSTRAP_SERVERS"],
        database_url=stack.database_url,
        database_schema=f"rel_{tag}_replay",
    )
    await replay(fresh, policy_for(None), progress=lambda _line: None)
    columns = "agent_id, stars, status, positive_reviews_3m, positive_reviews_6m, reviews_total"
    conn = await asyncpg.connect(stack.database_url)
    try:
        live, rebuilt = [
            [
                tuple(row)
                for row in await conn.fetch(
                    f"SELECT {columns} FROM {schema}.ratings "
                    "WHERE agent_id = ANY($1::text[]) ORDER BY agent_id",
                    agents,
                )
            ]
            for schema in (stack.schema("scoring"), f"rel_{tag}_replay")
        ]
    finally:
        await conn.close()
    assert live == rebuilt and len(live) == AGENTS
    assert sum(row[5] for row in live) == REVIEWS

    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "crash-recovery.json").write_text(
        json.dumps(
            {
                "closings": CLOSINGS,
                "reviews": REVIEWS,
                "faults": faults,
                "invitations_issued": sum(invitations.values()),
                "emails": sum(mails.values()),
                "reviews_published": len(ids_per_review),
                "lost": CLOSINGS - len(invitations) + REVIEWS - len(ids_per_review),
                "duplicated": sum(invitations.values()) - len(invitations),
                "at": datetime.now(UTC).isoformat(),
            },
            indent=2,
        )
    )
