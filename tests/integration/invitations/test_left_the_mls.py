"""Agents who left the MLS (docs/design.md 1.7) on real Kafka, PostgreSQL and SMTP: while the
roster marks an agent inactive their closings send no invitation and start no compliance clock,
and an open clock stands still; marked active again, it runs on for the time that was left."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from devtools.smtp_sink import MailSink
from shared.contracts import AGENT_UPSERTED, LEAD_ASSIGNED, REMOVAL_COMPLETED, TRANSACTION_CLOSED
from shared.contracts.mls import TransactionClosed
from shared.contracts.removals import RemovalReason
from shared.topics import Topic
from tests.integration.invitations.conftest import (
    START,
    Service,
    as_agent,
    unique,
)
from tests.integration.invitations.test_invitation_flows import of_agent, rostered_agent, to
from tests.support.builders import (
    agent_upserted,
    lead_assigned,
    removal_completed,
    transaction_closed,
)
from tests.support.waiting import eventually, until_stored

pytestmark = pytest.mark.integration

PARTICIPATION_CHANGED = "agent.participation.changed.v1"


def opted_out_for_non_compliance(agent_id: str) -> Any:
    return lambda e: (
        of_agent(agent_id, PARTICIPATION_CHANGED)(e) and (e.data["reason"] == "non_compliance")
    )


async def never_opted_out(participation: Any, agent_id: str, within: float) -> None:
    """Neither among the events seen so far nor among those arriving `within` seconds."""
    await participation.expect_none(opted_out_for_non_compliance(agent_id), within=within)
    assert not [e for e in participation.envelopes() if opted_out_for_non_compliance(agent_id)(e)]


async def set_active(service: Service, publish_event: Any, agent_id: str, active: bool) -> None:
    """Publish the roster entry and wait until the service has stored it (no event says so)."""
    await publish_event(
        AGENT_UPSERTED, agent_upserted(agent_id).model_copy(update={"active": active})
    )
    conn = await asyncpg.connect(service.settings.database_url)
    try:
        query = f"SELECT active FROM {service.settings.db_schema}.agents WHERE agent_id = $1"

        async def stored() -> bool:
            return bool(await conn.fetchval(query, agent_id) is active)

        await eventually(stored)
    finally:
        await conn.close()


def closed_for_both(
    agent_id: str, clients: list[dict[str, str | None]], other: str, marker: str
) -> TransactionClosed:
    """One closing with a side for `agent_id` and a side for `other`, whose client `marker` is
    mailed once the service has decided both sides (an unreachable second client of `other`
    opens a compliance clock that runs: the timer is seen to work)."""
    ours = transaction_closed(unique("T"), agent_id, clients)
    theirs = transaction_closed("T", other, [{"name": "M", "email": marker}, {"name": "N"}])
    return ours.model_copy(
        update={"representations": ours.representations + theirs.representations}
    )


async def test_an_inactive_agent_s_closing_sends_no_invitation_and_never_opts_them_out(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    agent_id = await rostered_agent(publish_event, participation)
    other = await rostered_agent(publish_event, participation)
    await set_active(service, publish_event, agent_id, False)

    client, marker = f"{unique('pat')}@example.com", f"{unique('m')}@example.com"
    clients: list[dict[str, str | None]] = [
        {"name": "Pat", "email": client},
        {"name": "Sam", "phone": "+1 713 555 0100"},
        {"name": "Kim"},
    ]
    await publish_event(TRANSACTION_CLOSED, closed_for_both(agent_id, clients, other, marker))
    await mail.wait_for(to(marker), timeout=20)  # the same event: our side is decided too
    await mail.wait_for(to(other.lower(), "client contact"), timeout=20)
    assert mail.to(client) == []
    assert mail.to(agent_id.lower()) == []  # no contact request either
    requests = await service.client.get(
        f"/api/v1/agents/{agent_id}/contact-requests", headers=as_agent(agent_id)
    )
    assert requests.json()["items"] == []

    service.clock.set(START + timedelta(days=14, minutes=1))
    await participation.wait_for(opted_out_for_non_compliance(other))
    await never_opted_out(participation, agent_id, within=2.0)
    assert mail.to(agent_id.lower()) == []
    assert mail.to(client) == []

    # back on the roster: nothing is owed for a closing while inactive
    await set_active(service, publish_event, agent_id, True)
    service.clock.set(START + timedelta(days=40))
    await never_opted_out(participation, agent_id, within=2.0)
    assert mail.to(client) == [] and mail.to(agent_id.lower()) == []
    service.clock.set(START)


async def test_an_open_compliance_clock_stops_while_inactive_and_runs_on_when_back(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    invitations = await topic_reader(Topic.INVITATIONS_EVENTS)
    agent_id = await rostered_agent(publish_event, participation)
    other = await rostered_agent(publish_event, participation)
    client, marker = f"{unique('pat')}@example.com", f"{unique('m')}@example.com"
    clients: list[dict[str, str | None]] = [{"name": "Pat", "email": client}, {"name": "Kim"}]
    await publish_event(TRANSACTION_CLOSED, closed_for_both(agent_id, clients, other, marker))
    await mail.wait_for(to(agent_id.lower(), "client contact"), timeout=20)
    await mail.wait_for(to(client), timeout=20)

    await set_active(service, publish_event, agent_id, False)  # the clock stops at START
    listed = await service.client.get(
        f"/api/v1/agents/{agent_id}/contact-requests", headers=as_agent(agent_id)
    )
    assert [(r["deadline"], r["paused"]) for r in listed.json()["items"]] == [
        ("2026-12-04T15:00:00Z", True)
    ]
    service.clock.set(START + timedelta(days=14, minutes=1))
    await participation.wait_for(opted_out_for_non_compliance(other))
    await never_opted_out(participation, agent_id, within=2.0)
    # the invitation already sent stays valid
    assert not [
        e for e in invitations.envelopes() if of_agent(agent_id, "invitation.cancelled.v1")(e)
    ]

    service.clock.set(START + timedelta(days=20))
    await set_active(service, publish_event, agent_id, True)  # 14 days left, as at START
    listed = await service.client.get(
        f"/api/v1/agents/{agent_id}/contact-requests", headers=as_agent(agent_id)
    )
    assert [(r["deadline"], r["paused"]) for r in listed.json()["items"]] == [
        ("2026-12-24T15:00:00Z", False)
    ]
    service.clock.set(START + timedelta(days=33))
    await never_opted_out(participation, agent_id, within=1.0)
    service.clock.set(START + timedelta(days=34, minutes=1))
    opted_out = await participation.wait_for(opted_out_for_non_compliance(agent_id))
    assert opted_out.data["mode"] == "opt_out"
    service.clock.set(START)


async def test_an_inactive_agent_s_completed_removal_sends_no_removal_survey(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    invitations = await topic_reader(Topic.INVITATIONS_EVENTS)
    agent_id = await rostered_agent(publish_event, participation)
    await set_active(service, publish_event, agent_id, False)
    lead_id, email = unique("L"), f"{unique('sam')}@example.com"
    await publish_event(
        LEAD_ASSIGNED,
        lead_assigned(lead_id, agent_id, email, name="Sam", assigned_at=START - timedelta(days=30)),
    )
    await until_stored(service.settings, "leads", "lead_id", lead_id)
    completed = await publish_event(
        REMOVAL_COMPLETED,
        removal_completed(lead_id, agent_id, RemovalReason.OUT_OF_AREA),
    )
    await until_stored(service.settings, "inbox", "ce_id", completed)
    await invitations.expect_none(of_agent(agent_id, "invitation.issued.v1"), within=1.0)
    assert not [e for e in invitations.envelopes() if of_agent(agent_id, "invitation.issued.v1")(e)]
    assert mail.to(email) == []
