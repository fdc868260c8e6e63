"""An agent's dispute of a published review, on the real stack: once, with a reason, answered by
a moderator within 2 business days, the review upheld or withdrawn by the usual withdrawal
(docs/design.md 1.10)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from devtools.smtp_sink import MailSink, body_text
from services.reviews.app import create_app
from shared.auth import Role
from shared.clock import FixedClock
from shared.topics import Topic
from tests.conftest import running_app
from tests.integration.reviews.conftest import (
    GOOD,
    POOR,
    START,
    Service,
    announce_agent,
    bearer,
    issue_invitation,
    reviews_settings,
    unique,
)
from tests.support.kafka import EventPublisher, dispatcher_of, start_group_at_end

pytestmark = pytest.mark.integration

MODERATOR = bearer("M-1", Role.MODERATOR)
PORTAL = "http://127.0.0.1:8007"
MODERATORS = ("mods@ratings.example", "Lee.Park@ratings.example")


@pytest.fixture(scope="module")
async def service(
    kafka_bootstrap: str, database_url: str, smtp_sink: MailSink
) -> AsyncIterator[Service]:
    """The reviews service with two moderator addresses (`MODERATOR_EMAILS`)."""
    clock = FixedClock(START)
    settings = reviews_settings(
        kafka_bootstrap,
        database_url,
        smtp_sink.port,
        moderator_emails=f" {MODERATORS[0]}, {MODERATORS[1]} ,",
    )
    app = create_app(settings, clock=clock)
    await start_group_at_end(kafka_bootstrap, settings.group_id, dispatcher_of(app).subscribed)
    async with running_app(app) as client:
        yield Service(app, client, clock, settings)


async def published_review(
    service: Service, publish_event: EventPublisher, scores: dict[str, int] = GOOD
) -> tuple[str, str]:
    agent_id = unique("A")
    await announce_agent(publish_event, service, agent_id)
    issued = await issue_invitation(publish_event, service, agent_id=agent_id)
    submitted = await service.client.post(
        "/api/v1/reviews", json={"scores": scores, "comment": "Fine.", "pin": issued.pin}
    )
    assert submitted.status_code == 201, submitted.text
    return agent_id, submitted.json()["review_id"]


async def test_a_dispute_is_answered_by_withdrawing_the_review(
    service: Service, publish_event: EventPublisher, topic_reader, mail: MailSink
) -> None:
    service.clock.set(START)  # a Friday, 15:00 UTC
    withdrawals = await topic_reader(Topic.REVIEWS_PUBLISHED)
    agent_id, review_id = await published_review(service, publish_event)
    url = f"/api/v1/reviews/{review_id}/dispute"

    other = await service.client.post(url, json={"reason": "x"}, headers=bearer("A-x", Role.AGENT))
    assert other.status_code == 404
    assert other.headers["content-type"].startswith("application/problem+json")
    assert (
        await service.client.post(url, json={"reason": "x"}, headers=MODERATOR)
    ).status_code == 403
    assert (await service.client.post(url, json={"reason": "x"})).status_code == 401
    blank = await service.client.post(
        url, json={"reason": "  "}, headers=bearer(agent_id, Role.AGENT)
    )
    assert blank.status_code == 422

    opened = await service.client.post(
        url, json={"reason": "Never my client."}, headers=bearer(agent_id, Role.AGENT)
    )
    assert opened.status_code == 201, opened.text
    dispute = opened.json()
    assert dispute["status"] == "open" and dispute["reason"] == "Never my client."
    # Friday 15:00 + 2 business days: the weekend does not count
    assert dispute["answer_due_at"] == "2026-11-24T15:00:00Z" and dispute["overdue"] is False

    again = await service.client.post(
        url, json={"reason": "Really."}, headers=bearer(agent_id, Role.AGENT)
    )
    assert again.status_code == 409 and again.json()["code"] == "already_disputed"

    queue = await service.client.get("/api/v1/moderation/disputes", headers=MODERATOR)
    assert queue.status_code == 200
    item = next(i for i in queue.json()["items"] if i["dispute"]["review_id"] == review_id)
    assert item["review"]["status"] == "published" and item["review"]["agent_id"] == agent_id
    refused = await service.client.get(
        "/api/v1/moderation/disputes", headers=bearer(agent_id, Role.AGENT)
    )
    assert refused.status_code == 403

    service.clock.set(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    seen = await service.client.get(url, headers=bearer(agent_id, Role.AGENT))
    assert seen.status_code == 200 and seen.json()["overdue"] is True
    hidden = await service.client.get(url, headers=bearer("A-x", Role.AGENT))
    assert hidden.status_code == 404

    decided = await service.client.post(
        f"/api/v1/moderation/disputes/{review_id}/decision",
        json={"decision": "withdraw", "reason": "The closing names another agent."},
        headers=MODERATOR,
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "withdrawn"
    assert decided.json()["resolution"] == "The closing names another agent."

    withdrawn = await withdrawals.wait_for(
        lambda e: e.type == "review.withdrawn.v1" and e.data.get("review_id") == review_id
    )
    assert withdrawn.data["reason"] == "The closing names another agent."
    review = await service.client.get(f"/api/v1/reviews/{review_id}", headers=MODERATOR)
    assert review.json()["status"] == "withdrawn"
    assert [d["action"] for d in review.json()["decisions"]][-2:] == ["disputed", "withdrawn"]

    answer = await mail.wait_for(
        lambda m: (
            f"{agent_id.lower()}@realty.example" in str(m["To"]) and "disputed" in str(m["Subject"])
        )
    )
    text = body_text(answer)
    assert "The closing names another agent." in text
    assert f"{PORTAL}/reviews/{review_id}" in text and "/api/" not in text

    twice = await service.client.post(
        f"/api/v1/moderation/disputes/{review_id}/decision",
        json={"decision": "uphold", "reason": "Changed my mind."},
        headers=MODERATOR,
    )
    assert twice.status_code == 409 and twice.json()["code"] == "dispute_closed"


async def test_an_upheld_review_stays_published(
    service: Service, publish_event: EventPublisher, mail: MailSink
) -> None:
    agent_id, review_id = await published_review(service, publish_event)
    opened = await service.client.post(
        f"/api/v1/reviews/{review_id}/dispute",
        json={"reason": "Unfair."},
        headers=bearer(agent_id, Role.AGENT),
    )
    assert opened.status_code == 201
    as_agent = await service.client.post(
        f"/api/v1/moderation/disputes/{review_id}/decision",
        json={"decision": "uphold", "reason": "x"},
        headers=bearer(agent_id, Role.AGENT),
    )
    assert as_agent.status_code == 403
    upheld = await service.client.post(
        f"/api/v1/moderation/disputes/{review_id}/decision",
        json={"decision": "uphold", "reason": "It describes the service honestly."},
        headers=MODERATOR,
    )
    assert upheld.status_code == 200 and upheld.json()["status"] == "upheld"
    review = await service.client.get(
        f"/api/v1/reviews/{review_id}", headers=bearer(agent_id, Role.AGENT)
    )
    assert review.json()["status"] == "published"
    queue = await service.client.get("/api/v1/moderation/disputes", headers=MODERATOR)
    assert review_id not in {i["dispute"]["review_id"] for i in queue.json()["items"]}
    answer = await mail.wait_for(
        lambda m: (
            f"{agent_id.lower()}@realty.example" in str(m["To"])
            and "stays published" in str(m["Subject"])
        )
    )
    assert "It describes the service honestly." in body_text(answer)


async def test_withdrawing_a_disputed_review_directly_answers_the_dispute(
    service: Service, publish_event: EventPublisher
) -> None:
    agent_id, review_id = await published_review(service, publish_event)
    await service.client.post(
        f"/api/v1/reviews/{review_id}/dispute",
        json={"reason": "Fake."},
        headers=bearer(agent_id, Role.AGENT),
    )
    withdrawn = await service.client.post(
        f"/api/v1/reviews/{review_id}/withdrawal", json={"reason": "Fraud."}, headers=MODERATOR
    )
    assert withdrawn.status_code == 200
    dispute = await service.client.get(
        f"/api/v1/reviews/{review_id}/dispute", headers=bearer(agent_id, Role.AGENT)
    )
    assert dispute.json()["status"] == "withdrawn" and dispute.json()["resolution"] == "Fraud."


async def test_a_review_not_published_yet_cannot_be_disputed(
    service: Service, publish_event: EventPublisher, mail: MailSink
) -> None:
    agent_id, review_id = await published_review(service, publish_event, POOR)
    refused = await service.client.post(
        f"/api/v1/reviews/{review_id}/dispute",
        json={"reason": "Unfair."},
        headers=bearer(agent_id, Role.AGENT),
    )
    assert refused.status_code == 409 and refused.json()["code"] == "not_published"
    # the agent's notice links to the review's page in the portal, not to the API
    notice = await mail.wait_for(
        lambda m: (
            f"{agent_id.lower()}@realty.example" in str(m["To"])
            and "waiting for your response" in str(m["Subject"])
        )
    )
    text = body_text(notice)
    assert f"{PORTAL}/reviews/{review_id}" in text and "/api/" not in text


async def test_each_moderator_is_mailed_a_new_dispute_with_the_portal_s_disputes_page(
    service: Service, publish_event: EventPublisher, mail: MailSink
) -> None:
    service.clock.set(START)  # a Friday, 15:00 UTC: answered by Tuesday
    agent_id, review_id = await published_review(service, publish_event)

    opened = await service.client.post(
        f"/api/v1/reviews/{review_id}/dispute",
        json={"reason": "The buyer was never my client."},
        headers=bearer(agent_id, Role.AGENT),
    )
    assert opened.status_code == 201, opened.text

    for address in MODERATORS:
        told = await mail.wait_for(told_about(review_id, address))
        assert "answer by Tue 24 Nov, 15:00 UTC" in str(told["Subject"])
        text = body_text(told)
        assert "The buyer was never my client." in text
        assert f"{PORTAL}/moderation/disputes" in text
        assert f"{PORTAL}/reviews/{review_id}" in text and "/api/" not in text
        assert "Tuesday 24 November 2026, 15:00 UTC" in text
    assert len([m for m in mail.messages() if review_id in str(m["Subject"])]) == 2


def told_about(review_id: str, address: str) -> Callable[[EmailMessage], bool]:
    def matches(message: EmailMessage) -> bool:
        to = str(message["To"]).lower()
        return address.lower() in to and review_id in str(message["Subject"])

    return matches
