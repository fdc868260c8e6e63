"""An agent cancels one client's invitation sent to a wrong email and re-sends it to the right
address, on the real stack (docs/design.md 1.10): a new PIN and link go out, the old invitation
is cancelled on `invitations.events` (reviews then refuses its PIN and link), twice at most."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.smtp_sink import MailSink, body_text
from shared.contracts import TRANSACTION_CLOSED
from shared.crypto import SecretHasher
from shared.topics import Topic
from tests.integration.invitations.conftest import (
    PEPPER,
    START,
    Service,
    as_agent,
    transaction_closed,
    unique,
)
from tests.integration.invitations.test_invitation_flows import PIN, of_agent, rostered_agent, to

pytestmark = pytest.mark.integration


async def test_a_wrong_email_is_cancelled_and_the_invitation_re_sent_to_the_right_one(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    invitations = await topic_reader(Topic.INVITATIONS_EVENTS)
    agent_id = await rostered_agent(publish_event, participation)
    transaction_id = unique("T")
    wrong, right = f"{unique('wrong')}@example.com", f"{unique('pat')}@example.com"
    await publish_event(
        TRANSACTION_CLOSED,
        transaction_closed(transaction_id, agent_id, [{"name": "Pat Doe", "email": wrong}]),
    )
    first_pin = PIN.search(body_text(await mail.wait_for(to(wrong), timeout=20)))
    assert first_pin is not None
    issued = await invitations.wait_for(of_agent(agent_id, "invitation.issued.v1"))
    old_id = issued.data["invitation_id"]

    listed = await service.client.get(
        f"/api/v1/agents/{agent_id}/invitations",
        params={"transaction_id": transaction_id},
        headers=as_agent(agent_id),
    )
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert item["invitation_id"] == old_id and item["status"] == "open"
    assert item["origin"] == "mls" and item["resendable"] is True
    assert item["email"] == "w…@example.com"  # the MLS gave it: masked, never in full
    assert item["client_name"] == "Pat Doe"
    assert (
        await service.client.get(
            f"/api/v1/agents/{agent_id}/invitations", headers=as_agent(unique("A"))
        )
    ).status_code == 403

    url = f"/api/v1/invitations/{old_id}/resend"
    other = await service.client.post(url, json={"email": right}, headers=as_agent(unique("A")))
    assert other.status_code == 404
    assert other.headers["content-type"].startswith("application/problem+json")
    assert (await service.client.post(url, json={"email": right})).status_code == 401
    same = await service.client.post(url, json={"email": wrong}, headers=as_agent(agent_id))
    assert same.status_code == 422 and same.json()["code"] == "same_email"

    resent = await service.client.post(url, json={"email": right}, headers=as_agent(agent_id))
    assert resent.status_code == 201, resent.text
    new_id = resent.json()["invitation_id"]
    assert resent.json()["cancelled_invitation_id"] == old_id and new_id != old_id

    cancelled = await invitations.wait_for(of_agent(agent_id, "invitation.cancelled.v1"))
    assert cancelled.data["invitation_id"] == old_id and cancelled.data["reason"] == "wrong_email"
    reissued = await invitations.wait_for(
        lambda e: e.type == "invitation.issued.v1" and e.data.get("invitation_id") == new_id
    )
    text = body_text(await mail.wait_for(to(right), timeout=20))
    new_pin = PIN.search(text)
    assert new_pin is not None and new_pin.group(1) != first_pin.group(1)
    assert reissued.data["pin_hash"] == SecretHasher(PEPPER).pin_hash(new_pin.group(1))
    assert reissued.data["transaction_id"] == transaction_id

    after = await service.client.get(
        f"/api/v1/agents/{agent_id}/invitations",
        params={"transaction_id": transaction_id},
        headers=as_agent(agent_id),
    )
    by_id = {i["invitation_id"]: i for i in after.json()["items"]}
    assert by_id[old_id]["status"] == "cancelled" and by_id[old_id]["replaced_by"] == new_id
    assert by_id[new_id]["replaces"] == old_id and by_id[new_id]["email"] == right
    assert by_id[new_id]["origin"] == "mls"  # still the MLS's client, for the funnel

    again = await service.client.post(url, json={"email": right}, headers=as_agent(agent_id))
    assert again.status_code == 409 and again.json()["code"] == "not_open"

    second = await service.client.post(
        f"/api/v1/invitations/{new_id}/resend",
        json={"email": f"{unique('pat2')}@example.com"},
        headers=as_agent(agent_id),
    )
    assert second.status_code == 201, second.text
    third = await service.client.post(
        f"/api/v1/invitations/{second.json()['invitation_id']}/resend",
        json={"email": f"{unique('pat3')}@example.com"},
        headers=as_agent(agent_id),
    )
    assert third.status_code == 409 and third.json()["code"] == "too_many_resends"


async def test_a_corrected_address_is_checked_like_any_the_agent_enters(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    invitations = await topic_reader(Topic.INVITATIONS_EVENTS)
    agent_id = await rostered_agent(publish_event, participation)
    wrong = f"{unique('wrong')}@example.com"
    await publish_event(
        TRANSACTION_CLOSED,
        transaction_closed(unique("T"), agent_id, [{"name": "Pat Doe", "email": wrong}]),
    )
    issued = await invitations.wait_for(of_agent(agent_id, "invitation.issued.v1"))
    own = await service.client.post(
        f"/api/v1/invitations/{issued.data['invitation_id']}/resend",
        json={"email": "pat@realty.example"},
        headers=as_agent(agent_id),
    )
    assert own.status_code == 422 and own.json()["code"] == "own_mail_domain"
    listed = await service.client.get(
        f"/api/v1/agents/{agent_id}/invitations", headers=as_agent(agent_id)
    )
    assert [i["status"] for i in listed.json()["items"]] == ["open"]  # nothing was cancelled
