"""Erasure reaches removals: operations erase a client in the invitations service, removals acts
on `clients.erasures`, and neither schema keeps anything readable of the client, while the
leads and removal requests stay for the record and the removal flow goes on."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.invitations.app import create_app as create_invitations
from services.invitations.settings import InvitationsSettings
from services.removals.app import create_app as create_removals
from services.removals.handlers import dispatcher as removals_dispatcher
from services.removals.settings import RemovalsSettings
from shared.auth import Role, issue_token
from shared.clock import FixedClock
from shared.contracts import AGENT_UPSERTED, ERASURE_REQUESTED, LEAD_ASSIGNED, TRANSACTION_CLOSED
from shared.contracts.erasures import ErasureRequested
from shared.crypto import PiiCipher
from shared.settings import ServiceSettings
from shared.topics import Topic
from tests.conftest import running_app
from tests.integration.removals.conftest import START, unique
from tests.support.builders import agent_upserted, client, lead_assigned, transaction_closed
from tests.support.kafka import dispatcher_of, start_group_at_end
from tests.support.schema_dump import dump_schema, mentions
from tests.support.waiting import until_stored

pytestmark = pytest.mark.integration

SECRET = "erasure-test-secret-of-at-least-32-bytes"


@dataclass
class Services:
    invitations: httpx.AsyncClient
    invitations_settings: InvitationsSettings
    removals: httpx.AsyncClient
    removals_settings: RemovalsSettings


@pytest.fixture(scope="module")
async def services(
    kafka_bootstrap: str, database_url: str, smtp_sink: Any
) -> AsyncIterator[Services]:
    """The two services that hold a lead's client, each in its own schema and group."""
    invitations_group = f"test-invitations-{uuid.uuid4().hex[:8]}"
    removals_group = f"test-removals-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(kafka_bootstrap, removals_group, removals_dispatcher.subscribed)
    common: dict[str, Any] = {
        "environment": "test",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "database_url": database_url,
        "smtp_port": smtp_sink.port,
        "outbox_poll_seconds": 0.05,
        "scheduler_interval_seconds": 0.2,
        "auth_secret": SECRET,
    }
    invitations = InvitationsSettings(
        **common,
        database_schema=f"t_{uuid.uuid4().hex[:10]}_invitations",
        kafka_group_id=invitations_group,
    )
    removals = RemovalsSettings(
        **common,
        database_schema=f"t_{uuid.uuid4().hex[:10]}_removals",
        kafka_group_id=removals_group,
    )
    clock = FixedClock(START)
    invitations_app = create_invitations(invitations, clock=clock)
    topics = dispatcher_of(invitations_app).subscribed
    await start_group_at_end(kafka_bootstrap, invitations_group, topics)
    async with (
        running_app(invitations_app) as invitations_client,
        running_app(create_removals(removals, clock=clock)) as removals_client,
    ):
        yield Services(invitations_client, invitations, removals_client, removals)


def as_role(role: Role, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}


async def fetchval(settings: ServiceSettings, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(f'SET search_path TO "{settings.db_schema}"')
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def dump(settings: ServiceSettings) -> dict[str, list[str]]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await dump_schema(conn, settings.db_schema, PiiCipher(settings.pii_key))
    finally:
        await conn.close()


async def remove(
    services: Services, agent_id: str, lead_id: str, reason: str, notes: str, **extra: Any
) -> dict[str, Any]:
    response = await services.removals.post(
        "/api/v1/removals",
        json={"lead_id": lead_id, "reason": reason, "notes": notes, **extra},
        headers=as_role(Role.AGENT, agent_id),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_an_erased_client_is_readable_in_neither_schema_and_removals_go_on(
    services: Services, publish_event: Any, topic_reader: Any
) -> None:
    erasures = await topic_reader(Topic.CLIENT_ERASURES)
    agent_id = unique("A")
    name = f"Rowan Erasable {uuid.uuid4().hex[:8]}"
    email = f"{unique('rowan')}@example.com"
    phone = f"+1 832 {random.randint(100, 999)} {random.randint(1000, 9999)}"
    await publish_event(
        AGENT_UPSERTED,
        agent_upserted(agent_id),
    )
    # an earlier sale with this agent (what makes the client a prior client), then three leads:
    # one by email, one the CRM knew only by phone, one still open when the erasure comes
    await publish_event(
        TRANSACTION_CLOSED,
        transaction_closed(
            unique("T"),
            agent_id,
            [client(name, email, phone)],
            closed_at=START - timedelta(days=400),
            mls_number="MLS77",
            street="4 Oak St",
        ),
    )
    by_email, by_phone, still_open = unique("L"), unique("L"), unique("L")
    for lead_id, lead_email in ((by_email, email), (by_phone, None), (still_open, email)):
        await publish_event(
            LEAD_ASSIGNED,
            lead_assigned(lead_id, agent_id, lead_email, phone=phone, name=name, assigned_at=START),
        )
        await until_stored(services.removals_settings, "leads", "lead_id", lead_id)
        await until_stored(services.invitations_settings, "leads", "lead_id", lead_id)

    prior = await remove(
        services,
        agent_id,
        by_email,
        "prior_client",
        f"{name} bought 4 Oak St with me last year; reach them at {phone}.",
        proof={"reference": f"Closing statement of {name}, {email}"},
    )
    decided = await services.removals.post(
        f"/api/v1/removals/{prior['removal_id']}/decision",
        json={"decision": "approve", "note": f"Called {name}: confirmed the 2025 purchase."},
        headers=as_role(Role.COORDINATOR, "C-1"),
    )
    assert decided.status_code == 200, decided.text
    await remove(
        services, agent_id, by_phone, "changed_mind", f"{name} told me by phone they stay put."
    )
    # both removal surveys exist before the erasure: one mailed, one a phone task
    for lead_id in (by_email, by_phone):
        await until_stored(services.invitations_settings, "invitations", "lead_id", lead_id)
    for settings in (services.invitations_settings, services.removals_settings):
        before = await dump(settings)
        for text in (name, email, phone):
            assert mentions(before, text), f"{settings.db_schema} shows no {text!r} before"

    erased = await services.invitations.post(
        "/api/v1/erasures",
        json={"email": email, "phone": phone},
        headers=as_role(Role.OPS, "OPS-1"),
    )
    assert erased.status_code == 200, erased.text
    told = await erasures.wait_for(lambda e: e.data["erasure_id"] == erased.json()["erasure_id"])
    await until_stored(services.removals_settings, "inbox", "ce_id", told.id)

    for settings in (services.invitations_settings, services.removals_settings):
        assert mentions(await dump(settings), name, email, phone) == []
    # the record stays: reasons, statuses, who decided and when
    record = (
        await services.removals.get(
            f"/api/v1/removals/{prior['removal_id']}", headers=as_role(Role.AGENT, agent_id)
        )
    ).json()
    assert (record["reason"], record["status"], record["decided_by"]) == (
        "prior_client",
        "completed",
        "C-1",
    )
    assert [step["step"] for step in record["steps"]] == ["requested", "approved", "completed"]
    assert record["steps"][-1]["note"] == "removed: prior_client"

    # the lead still open is removed like any other, and its client gets no survey
    leads = (
        await services.removals.get("/api/v1/leads", headers=as_role(Role.AGENT, agent_id))
    ).json()["items"]
    open_lead = next(lead for lead in leads if lead["lead_id"] == still_open)
    assert open_lead["client"] is None and open_lead["client_erased_at"] is not None
    later = await remove(
        services, agent_id, still_open, "out_of_area", "Moved out of my service area entirely."
    )
    assert later["status"] == "completed"
    await until_stored(
        services.invitations_settings, "inbox", "ce_id", f"removal:{later['removal_id']}:completed"
    )
    surveys = await fetchval(
        services.invitations_settings,
        "SELECT count(*) FROM invitations WHERE lead_id = $1",
        still_open,
    )
    assert surveys == 0

    # delivered again (a new ce_id): nothing more to erase, nothing breaks
    again = await publish_event(
        ERASURE_REQUESTED, ErasureRequested.model_validate(told.data), ce_id=str(uuid.uuid4())
    )
    await until_stored(services.removals_settings, "inbox", "ce_id", again)
    assert mentions(await dump(services.removals_settings), name, email, phone) == []


async def test_leads_stored_before_phone_indexes_are_found_by_phone(
    services: Services, publish_event: Any
) -> None:
    """Migration 0002 cannot index the phones of leads already stored (SQL has no key): the
    erasure does, the service holding PII_KEY."""
    agent_id, lead_id = unique("A"), unique("L")
    name = f"Ari Older {uuid.uuid4().hex[:8]}"
    phone = f"+1 281 {random.randint(100, 999)} {random.randint(1000, 9999)}"
    await publish_event(
        LEAD_ASSIGNED,
        lead_assigned(lead_id, agent_id, None, phone=phone, name=name, assigned_at=START),
    )
    await until_stored(services.removals_settings, "leads", "lead_id", lead_id)
    await fetchval(
        services.removals_settings,
        "UPDATE leads SET phone_index = NULL, phone_indexed = false WHERE lead_id = $1",
        lead_id,
    )
    cipher = PiiCipher(services.removals_settings.pii_key)
    ce_id = await publish_event(
        ERASURE_REQUESTED,
        ErasureRequested(
            erasure_id=str(uuid.uuid4()),
            requested_at=START,
            client_indexes=[cipher.blind_index(phone)],
            invitation_ids=[],
        ),
    )
    await until_stored(services.removals_settings, "inbox", "ce_id", ce_id)
    assert mentions(await dump(services.removals_settings), name, phone) == []
