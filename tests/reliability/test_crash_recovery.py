"""kill -9 mid-stream: services as processes on the real stack, a steady stream of closings and
reviews, invitations, scoring and reviews each killed and restarted in the middle of it. Afterwards nothing is lost and
nothing is done twice: one invitation and one email per client, one published review per
submission, no event left in an outbox, and the scoring store equal to a fresh replay of the
topics."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devtools.processes import ServiceProcesses
from devtools.smtp_sink import MailSink, body_text
from shared.contracts import TRANSACTION_CLOSED
from shared.topics import Topic
from tests.conftest import free_port
from tests.reliability.steady_load import (
    GOOD,
    OUTPUT,
    PIN,
    UNTHROTTLED,
    closing,
    eventually,
    live_and_replayed_ratings,
    publish_roster,
    service_env,
    start_groups_at_end,
    stranded,
)
from tests.support.kafka import EventPublisher, TopicReader

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

AGENTS = 8
CLOSINGS = 90
REVIEWS = 45


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
        env=service_env(kafka_bootstrap, database_url, smtp_sink.port, **UNTHROTTLED),
        per_service_env=lambda service: {
            "DATABASE_SCHEMA": f"rel_{run}_{service}",
            "KAFKA_GROUP_ID": f"rel-{run}-{service}",
        },
        ports=ports,
        log_dir=Path(tmp_path_factory.mktemp("reliability-logs")),
    )
    try:
        start_groups_at_end(kafka_bootstrap, {s: f"rel-{run}-{s}" for s in ports})
        for name in ports:
            processes.start(name)
        processes.wait_ready(120)
        yield Stack(processes, run, database_url)
    finally:
        processes.stop_all()


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
    await publish_roster(publish_event, agents, tag)
    faults: list[str] = []

    # closings at a steady pace; invitations is killed a third of the way through
    for n in range(CLOSINGS):
        await publish_event(
            TRANSACTION_CLOSED,
            closing(tag, n, agents[n % AGENTS], f"client.{tag}.{n}@example.com"),
        )
        if n == CLOSINGS // 3:
            stack.crash("invitations")
            faults.append("kill -9 invitations while consuming closings")
        await asyncio.sleep(0.02)
    await asyncio.to_thread(stack.processes.wait_ready, 120)
    clients = [f"client.{tag}.{n}@example.com" for n in range(CLOSINGS)]

    async def every_client_mailed() -> bool:
        return all(mail.to(client) for client in clients)

    await eventually(every_client_mailed)

    # clients answer from the PIN in their email; scoring is killed a third of the way through
    async with httpx.AsyncClient(base_url=stack.processes.url("reviews"), timeout=15) as http:
        review_ids = []
        for n, client in enumerate(clients[:REVIEWS]):
            pin = PIN.search(body_text(mail.to(client)[0]))
            assert pin, body_text(mail.to(client)[0])

            async def submitted(code: str = pin.group(1)) -> httpx.Response | None:
                # the email can arrive before reviews has consumed the invitation, and a killed
                # reviews refuses connections until it is back
                try:
                    response = await http.post(
                        "/api/v1/reviews", json={"pin": code, "scores": GOOD, "comment": "Fine."}
                    )
                except httpx.TransportError:
                    return None
                return response if response.status_code == 201 else None

            review_ids.append((await eventually(submitted, timeout=60)).json()["review_id"])
            if n == REVIEWS // 3:
                stack.crash("scoring")
                faults.append("kill -9 scoring while consuming reviews")
            if n == 2 * REVIEWS // 3:  # its outbox relay is publishing the reviews just taken
                stack.crash("reviews")
                faults.append("kill -9 reviews while publishing reviews")
    await asyncio.to_thread(stack.processes.wait_ready, 120)

    async def all_published() -> bool:
        seen = {e.data["review_id"] for e in await published.current() if e.key in agents}
        return seen >= set(review_ids)

    await eventually(all_published)

    async def scoring_caught_up() -> bool:
        stored = await stack.fetchval(
            "scoring",
            "SELECT count(*) FROM {schema}.reviews WHERE agent_id LIKE 'A-rel-" + tag + "-%'",
        )
        unrelayed = await stack.fetchval(
            "scoring", "SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
        )
        return bool(stored == REVIEWS and unrelayed == 0)

    await eventually(scoring_caught_up)

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
        left = await stranded(stack.database_url, stack.schema(service))
        assert left == {"outbox": 0, "mail_outbox": 0}, f"{service}: never relayed or sent {left}"

    # ... and the scoring store equals a fresh replay of the topics
    live, rebuilt = await live_and_replayed_ratings(
        stack.processes.env["KAFKA_BOOTSTRAP_SERVERS"],
        stack.database_url,
        stack.schema("scoring"),
        f"rel_{tag}_replay",
        agents,
    )
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
