"""Further flows: late roster, participation, phone tasks, codes, unsubscribe, removal surveys,
erasure."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from devtools.smtp_sink import MailSink, body_text
from shared.auth import Role, issue_token
from shared.contracts import (
    AGENT_UPSERTED,
    LEAD_ASSIGNED,
    REMOVAL_COMPLETED,
    SURVEY_ANSWERED,
    TRANSACTION_CLOSED,
)
from shared.contracts.removals import RemovalReason
from shared.contracts.reviews import Channel, SurveyAnswered
from shared.crypto import SecretHasher
from shared.topics import Topic
from tests.integration.invitations.conftest import (
    PEPPER,
    SECRET,
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

UNSUBSCRIBE = re.compile(r"(/unsubscribe\?token=[A-Za-z0-9_-]+)")
STATUS_LINK = re.compile(r"http://127\.0\.0\.1:8002/review-status\?token=([A-Za-z0-9_.-]+)")


def as_role(role: Role, sub: str = "S-1") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}


async def test_an_unknown_agent_s_clients_are_invited_once_the_roster_names_the_agent(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    agent_id = unique("A")
    email = f"{unique('pat')}@example.com"
    transaction_id = unique("T")
    await publish_event(
        TRANSACTION_CLOSED,
        transaction_closed(transaction_id, agent_id, [{"name": "Pat", "email": email}]),
    )
    # stored before the roster names the agent: otherwise the unknown-agent path is not taken
    await until_stored(service.settings, "transactions", "transaction_id", transaction_id)
    await publish_event(AGENT_UPSERTED, agent_upserted(agent_id))
    await participation.wait_for(of_agent(agent_id, "agent.participation.changed.v1"))
    assert "Your PIN" in body_text(await mail.wait_for(to(email), timeout=20))


async def test_an_opted_out_agent_s_clients_get_no_invitation(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    agent_id = await rostered_agent(publish_event, participation)
    other = await rostered_agent(publish_event, participation)
    forbidden = await service.client.put(
        f"/api/v1/agents/{agent_id}/participation",
        json={"mode": "opt_out"},
        headers=as_agent(other),
    )
    assert forbidden.status_code == 403
    chosen = await service.client.put(
        f"/api/v1/agents/{agent_id}/participation",
        json={"mode": "opt_out"},
        headers=as_agent(agent_id),
    )
    assert chosen.status_code == 200, chosen.text
    changed = await participation.wait_for(
        lambda e: of_agent(agent_id, e.type)(e) and e.data["reason"] == "agent_choice"
    )
    assert changed.data["mode"] == "opt_out"

    skipped, marker = f"{unique('pat')}@example.com", f"{unique('m')}@example.com"
    both_sides = transaction_closed(unique("T"), agent_id, [{"name": "Pat", "email": skipped}])
    other_side = transaction_closed("T", other, [{"name": "M", "email": marker}])
    await publish_event(
        TRANSACTION_CLOSED,
        both_sides.model_copy(
            update={"representations": both_sides.representations + other_side.representations}
        ),
    )
    await mail.wait_for(to(marker), timeout=20)  # the same event: the skipped side is decided
    assert mail.to(skipped) == []


async def test_a_phone_number_becomes_a_phone_task_a_surveyor_claims_and_completes(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    invitations = await topic_reader(Topic.INVITATIONS_EVENTS)
    agent_id = await rostered_agent(publish_event, participation)
    transaction_id = unique("T")
    await publish_event(
        TRANSACTION_CLOSED, transaction_closed(transaction_id, agent_id, [{"name": "Pat"}])
    )
    await mail.wait_for(to(agent_id.lower(), "client contact"), timeout=20)

    supplied = await service.client.post(
        f"/api/v1/transactions/{transaction_id}/clients",
        json={"clients": [{"name": "Pat", "phone": "+1 713 555 0100"}]},
        headers=as_agent(agent_id),
    )
    assert supplied.json()["phone_tasks"] == 1
    issued = await invitations.wait_for(of_agent(agent_id, "invitation.issued.v1"))
    assert issued.data["channel"] == "phone" and issued.data["pin_hash"] is None
    task_id = issued.data["invitation_id"]

    listed = await service.client.get("/api/v1/phone-tasks", headers=as_role(Role.SURVEYOR))
    assert task_id in [t["invitation_id"] for t in listed.json()["items"]]
    # no contact until claimed (not "555" alone: a random id may hold those digits)
    assert "713 555 0100" not in listed.text and "7135550100" not in listed.text
    assert (
        await service.client.get("/api/v1/phone-tasks", headers=as_agent(agent_id))
    ).status_code == 403
    claimed = await service.client.post(
        f"/api/v1/phone-tasks/{task_id}/claim", headers=as_role(Role.SURVEYOR)
    )
    assert claimed.json()["client_phone"] == "+1 713 555 0100"
    taken = await service.client.post(
        f"/api/v1/phone-tasks/{task_id}/claim", headers=as_role(Role.SURVEYOR, "S-2")
    )
    assert taken.status_code == 409
    done = await service.client.post(
        f"/api/v1/phone-tasks/{task_id}/done", headers=as_role(Role.SURVEYOR)
    )
    assert done.json()["state"] == "done"
    requests = await service.client.get(
        f"/api/v1/agents/{agent_id}/contact-requests", headers=as_agent(agent_id)
    )
    assert requests.json()["items"] == []


async def test_an_agent_code_needs_a_closed_transaction_at_that_address(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    agent_id = await rostered_agent(publish_event, participation)
    await publish_event(TRANSACTION_CLOSED, transaction_closed(unique("T"), agent_id, []))
    await mail.wait_for(to(agent_id.lower(), "client contact"), timeout=20)
    email = f"{unique('pat')}@example.com"

    wrong = await service.client.post(
        f"/api/v1/agents/{agent_id}/codes",
        json={"client_email": email, "street": "99 Oak St", "postcode": "77002"},
        headers=as_agent(agent_id),
    )
    assert wrong.status_code == 404
    made = await service.client.post(
        f"/api/v1/agents/{agent_id}/codes",
        json={"client_email": email, "street": "12 elm rd.", "postcode": "77002"},
        headers=as_agent(agent_id),
    )
    assert made.status_code == 201, made.text
    assert "Your PIN" in body_text(await mail.wait_for(to(email), timeout=20))
    again = await service.client.post(
        f"/api/v1/agents/{agent_id}/codes",
        json={"client_email": email, "street": "12 Elm Rd", "postcode": "77002"},
        headers=as_agent(agent_id),
    )
    assert again.status_code == 409


async def test_unsubscribe_cancels_the_invitation_and_suppresses_the_address(
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
    message = await mail.wait_for(to(email), timeout=20)
    assert "List-Unsubscribe" in message
    match = UNSUBSCRIBE.search(body_text(message))
    assert match is not None

    page = await service.client.get(match.group(1))
    assert page.status_code == 200 and "<form" in page.text
    done = await service.client.post(match.group(1))
    assert done.status_code == 200
    cancelled = await invitations.wait_for(of_agent(agent_id, "invitation.cancelled.v1"))
    assert cancelled.data["reason"] == "unsubscribed"

    marker = f"{unique('m')}@example.com"
    await publish_event(
        TRANSACTION_CLOSED,
        transaction_closed(
            unique("T"), agent_id, [{"name": "Pat", "email": email}, {"name": "M", "email": marker}]
        ),
    )
    await mail.wait_for(to(marker), timeout=20)  # the same event: the suppressed one is decided
    assert len(mail.to(email)) == 1


async def test_a_completed_removal_sends_the_reason_s_survey_to_the_lead_s_client(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    invitations = await topic_reader(Topic.INVITATIONS_EVENTS)
    agent_id = await rostered_agent(publish_event, participation)
    lead_id = unique("L")
    email = f"{unique('sam')}@example.com"
    await publish_event(
        REMOVAL_COMPLETED,
        removal_completed(lead_id, agent_id, RemovalReason.OUT_OF_AREA),
    )
    await publish_event(
        LEAD_ASSIGNED,
        lead_assigned(lead_id, agent_id, email, name="Sam", assigned_at=START - timedelta(days=30)),
    )
    message = await mail.wait_for(to(email), timeout=20)
    assert "outside the area" in body_text(message)
    issued = await invitations.wait_for(of_agent(agent_id, "invitation.issued.v1"))
    assert issued.data["survey"] == "removal"
    assert issued.data["removal_reason"] == "out_of_area"
    assert issued.data["lead_id"] == lead_id


async def test_a_removal_completed_before_the_roster_names_the_agent_is_surveyed_once_it_does(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    """The roster and the removal events are different topics: the survey waits for both."""
    service.clock.set(START)
    invitations = await topic_reader(Topic.INVITATIONS_EVENTS)
    agent_id, lead_id = unique("A"), unique("L")
    email = f"{unique('sam')}@example.com"
    await publish_event(
        LEAD_ASSIGNED,
        lead_assigned(lead_id, agent_id, email, name="Sam", assigned_at=START - timedelta(days=30)),
    )
    await publish_event(
        REMOVAL_COMPLETED,
        removal_completed(lead_id, agent_id, RemovalReason.CHANGED_MIND),
    )
    await until_stored(service.settings, "pending_removal_surveys", "lead_id", lead_id)
    assert not mail.to(email)
    await publish_event(AGENT_UPSERTED, agent_upserted(agent_id))
    await mail.wait_for(to(email), timeout=20)
    issued = await invitations.wait_for(of_agent(agent_id, "invitation.issued.v1"))
    assert issued.data["survey"] == "removal" and issued.data["lead_id"] == lead_id
    assert len(mail.to(email)) == 1


async def test_a_handoff_survey_names_the_new_agent_who_can_later_remove_the_client_in_turn(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    """Redfin: on an approved hand-off the coordinator names the agent who takes the client
    over; the client's survey (about the agent they leave) says who that is. The new agent's
    lead is known here from then on, so their own removal of it surveys the client too."""
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    agent_id, new_agent = await rostered_agent(publish_event, participation), unique("A")
    await publish_event(
        AGENT_UPSERTED, agent_upserted(new_agent).model_copy(update={"name": "Ana Ruiz"})
    )
    await until_stored(service.settings, "agents", "agent_id", new_agent)
    lead_id, email = unique("L"), f"{unique('sam')}@example.com"
    await publish_event(
        REMOVAL_COMPLETED,
        removal_completed(lead_id, agent_id, RemovalReason.BAD_FIT, handed_to_agent_id=new_agent),
    )
    # held until the lead arrives: the new agent is kept with the held survey
    await until_stored(service.settings, "pending_removal_surveys", "lead_id", lead_id)
    await publish_event(
        LEAD_ASSIGNED,
        lead_assigned(lead_id, agent_id, email, name="Sam", assigned_at=START - timedelta(days=30)),
    )
    survey = await mail.wait_for(to(email, "Ana Ruiz will help you"), timeout=20)
    assert "handed you on to Ana Ruiz" in body_text(survey)
    assert "coordinator" in body_text(survey)

    await publish_event(
        REMOVAL_COMPLETED,
        removal_completed(
            lead_id, new_agent, RemovalReason.CHANGED_MIND, completed_at=START + timedelta(days=20)
        ),
    )
    second = await mail.wait_for(to(email, "stopped"), timeout=20)
    assert "Ana Ruiz" in body_text(second) and "stopped searching" in body_text(second)


async def test_invitations_expire_after_30_days_and_ops_can_erase_a_client(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    invitations = await topic_reader(Topic.INVITATIONS_EVENTS)
    agent_id = await rostered_agent(publish_event, participation)
    kept, erased = f"{unique('a')}@example.com", f"{unique('b')}@example.com"
    await publish_event(
        TRANSACTION_CLOSED,
        transaction_closed(
            unique("T"),
            agent_id,
            [{"name": "A", "email": kept}, {"name": "B", "email": erased}],
        ),
    )
    await mail.wait_for(to(kept), timeout=20)
    await mail.wait_for(to(erased), timeout=20)

    forbidden = await service.client.post(
        "/api/v1/erasures", json={"email": erased}, headers=as_agent(agent_id)
    )
    assert forbidden.status_code == 403
    erasure = await service.client.post(
        "/api/v1/erasures", json={"email": erased}, headers=as_role(Role.OPS)
    )
    assert erasure.status_code == 200, erasure.text
    assert erasure.json()["cancelled"] == 1
    await invitations.wait_for(
        lambda e: of_agent(agent_id, "invitation.cancelled.v1")(e) and e.data["reason"] == "erased"
    )

    service.clock.set(START + timedelta(days=7, hours=1))
    reminder = await mail.wait_for(to(kept, "Reminder"), timeout=10)
    assert "Your PIN" not in body_text(reminder)
    service.clock.set(START + timedelta(days=30, hours=1))
    expired = await invitations.wait_for(of_agent(agent_id, "invitation.expired.v1"))
    assert expired.data["reason"] == "expired"
    assert mail.to(erased) and not [m for m in mail.to(erased) if "Reminder" in m["Subject"]]
    service.clock.set(START)


async def test_a_client_who_answered_gets_no_reminder_and_the_invitation_never_expires(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    invitations = await topic_reader(Topic.INVITATIONS_EVENTS)
    agent_id = await rostered_agent(publish_event, participation)
    answered, silent = f"{unique('a')}@example.com", f"{unique('s')}@example.com"
    answered_tx, silent_tx = unique("T"), unique("T")
    for transaction_id, email in ((answered_tx, answered), (silent_tx, silent)):
        await publish_event(
            TRANSACTION_CLOSED,
            transaction_closed(transaction_id, agent_id, [{"name": "C", "email": email}]),
        )
        await mail.wait_for(to(email), timeout=20)
    issued = await invitations.wait_for(
        lambda e: (
            of_agent(agent_id, "invitation.issued.v1")(e)
            and e.data["transaction_id"] == answered_tx
        )
    )
    review_id = unique("R")
    await publish_event(
        SURVEY_ANSWERED,
        SurveyAnswered(
            invitation_id=issued.data["invitation_id"],
            agent_id=agent_id,
            review_id=review_id,
            channel=Channel.EMAIL,
            answered_at=START + timedelta(days=2),
        ),
    )
    # the thank-you mail carries the client's lasting link to the review's state
    thanks = body_text(await mail.wait_for(to(answered, "Thank you"), timeout=20))
    link = STATUS_LINK.search(thanks)
    assert link is not None, thanks
    assert SecretHasher(PEPPER).status_review(link.group(1)) == review_id

    conn = await asyncpg.connect(service.settings.database_url)
    try:

        async def marked_done() -> bool:
            status = await conn.fetchval(
                f"SELECT status FROM {service.settings.db_schema}.invitations "
                "WHERE invitation_id = $1",
                issued.data["invitation_id"],
            )
            return bool(status == "done")

        await eventually(marked_done)
    finally:
        await conn.close()

    service.clock.set(START + timedelta(days=7, hours=1))
    await mail.wait_for(to(silent, "Reminder"), timeout=10)
    service.clock.set(START + timedelta(days=30, hours=1))
    await invitations.wait_for(
        lambda e: (
            of_agent(agent_id, "invitation.expired.v1")(e)
            and e.data["invitation_id"] != issued.data["invitation_id"]
        )
    )
    assert not [m for m in mail.to(answered) if "Reminder" in m["Subject"]]
    expired = [
        e.data["invitation_id"]
        for e in invitations.envelopes()
        if e.type == "invitation.expired.v1"
    ]
    assert issued.data["invitation_id"] not in expired
    service.clock.set(START)
