"""The invitations part of the agent's funnel on the real stack (docs/design.md 1.10): closings
of a period -> their clients -> invited by email, by phone, by agent code."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from devtools.smtp_sink import MailSink
from shared.contracts import TRANSACTION_CLOSED
from shared.contracts.mls import TransactionClosed
from shared.topics import Topic
from tests.integration.invitations.conftest import (
    START,
    Service,
    as_agent,
    transaction_closed,
    unique,
)
from tests.integration.invitations.test_invitation_flows import of_agent, rostered_agent, to

pytestmark = pytest.mark.integration


def elsewhere(event: TransactionClosed, **changes: Any) -> TransactionClosed:
    """The closing at another address (an agent code finds a closing by its address)."""
    data = event.model_dump(mode="json")
    data["property"] = {"street": f"{unique('')} Oak St", "city": "Houston", "postcode": "77003"}
    data.update({k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in changes.items()})
    return TransactionClosed.model_validate(data)


async def test_the_funnel_counts_closings_clients_and_each_route_of_invitation(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    invitations = await topic_reader(Topic.INVITATIONS_EVENTS)
    agent_id = await rostered_agent(publish_event, participation)
    wrong = f"{unique('wrong')}@example.com"
    # two clients, one without a contact; one client with a phone only; one closing too early
    sale, lease = unique("T"), unique("T")
    await publish_event(
        TRANSACTION_CLOSED,
        transaction_closed(
            sale, agent_id, [{"name": "Pat Doe", "email": wrong}, {"name": "Kim Lee"}]
        ),
    )
    await publish_event(
        TRANSACTION_CLOSED,
        elsewhere(
            transaction_closed(lease, agent_id, [{"name": "Lee Ray", "phone": "+1 713 555 0100"}])
        ),
    )
    early = transaction_closed(unique("T"), agent_id, [{"name": "Old", "email": "o@example.com"}])
    await publish_event(TRANSACTION_CLOSED, elsewhere(early, closed_at=START - timedelta(days=60)))
    await mail.wait_for(to(agent_id.lower(), "client contact"), timeout=20)
    issued_for = {}
    for transaction_id in (sale, lease, early.transaction_id):  # every closing is planned
        issued_for[transaction_id] = await invitations.wait_for(
            lambda e, t=transaction_id: (
                of_agent(agent_id, "invitation.issued.v1")(e) and e.data["transaction_id"] == t
            )
        )
    issued = issued_for[sale]
    url = f"/api/v1/agents/{agent_id}/funnel"
    period = {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}
    mine = as_agent(agent_id)

    before = (await service.client.get(url, params=period, headers=mine)).json()
    assert (before["closings"], before["clients"], before["not_invited"]) == (2, 3, 1)
    assert before["invited"] == {"email": 1, "phone": 1, "code": 0, "total": 2}

    code = await service.client.post(
        f"/api/v1/agents/{agent_id}/codes",
        json={
            "client_email": f"{unique('kim')}@example.com",
            "street": "12 Elm Rd",
            "postcode": "77002",
            "client": 2,
        },
        headers=mine,
    )
    assert code.status_code == 201, code.text
    resent = await service.client.post(
        f"/api/v1/invitations/{issued.data['invitation_id']}/resend",
        json={"email": f"{unique('pat')}@example.com"},
        headers=mine,
    )
    assert resent.status_code == 201, resent.text

    funnel = (await service.client.get(url, params=period, headers=mine)).json()
    assert funnel["from"] == "2026-11-01T00:00:00Z" and funnel["agent_id"] == agent_id
    assert (funnel["closings"], funnel["clients"], funnel["not_invited"]) == (2, 3, 0)
    # Pat, re-sent to a corrected email, is one client invited by email
    assert funnel["invited"] == {"email": 1, "phone": 1, "code": 1, "total": 3}
    longer = await service.client.get(
        url, params={"from": "2026-09-01T00:00:00Z", "to": period["to"]}, headers=mine
    )
    assert longer.json()["closings"] == 3 and longer.json()["clients"] == 4

    other = await service.client.get(url, params=period, headers=as_agent(unique("A")))
    assert other.status_code == 403
    backwards = await service.client.get(
        url, params={"from": period["to"], "to": period["from"]}, headers=mine
    )
    assert backwards.status_code == 422 and backwards.json()["code"] == "bad_period"
