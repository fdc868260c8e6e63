"""The reviews part of the agent's funnel on the real stack (docs/design.md 1.10): of the
clients invited for closings in a period, who answered, how many answers were negative, how
many are shown publicly."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.auth import Role
from shared.contracts import INVITATION_CANCELLED
from shared.contracts.invitations import InvitationClosed
from shared.contracts.removals import RemovalReason
from tests.integration.reviews.conftest import (
    GOOD,
    POOR,
    START,
    Service,
    announce_agent,
    bearer,
    issue_invitation,
    unique,
)
from tests.support.kafka import EventPublisher
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_the_funnel_counts_answers_negatives_and_public_reviews_of_the_period(
    service: Service, publish_event: EventPublisher
) -> None:
    service.clock.set(START)
    agent_id = unique("A")
    await announce_agent(publish_event, service, agent_id)
    comments = [(GOOD, "Great."), (POOR, "Slow to answer."), (GOOD, "Call 713-555-0188.")]
    for scores, comment in comments:
        issued = await issue_invitation(publish_event, service, agent_id=agent_id)
        answered = await service.client.post(
            "/api/v1/reviews", json={"scores": scores, "comment": comment, "pin": issued.pin}
        )
        assert answered.status_code == 201, answered.text
    await issue_invitation(publish_event, service, agent_id=agent_id)  # not answered
    await issue_invitation(
        publish_event, service, agent_id=agent_id, removal_reason=RemovalReason.CHANGED_MIND
    )  # a removal survey is no closing's
    corrected = await issue_invitation(publish_event, service, agent_id=agent_id)
    await publish_event(
        INVITATION_CANCELLED,
        InvitationClosed(
            invitation_id=corrected.invitation_id,
            agent_id=agent_id,
            at=START,
            reason="wrong_email",
        ),
    )
    service.clock.set(START + timedelta(days=40))  # outside the period
    await issue_invitation(publish_event, service, agent_id=agent_id)
    service.clock.advance(timedelta(seconds=1))  # the period up to now leaves now out

    url = f"/api/v1/agents/{agent_id}/funnel"
    period = {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}
    mine = bearer(agent_id, Role.AGENT)

    async def counted() -> bool:
        funnel = await service.client.get(url, params=period, headers=mine)
        return bool(funnel.json()["invited"] == 4)  # the cancelled one has gone

    await eventually(counted)
    # the invitation cancelled for a wrong email no longer opens the survey
    gone = await service.client.post(
        "/api/v1/reviews", json={"scores": GOOD, "comment": "Late.", "pin": corrected.pin}
    )
    assert gone.status_code == 410 and gone.json()["code"] == "closed"
    funnel = (await service.client.get(url, params=period, headers=mine)).json()
    assert funnel["from"] == "2026-11-01T00:00:00Z" and funnel["to"] == "2026-12-01T00:00:00Z"
    assert (funnel["answered"], funnel["with_moderator"], funnel["negative"]) == (3, 1, 1)
    # the negative one is published when the response-window timer sees its window ended
    # (within the 40 days): the timer runs on its own schedule, so wait for it

    async def published() -> bool:
        funnel.update((await service.client.get(url, params=period, headers=mine)).json())
        return bool(funnel["published"] == 2)

    await eventually(published)
    assert (funnel["published"], funnel["withdrawn"]) == (2, 0)
    assert funnel["shown_publicly"] == 0  # hidden by default (opt_in_hidden)

    default = (await service.client.get(url, headers=mine)).json()  # the 90 days up to now
    assert default["invited"] == 5 and default["answered"] == 3

    other = await service.client.get(url, params=period, headers=bearer(unique("A"), Role.AGENT))
    assert other.status_code == 403
    staff = await service.client.get(url, params=period, headers=bearer("M-1", Role.MODERATOR))
    assert staff.status_code == 403
    backwards = await service.client.get(
        url, params={"from": period["to"], "to": period["from"]}, headers=mine
    )
    assert backwards.status_code == 422 and backwards.json()["code"] == "bad_period"
    naive = await service.client.get(url, params={"from": "2026-11-01T00:00:00"}, headers=mine)
    assert naive.status_code == 422
    service.clock.set(START)
