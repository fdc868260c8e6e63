"""The invitations service on real Kafka, PostgreSQL and SMTP, time driven by its FixedClock."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest

from devtools.smtp_sink import MailSink, body_text
from shared.cloudevents import Envelope
from shared.contracts import AGENT_UPSERTED, TRANSACTION_CLOSED
from shared.crypto import SecretHasher
from shared.topics import Topic, dlq
from tests.integration.invitations.conftest import (
    PEPPER,
    START,
    Service,
    as_agent,
    unique,
)
from tests.support.builders import agent_upserted, transaction_closed

pytestmark = pytest.mark.integration

PIN = re.compile(r"Your PIN: ([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})")


def to(address: str, subject_part: str = "") -> Any:
    def matches(message: EmailMessage) -> bool:
        return address in str(message["To"]) and subject_part in str(message["Subject"])

    return matches


def of_agent(agent_id: str, ce_type: str) -> Any:
    def matches(envelope: Envelope) -> bool:
        return envelope.type == ce_type and envelope.data.get("agent_id") == agent_id

    return matches


async def rostered_agent(publish_event: Any, participation: Any) -> str:
    agent_id = unique("A")
    await publish_event(AGENT_UPSERTED, agent_upserted(agent_id))
    changed = await participation.wait_for(of_agent(agent_id, "agent.participation.changed.v1"))
    assert changed.data["mode"] == "opt_in_hidden"
    assert changed.data["reason"] == "default"
    return agent_id


async def test_a_closed_transaction_emails_each_client_a_working_pin(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    invitations = await topic_reader(Topic.INVITATIONS_EVENTS)
    agent_id = await rostered_agent(publish_event, participation)
    email = f"{unique('pat')}@example.com"

    await publish_event(
        TRANSACTION_CLOSED,
        transaction_closed(unique("T"), agent_id, [{"name": "Pat Doe", "email": email}]),
    )

    message = await mail.wait_for(to(email), timeout=20)
    text = body_text(message)
    match = PIN.search(text)
    assert match is not None, text
    assert "http://127.0.0.1:8002/survey?token=" in text
    assert "/unsubscribe?token=" in text
    issued = await invitations.wait_for(of_agent(agent_id, "invitation.issued.v1"))
    assert issued.data["pin_hash"] == SecretHasher(PEPPER).pin_hash(match.group(1))
    # the link names its invitation under the MAC reviews checks ("being prepared", not 404)
    token = text.split("/survey?token=", 1)[1].split()[0]
    assert issued.data["token_hash"] == SecretHasher(PEPPER).token_hash(token)
    assert SecretHasher(PEPPER).linked_invitation(token) == issued.data["invitation_id"]
    assert issued.data["channel"] == "email" and issued.data["survey"] == "transaction"
    assert email not in str(issued.data)


async def test_missing_email_asks_the_agent_then_the_supplied_contact_gets_the_survey(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    agent_id = await rostered_agent(publish_event, participation)
    transaction_id = unique("T")

    await publish_event(
        TRANSACTION_CLOSED, transaction_closed(transaction_id, agent_id, [{"name": "Pat Doe"}])
    )

    request = await mail.wait_for(to(agent_id.lower(), "client contact"), timeout=20)
    assert transaction_id in body_text(request)
    listed = await service.client.get(
        f"/api/v1/agents/{agent_id}/contact-requests", headers=as_agent(agent_id)
    )
    assert listed.status_code == 200
    assert [r["transaction_id"] for r in listed.json()["items"]] == [transaction_id]
    assert listed.json()["items"][0]["deadline"] == "2026-12-04T15:00:00Z"

    email = f"{unique('pat')}@example.com"
    supplied = await service.client.post(
        f"/api/v1/transactions/{transaction_id}/clients",
        json={"clients": [{"name": "Pat Doe", "email": email}]},
        headers=as_agent(agent_id),
    )
    assert supplied.status_code == 200, supplied.text
    assert supplied.json()["invitations_sent"] == 1
    assert PIN.search(body_text(await mail.wait_for(to(email), timeout=20)))
    after = await service.client.get(
        f"/api/v1/agents/{agent_id}/contact-requests", headers=as_agent(agent_id)
    )
    assert after.json()["items"] == []


async def test_the_compliance_window_passing_opts_the_agent_out(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    agent_id = await rostered_agent(publish_event, participation)
    await publish_event(TRANSACTION_CLOSED, transaction_closed(unique("T"), agent_id, []))
    await mail.wait_for(to(agent_id.lower(), "client contact"), timeout=20)

    service.clock.set(START + timedelta(days=7, minutes=1))
    await mail.wait_for(to(agent_id.lower(), "Reminder"), timeout=10)
    service.clock.set(START + timedelta(days=14, minutes=1))

    opted_out = await participation.wait_for(
        lambda e: of_agent(agent_id, e.type)(e) and e.data["reason"] == "non_compliance"
    )
    assert opted_out.data["mode"] == "opt_out"
    assert opted_out.key == agent_id
    notice = await mail.wait_for(to(agent_id.lower(), "opted out"), timeout=10)
    assert "non-compliance" in body_text(notice)
    service.clock.set(START)


async def test_a_replayed_transaction_with_a_new_ce_id_sends_no_second_email(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    agent_id = await rostered_agent(publish_event, participation)
    email = f"{unique('pat')}@example.com"
    transaction = transaction_closed(unique("T"), agent_id, [{"name": "Pat", "email": email}])
    dead_letters = await topic_reader(dlq(Topic.MLS_TRANSACTIONS))

    await publish_event(TRANSACTION_CLOSED, transaction)
    await mail.wait_for(to(email), timeout=20)
    await publish_event(TRANSACTION_CLOSED, transaction)  # a new ce_id each time
    # an invalid message with the same key lands behind the replay on the same partition: once
    # it is dead-lettered, the replay has been handled
    await publish_event.raw(
        Topic.MLS_TRANSACTIONS, b"not json", key=transaction.transaction_id.encode()
    )
    await dead_letters.wait_for_record(
        lambda r: (
            r.key == transaction.transaction_id.encode()
            and dict(r.headers).get("dlq_consumer") == b"invitations"
        ),
        timeout=20,
    )
    await asyncio.sleep(0.5)  # the mail relay's poll interval

    assert len(mail.to(email)) == 1
