"""The portal on the real stack: the four services in-process (fresh schemas, groups started at
the ends of the shared topics, one fixed clock), each served over real HTTP, and the portal in
front of them with the development sign-in. A story is seeded through the public contract: a
roster, a closing whose clients are invited by mail and answer by PIN, another closing missing a
contact, a client for a phone survey, and leads."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devtools.smtp_sink import MailSink, body_text
from services.invitations.app import create_app as invitations_app
from services.invitations.settings import InvitationsSettings
from services.portal.app import create_app as portal_app
from services.portal.settings import PortalSettings
from services.removals.app import create_app as removals_app
from services.removals.settings import RemovalsSettings
from services.reviews.app import create_app as reviews_app
from services.reviews.settings import ReviewsSettings
from services.scoring.app import create_app as scoring_app
from services.scoring.settings import ScoringSettings
from shared.auth import Role, issue_token
from shared.clock import FixedClock
from shared.contracts import AGENT_UPSERTED, LEAD_ASSIGNED, TRANSACTION_CLOSED
from shared.contracts.leads import LeadAssigned
from shared.contracts.mls import AgentUpserted, TransactionClosed
from shared.settings import ServiceSettings
from shared.topics import Topic
from tests.support.browser import served
from tests.support.kafka import EventPublisher, start_group_at_end
from tests.support.waiting import eventually, until_stored

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
CLOSED_AT = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
SECRET = "portal-test-auth-secret-of-32-bytes-or-more"
PEPPER = "portal-test-pepper-of-enough-length-too"
PIN = re.compile(r"\b([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})\b")
GOOD = {
    "communication": 5,
    "friendliness": 4,
    "professionalism": 5,
    "area_knowledge": 4,
    "overall": 5,
}
POOR = {**GOOD, "communication": 2, "overall": 2}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Story:
    """Who and what the seeded story holds (ids are unique per run)."""

    portal: str
    agent: str
    other_agent: str
    moderator: str
    coordinator: str
    surveyor: str
    answered_negative: str
    published_positive: str
    held_for_moderator: str
    to_dispute: str
    missing_transaction: str
    code_transaction: str
    lead: str
    handoff_lead: str
    proof_lead: str
    services: dict[str, str]


def _settings(cls: type[ServiceSettings], run: str, name: str, common: dict[str, Any]) -> Any:
    return cls(
        **common,
        database_schema=f"t_{run}_{name}",
        kafka_group_id=f"test-portal-{run}-{name}",
    )


@pytest.fixture(scope="module")
async def story(
    kafka_bootstrap: str, database_url: str, smtp_sink: MailSink
) -> AsyncIterator[Story]:
    import asyncio

    smtp_sink.bind_loop(asyncio.get_running_loop())
    run = uuid.uuid4().hex[:8]
    clock = FixedClock(NOW)
    common: dict[str, Any] = {
        "environment": "test",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "database_url": database_url,
        "smtp_port": smtp_sink.port,
        "outbox_poll_seconds": 0.05,
        "scheduler_interval_seconds": 0.2,
        "auth_secret": SECRET,
        "token_pepper": PEPPER,
    }
    builders: dict[str, tuple[type[ServiceSettings], Any]] = {
        "invitations": (InvitationsSettings, invitations_app),
        "reviews": (ReviewsSettings, reviews_app),
        "scoring": (ScoringSettings, scoring_app),
        "removals": (RemovalsSettings, removals_app),
    }
    async with AsyncExitStack() as stack:
        urls: dict[str, str] = {}
        settings: dict[str, Any] = {}
        for name, (cls, build) in builders.items():
            settings[name] = _settings(cls, run, name, common)
            await start_group_at_end(kafka_bootstrap, settings[name].group_id, list(Topic))
            app: FastAPI = build(settings[name], clock=clock)
            await stack.enter_async_context(app.router.lifespan_context(app))
            urls[name] = await stack.enter_async_context(served(app))
        portal = portal_app(
            PortalSettings(
                environment="local",
                auth_secret=SECRET,
                invitations_url=urls["invitations"],
                reviews_url=urls["reviews"],
                scoring_url=urls["scoring"],
                removals_url=urls["removals"],
            ),
            clock=clock,
        )
        await stack.enter_async_context(portal.router.lifespan_context(portal))
        portal_url = await stack.enter_async_context(served(portal))
        producer = await _producer(kafka_bootstrap)
        stack.push_async_callback(producer.stop)
        seeded = await _seed(EventPublisher(producer), settings, urls, smtp_sink, run)
        # the seeded invitations were issued at NOW: an hour on, the funnel's period (which
        # ends, exclusive, now) holds them, as it would in any real use
        clock.advance(timedelta(hours=1))
        yield Story(portal=portal_url, services=urls, **seeded)


async def _producer(bootstrap: str) -> Any:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    return producer


def _agent(agent_id: str, name: str) -> AgentUpserted:
    return AgentUpserted(
        agent_id=agent_id,
        name=name,
        email=f"{agent_id.lower()}@realty.example",
        office_id="O-portal",
        member_since=date(2024, 1, 15),
        active=True,
    )


def _closing(
    transaction_id: str, agent_id: str, clients: list[dict[str, Any]], street: str = "12 Elm Rd"
) -> TransactionClosed:
    return TransactionClosed.model_validate(
        {
            "transaction_id": transaction_id,
            "mls_number": f"MLS-{transaction_id}",
            "kind": "sale",
            "closed_at": CLOSED_AT.isoformat(),
            "property": {"street": street, "city": "Houston", "postcode": "77002"},
            "representations": [{"agent_id": agent_id, "side": "buyer", "clients": clients}],
        }
    )


def _lead(lead_id: str, agent_id: str, name: str) -> LeadAssigned:
    return LeadAssigned.model_validate(
        {
            "lead_id": lead_id,
            "agent_id": agent_id,
            "client": {
                "name": name,
                "email": f"{lead_id.lower()}@client.example",
                "phone": None,
                "preferred_contact": "email",
            },
            "assigned_at": CLOSED_AT.isoformat(),
        }
    )


def bearer(sub: str, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}


async def _seed(
    publish: EventPublisher,
    settings: dict[str, Any],
    urls: dict[str, str],
    mail: MailSink,
    run: str,
) -> dict[str, Any]:
    agent, other = f"A-{run}-dana", f"A-{run}-marcus"
    for agent_id, name in ((agent, "Dana Whitfield"), (other, "Marcus Oyelaran")):
        await publish(AGENT_UPSERTED, _agent(agent_id, name))
    for name in ("invitations", "reviews", "scoring"):
        for agent_id in (agent, other):
            await until_stored(settings[name], "agents", "agent_id", agent_id)
    answered, missing, coded = f"T-{run}-1", f"T-{run}-2", f"T-{run}-3"
    emails = {who: f"{who}-{run}@client.example" for who in ("pat", "ana", "lee", "max")}
    await publish(
        TRANSACTION_CLOSED,
        _closing(
            answered,
            agent,
            [{"name": who.title(), "email": email, "phone": None} for who, email in emails.items()],
        ),
    )
    await publish(
        TRANSACTION_CLOSED,
        _closing(
            missing,
            agent,
            [
                {"name": "Kim Park", "email": None, "phone": None},
                {"name": "Sam Ortiz", "email": None, "phone": None},
            ],
        ),
    )
    await publish(
        TRANSACTION_CLOSED,
        _closing(coded, agent, [{"name": "Jo Bell", "email": None, "phone": None}], "4 Oak St"),
    )
    lead, handoff_lead, proof_lead = f"L-{run}-1", f"L-{run}-2", f"L-{run}-3"
    await publish(LEAD_ASSIGNED, _lead(lead, agent, "Rae Quinn"))
    await publish(LEAD_ASSIGNED, _lead(handoff_lead, agent, "Lou Chen"))
    await publish(LEAD_ASSIGNED, _lead(proof_lead, agent, "Quinn Avery"))

    pins = {}
    for who, email in emails.items():

        def to_client(message: EmailMessage, address: str = email) -> bool:
            return address in str(message.get("To", ""))

        message = await mail.wait_for(to_client, timeout=30)
        found = PIN.search(body_text(message))
        assert found, f"no PIN in the mail to {who}"
        pins[who] = found.group(1)
    review_ids = {}
    answers = {
        "pat": (POOR, "Slow to call back, but got there in the end."),
        "ana": (GOOD, "Dana knew every street in the Heights."),
        "lee": (GOOD, "Great! Call me on 713 555 0199 if you want a reference."),
        "max": (GOOD, "Dana sold our house to her own cousin, avoid."),
    }
    async with httpx.AsyncClient() as http:
        for who, (scores, comment) in answers.items():

            async def submitted(
                who: str = who, scores: Any = scores, comment: str = comment
            ) -> bool:
                response = await http.post(
                    f"{urls['reviews']}/api/v1/reviews",
                    json={"pin": pins[who], "scores": scores, "comment": comment},
                )
                if response.status_code == 201:
                    review_ids[who] = response.json()["review_id"]
                return response.status_code == 201

            await eventually(submitted, 30)
        # a phone survey: the agent gives Kim's phone, the invitations service makes the task
        supplied = await http.post(
            f"{urls['invitations']}/api/v1/transactions/{missing}/clients",
            json={"clients": [{"client": 1, "name": "Kim Park", "phone": "+1 713 555 0142"}]},
            headers=bearer(agent, Role.AGENT),
        )
        assert supplied.status_code == 200, supplied.text

        async def leads_arrived() -> bool:
            response = await http.get(
                f"{urls['removals']}/api/v1/leads", headers=bearer(agent, Role.AGENT)
            )
            return len(response.json()["items"]) == 3

        await eventually(leads_arrived, 30)
        handoff = await http.post(
            f"{urls['removals']}/api/v1/removals",
            json={
                "lead_id": handoff_lead,
                "reason": "active_handoff",
                "notes": "Lou is moving to Austin and wants an agent who works there.",
            },
            headers=bearer(agent, Role.AGENT),
        )
        assert handoff.status_code == 201, handoff.text

        async def rated() -> bool:
            response = await http.get(
                f"{urls['scoring']}/api/v1/agents/{agent}/rating", headers=bearer(agent, Role.AGENT)
            )
            return bool(response.json().get("reviews_total") == 2)

        await eventually(rated, 30)
    return {
        "agent": agent,
        "other_agent": other,
        "moderator": f"M-{run}",
        "coordinator": f"C-{run}",
        "surveyor": f"S-{run}",
        "answered_negative": review_ids["pat"],
        "published_positive": review_ids["ana"],
        "held_for_moderator": review_ids["lee"],
        "to_dispute": review_ids["max"],
        "missing_transaction": missing,
        "code_transaction": coded,
        "lead": lead,
        "handoff_lead": handoff_lead,
        "proof_lead": proof_lead,
    }
