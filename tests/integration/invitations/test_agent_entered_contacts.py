"""Contacts an agent enters are bounded and checked (docs/design.md §3.3), on the real stack:
refused with a reason the agent reads, or flagged on `invitation.issued.v1` for reviews."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.smtp_sink import MailSink
from shared.contracts import TRANSACTION_CLOSED
from shared.topics import Topic
from tests.integration.invitations.conftest import (
    START,
    Service,
    as_agent,
    unique,
)
from tests.integration.invitations.test_invitation_flows import of_agent, rostered_agent, to
from tests.support.builders import transaction_closed

pytestmark = pytest.mark.integration


async def closing_owing(
    service: Service, publish_event: Any, mail: MailSink, agent_id: str, clients: list[Any]
) -> str:
    transaction_id = unique("T")
    await publish_event(TRANSACTION_CLOSED, transaction_closed(transaction_id, agent_id, clients))
    await mail.wait_for(to(agent_id.lower(), "client contact"), timeout=20)
    return transaction_id


async def supply(service: Service, agent_id: str, transaction_id: str, email: str) -> Any:
    return await service.client.post(
        f"/api/v1/transactions/{transaction_id}/clients",
        json={"clients": [{"name": "Pat Doe", "email": email}]},
        headers=as_agent(agent_id),
    )


async def test_own_domain_disposable_and_too_many_contacts_are_refused_with_a_reason(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    agent_id = await rostered_agent(publish_event, participation)
    transaction_id = await closing_owing(
        service, publish_event, mail, agent_id, [{"name": "Pat Doe"}]
    )

    own = await supply(service, agent_id, transaction_id, "pat.doe@realty.example")
    assert own.status_code == 422, own.text
    assert own.headers["content-type"].startswith("application/problem+json")
    assert own.json()["code"] == "own_mail_domain"
    assert "your own mail domain" in own.json()["detail"]

    throwaway = await supply(service, agent_id, transaction_id, "pat.doe@mailinator.com")
    assert throwaway.status_code == 422, throwaway.text
    assert throwaway.json()["code"] == "disposable_address"

    first = await supply(service, agent_id, transaction_id, f"{unique('pat')}@example.com")
    assert first.status_code == 200, first.text
    second = await supply(service, agent_id, transaction_id, f"{unique('sam')}@example.com")
    assert second.status_code == 422, second.text
    assert second.json()["code"] == "too_many_contacts"
    assert "names 1 client(s)" in second.json()["detail"]

    code = await service.client.post(
        f"/api/v1/agents/{agent_id}/codes",
        json={
            "client_email": f"{unique('kim')}@example.com",
            "street": "12 Elm Rd",
            "postcode": "77002",
        },
        headers=as_agent(agent_id),
    )
    assert code.status_code == 422, code.text
    assert code.json()["code"] == "too_many_contacts"
    metrics = (await service.client.get("/metrics")).text
    for signal in ("own_mail_domain", "disposable_address", "too_many_contacts"):
        labels = f'outcome="refused",service="invitations",signal="{signal}"'
        assert f"ratings_trust_signals_total{{{labels}}}" in metrics


async def test_an_address_agents_gave_for_another_agent_s_client_is_flagged_for_reviews(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    invitations = await topic_reader(Topic.INVITATIONS_EVENTS)
    first = await rostered_agent(publish_event, participation)
    second = await rostered_agent(publish_event, participation)
    reviewer = f"{unique('friend')}@example.com"

    for agent_id in (first, second):
        transaction_id = await closing_owing(service, publish_event, mail, agent_id, [])
        supplied = await supply(service, agent_id, transaction_id, reviewer)
        assert supplied.status_code == 200, supplied.text

    issued_first = await invitations.wait_for(of_agent(first, "invitation.issued.v1"))
    issued_second = await invitations.wait_for(of_agent(second, "invitation.issued.v1"))
    assert issued_first.data["trust_flags"] == []
    assert issued_second.data["trust_flags"] == ["contact_reused_across_agents"]
