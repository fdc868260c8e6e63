"""kill -9 mid-stream: services as processes on the real stack, a steady stream of closings and
reviews, invitations, scoring and reviews each killed and restarted in the middle of it. Afterwards nothing is lost and
nothing is done twice: one invitation and one email per client (at-least-once mail: a resent
copy carries the same Message-ID), one published review per submission, no event left in an outbox, and the scoring store equal to a fresh replay of the
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
from shared.auth import Role, issue_token
from shared.contracts import LEAD_ASSIGNED, TRANSACTION_CLOSED
from shared.settings import ServiceSettings
from shared.topics import Topic
from tests.conftest import free_port
from tests.reliability.steady_load import (
    GOOD,
    OUTPUT,
    PIN,
    UNTHROTTLED,
    closing,
    eventually,
    fetchval,
    lead_assigned,
    live_and_replayed_ratings,
    publish_roster,
    service_env,
    start_groups_at_end,
    stranded,
)
from tests.support.kafka import EventPublisher, TopicReader
from tests.support.mails import survey_mails

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
    # Mail is at-least-once (docs/reliability.md): a kill between the SMTP server's acceptance
    # and the relay's commit sends that round again, as a copy with the same Message-ID that
    # mail systems drop. Distinct Message-IDs are the mails a client sees; copies are counted.
    received = {c: [m["Message-ID"] for m in survey_mails(mail, c)] for c in clients}
    distinct = {client: len(set(ids)) for client, ids in received.items()}
    resent = sum(len(ids) - len(set(ids)) for ids in received.values())
    assert sorted(invitations.values()) == [1] * CLOSINGS, invitations
    assert set(distinct.values()) == {1}, {c: k for c, k in distinct.items() if k != 1}
    assert all(ids[0] for ids in received.values()), "a mail without a Message-ID"
    # invitations is killed once: at most one round of the relay, one mail per SMTP connection
    one_round = ServiceSettings.model_fields["smtp_connections"].default
    assert resent <= one_round, f"{resent} copies resent, more than one relay round"
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
                "emails": sum(distinct.values()),
                "email_copies_resent": resent,
                "reviews_published": len(ids_per_review),
                "lost": CLOSINGS - len(invitations) + REVIEWS - len(ids_per_review),
                "duplicated": sum(invitations.values()) - len(invitations),
                "at": datetime.now(UTC).isoformat(),
            },
            indent=2,
        )
    )


REMOVAL_LEADS = 30
REMOVALS_SECRET = "crash-recovery-test-secret-32-bytes!!"


async def test_kill_9_removals_mid_stream_loses_nothing_and_does_nothing_twice(
    kafka_bootstrap: str,
    database_url: str,
    smtp_sink: MailSink,
    publish_event: EventPublisher,
    topic_reader: Callable[[str], Awaitable[TopicReader]],
    tmp_path_factory: Any,
) -> None:
    """Removals killed while consuming leads, and again while agents request removals."""
    run = uuid.uuid4().hex[:6]
    schema, group = f"rel_{run}_removals", f"rel-{run}-removals"
    processes = ServiceProcesses(
        env=service_env(kafka_bootstrap, database_url, smtp_sink.port, AUTH_SECRET=REMOVALS_SECRET),
        per_service_env=lambda service: {"DATABASE_SCHEMA": schema, "KAFKA_GROUP_ID": group},
        ports={"removals": free_port()},
        log_dir=Path(tmp_path_factory.mktemp("removals-logs")),
    )
    await asyncio.to_thread(start_groups_at_end, kafka_bootstrap, {"removals": group})
    events = await topic_reader(Topic.REMOVALS_EVENTS)
    agents = [f"A-relrm-{run}-{n}" for n in range(3)]
    leads = [f"L-rel-{run}-{n}" for n in range(REMOVAL_LEADS)]
    faults: list[str] = []
    processes.start("removals")
    try:
        await asyncio.to_thread(processes.wait_ready, 120)
        for n, lead_id in enumerate(leads):
            await publish_event(
                LEAD_ASSIGNED,
                lead_assigned(
                    lead_id,
                    agents[n % len(agents)],
                    f"lead.{run}.{n}@example.com",
                    assigned_at=datetime.now(UTC),
                ),
            )
            if n == REMOVAL_LEADS // 3:
                processes.kill("removals")
                processes.start("removals")
                faults.append("kill -9 removals while consuming leads")
            await asyncio.sleep(0.02)
        await asyncio.to_thread(processes.wait_ready, 120)

        async def every_lead_known() -> bool:
            query = f"SELECT count(*) FROM {schema}.leads WHERE lead_id LIKE 'L-rel-{run}-%'"
            return bool(await fetchval(database_url, query) == REMOVAL_LEADS)

        await eventually(every_lead_known)
        removal_ids: list[str] = []
        async with httpx.AsyncClient(base_url=processes.url("removals"), timeout=15) as http:
            for n, lead_id in enumerate(leads):
                agent_id = agents[n % len(agents)]
                token = issue_token(REMOVALS_SECRET, agent_id, Role.AGENT)

                async def requested(lead: str = lead_id, bearer: str = token) -> Any:
                    try:  # a killed removals refuses connections until it is back
                        response = await http.post(
                            "/api/v1/removals",
                            json={
                                "lead_id": lead,
                                "reason": "changed_mind",
                                "notes": "The client decided to stay where they live.",
                            },
                            headers={"Authorization": f"Bearer {bearer}"},
                        )
                    except httpx.TransportError:
                        return None
                    return response.json() if response.status_code == 201 else None

                removal_ids.append((await eventually(requested, timeout=60))["removal_id"])
                if n == REMOVAL_LEADS // 3:  # its relay is publishing the removals just taken
                    processes.kill("removals")
                    processes.start("removals")
                    faults.append("kill -9 removals while publishing removals")
        await asyncio.to_thread(processes.wait_ready, 120)

        async def every_removal_completed() -> bool:
            completed = {
                e.data["removal_id"]
                for e in await events.current()
                if e.type == "removal.completed.v1"
            }
            return completed >= set(removal_ids)

        await eventually(every_removal_completed)
        await events.collect(2)
        ours = [e for e in events.envelopes() if e.data.get("removal_id") in set(removal_ids)]
        per_id = Counter(e.id for e in ours)
        kinds = Counter((e.data["removal_id"], e.type) for e in ours)
        left = await stranded(database_url, schema)
    finally:
        processes.stop_all()
    assert set(per_id.values()) == {1}, "an event published twice"
    for removal_id in removal_ids:
        assert kinds[(removal_id, "removal.requested.v1")] == 1
        assert kinds[(removal_id, "removal.completed.v1")] == 1
    assert left == {"outbox": 0, "mail_outbox": 0}, f"removals: never relayed {left}"
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "crash-recovery-removals.json").write_text(
        json.dumps(
            {
                "leads": REMOVAL_LEADS,
                "removals": len(removal_ids),
                "faults": faults,
                "removal_events": len(per_id),
                "lost": 2 * len(removal_ids) - len(set(kinds)),
                "duplicated": sum(per_id.values()) - len(per_id),
                "at": datetime.now(UTC).isoformat(),
            },
            indent=2,
        )
    )
