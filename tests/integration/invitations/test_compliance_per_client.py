"""Compliance per client (HAR), by any route, and unsubscribe links that keep working
(AgentTracker), on the real stack with the service's clock moved."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from devtools.smtp_sink import MailSink, body_text
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

UNSUBSCRIBE = re.compile(r"(/unsubscribe\?token=[A-Za-z0-9_-]+)")


def opted_out(agent_id: str) -> Any:
    def matches(envelope: Any) -> bool:
        return bool(
            of_agent(agent_id, "agent.participation.changed.v1")(envelope)
            and envelope.data["reason"] == "non_compliance"
        )

    return matches


async def open_requests(service: Service, agent_id: str) -> list[dict[str, Any]]:
    listed = await service.client.get(
        f"/api/v1/agents/{agent_id}/contact-requests", headers=as_agent(agent_id)
    )
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def test_an_agent_code_for_the_missing_client_keeps_the_agent_in(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    agent_id = await rostered_agent(publish_event, participation)
    marker = await rostered_agent(publish_event, participation)  # supplies nothing
    transaction_id = unique("T")
    await publish_event(
        TRANSACTION_CLOSED, transaction_closed(transaction_id, agent_id, [{"name": "Pat Doe"}])
    )
    await publish_event(TRANSACTION_CLOSED, transaction_closed(unique("T"), marker, []))
    await mail.wait_for(to(agent_id.lower(), "client contact"), timeout=20)
    await mail.wait_for(to(marker.lower(), "client contact"), timeout=20)

    email = f"{unique('pat')}@example.com"
    made = await service.client.post(
        f"/api/v1/agents/{agent_id}/codes",
        json={"client_email": email, "street": "12 Elm Rd", "postcode": "77002"},
        headers=as_agent(agent_id),
    )
    assert made.status_code == 201, made.text
    await mail.wait_for(to(email), timeout=20)
    assert await open_requests(service, agent_id) == []
    assert made.json()["clients_missing"] == []

    service.clock.set(START + timedelta(days=14, minutes=1))
    await participation.wait_for(opted_out(marker))
    await mail.wait_for(to(marker.lower(), "opted out"), timeout=10)
    assert not [e for e in participation.envelopes() if opted_out(agent_id)(e)]
    assert not [m for m in mail.to(agent_id.lower()) if "Reminder" in str(m["Subject"])]
    service.clock.set(START)


async def test_a_contact_for_one_client_leaves_the_others_missing_and_named_in_the_mails(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    agent_id = await rostered_agent(publish_event, participation)
    transaction_id = unique("T")
    await publish_event(
        TRANSACTION_CLOSED,
        transaction_closed(transaction_id, agent_id, [{"name": "Pat Doe"}, {"name": "Kim Lee"}]),
    )
    asked = await mail.wait_for(to(agent_id.lower(), "client contact"), timeout=20)

    # the request's older form: no client number, the client's name as the MLS gave it
    supplied = await service.client.post(
        f"/api/v1/transactions/{transaction_id}/clients",
        json={"clients": [{"name": "Pat Doe", "email": f"{unique('pat')}@example.com"}]},
        headers=as_agent(agent_id),
    )
    assert supplied.status_code == 200, supplied.text
    assert supplied.json()["invitations_sent"] == 1
    [request] = await open_requests(service, agent_id)
    assert request["transaction_id"] == transaction_id
    assert [c["name"] for c in request["clients_missing"]] == ["Kim Lee"]
    assert supplied.json()["clients_missing"] == [
        {"client": 2, "name": "Kim Lee", "label": "Kim Lee"}
    ]
    assert "Pat Doe" in body_text(asked) and "Kim Lee" in body_text(asked)

    service.clock.set(START + timedelta(days=7, minutes=1))
    reminder = body_text(await mail.wait_for(to(agent_id.lower(), "Reminder"), timeout=10))
    assert "Kim Lee" in reminder and "Pat Doe" not in reminder

    service.clock.set(START + timedelta(days=14, minutes=1))
    await participation.wait_for(opted_out(agent_id))
    notice = body_text(await mail.wait_for(to(agent_id.lower(), "opted out"), timeout=10))
    assert "Kim Lee" in notice and "Pat Doe" not in notice
    service.clock.set(START)


async def test_each_client_satisfied_by_its_own_route_closes_the_request(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    agent_id = await rostered_agent(publish_event, participation)
    transaction_id = unique("T")
    listed = f"{unique('ann')}@example.com"
    await publish_event(
        TRANSACTION_CLOSED,
        transaction_closed(
            transaction_id,
            agent_id,
            [{"name": "Ann Roe", "email": listed}, {"name": "Kim Lee"}, {"name": "Lee Poe"}],
        ),
    )
    await mail.wait_for(to(listed), timeout=20)
    await mail.wait_for(to(agent_id.lower(), "client contact"), timeout=20)
    [request] = await open_requests(service, agent_id)
    assert [(c["client"], c["name"]) for c in request["clients_missing"]] == [
        (2, "Kim Lee"),
        (3, "Lee Poe"),
    ]

    phoned = await service.client.post(
        f"/api/v1/transactions/{transaction_id}/clients",
        json={"clients": [{"client": 2, "name": "Kim", "phone": "+1 713 555 0102"}]},
        headers=as_agent(agent_id),
    )
    assert phoned.status_code == 200, phoned.text
    assert phoned.json()["phone_tasks"] == 1
    assert [c["client"] for c in phoned.json()["clients_missing"]] == [3]
    unknown = await service.client.post(
        f"/api/v1/agents/{agent_id}/codes",
        json={
            "client_email": f"{unique('x')}@example.com",
            "street": "12 Elm Rd",
            "postcode": "77002",
            "client": 4,
        },
        headers=as_agent(agent_id),
    )
    assert unknown.status_code == 422
    coded = await service.client.post(
        f"/api/v1/agents/{agent_id}/codes",
        json={
            "client_email": f"{unique('lee')}@example.com",
            "street": "12 Elm Rd",
            "postcode": "77002",
            "client": 3,
        },
        headers=as_agent(agent_id),
    )
    assert coded.status_code == 201, coded.text
    assert coded.json()["clients_missing"] == []
    assert await open_requests(service, agent_id) == []


async def test_the_first_mail_s_unsubscribe_link_still_works_after_the_reminder(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    invitations = await topic_reader(Topic.INVITATIONS_EVENTS)
    agent_id = await rostered_agent(publish_event, participation)
    email = f"{unique('pat')}@example.com"
    await publish_event(
        TRANSACTION_CLOSED,
        transaction_closed(unique("T"), agent_id, [{"name": "Pat", "email": email}]),
    )
    first = await mail.wait_for(to(email), timeout=20)
    in_body = UNSUBSCRIBE.search(body_text(first))
    in_header = UNSUBSCRIBE.search(str(first["List-Unsubscribe"]))
    assert in_body is not None and in_header is not None

    service.clock.set(START + timedelta(days=7, hours=1))
    reminder = await mail.wait_for(to(email, "Reminder"), timeout=10)
    in_reminder = UNSUBSCRIBE.search(str(reminder["List-Unsubscribe"]))
    assert in_reminder is not None and in_reminder.group(1) != in_header.group(1)

    assert (await service.client.get(in_body.group(1))).status_code == 200
    one_click = await service.client.post(
        in_header.group(1),
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert one_click.status_code == 200, one_click.text
    cancelled = await invitations.wait_for(of_agent(agent_id, "invitation.cancelled.v1"))
    assert cancelled.data["reason"] == "unsubscribed"
    # clicked again later, from either mail: still a working link
    assert (await service.client.post(in_body.group(1))).status_code == 200
    assert (await service.client.post(in_reminder.group(1))).status_code == 200
    service.clock.set(START)
