"""The client's view of their review from the lasting link (held, published, rejected or
removed, with the moderator's reason), and the one resubmission of a rejected review, on the
real stack (docs/design.md 1.10)."""

from __future__ import annotations

import pytest

from shared.auth import Role
from shared.crypto import SecretHasher
from shared.topics import Topic
from tests.integration.reviews.conftest import (
    GOOD,
    PEPPER,
    Service,
    announce_agent,
    bearer,
    issue_invitation,
    unique,
)
from tests.support.kafka import EventPublisher

pytestmark = pytest.mark.integration

MODERATOR = bearer("M-1", Role.MODERATOR)
FLAGGED = "Great agent, call me on 713-555-0188 to hear more."


async def held_review(service: Service, publish_event: EventPublisher) -> tuple[str, str, str]:
    """A review held for a moderator (its comment has a phone number): (agent, review, token)."""
    agent_id = unique("A")
    await announce_agent(publish_event, service, agent_id)
    issued = await issue_invitation(publish_event, service, agent_id=agent_id)
    submitted = await service.client.post(
        "/api/v1/reviews", json={"scores": GOOD, "comment": FLAGGED, "pin": issued.pin}
    )
    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["status"] == "moderation"
    review_id = submitted.json()["review_id"]
    status_url = submitted.json()["status_url"]
    token = status_url.split("token=", 1)[1]
    assert SecretHasher(PEPPER).status_review(token) == review_id
    return agent_id, review_id, token


async def reject(service: Service, review_id: str, reason: str) -> None:
    rejected = await service.client.post(
        f"/api/v1/moderation/{review_id}/decision",
        json={"decision": "reject", "reason": reason},
        headers=MODERATOR,
    )
    assert rejected.status_code == 200, rejected.text


async def test_a_rejected_review_shows_why_and_is_sent_again_once_from_the_page(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    reviews = await topic_reader(Topic.REVIEWS_PUBLISHED)
    agent_id, review_id, token = await held_review(service, publish_event)

    held = await service.client.get("/api/v1/review-status", params={"token": token})
    assert held.status_code == 200, held.text
    assert held.json()["status"] == "held" and held.json()["reason"] is None
    assert held.json()["may_resubmit"] is False and held.json()["agent_name"] == "Jo Agent"
    page = await service.client.get("/review-status", params={"token": token})
    assert page.status_code == 200 and "Being checked" in page.text and "<form" not in page.text

    forged = await service.client.get("/api/v1/review-status", params={"token": f"{review_id}.x"})
    assert forged.status_code == 404
    assert forged.headers["content-type"].startswith("application/problem+json")
    assert (await service.client.get("/review-status", params={"token": "x.y"})).status_code == 404

    await reject(service, review_id, "Please leave out the phone number.")
    rejected = (await service.client.get("/api/v1/review-status", params={"token": token})).json()
    assert rejected["status"] == "rejected" and rejected["may_resubmit"] is True
    assert rejected["reason"] == "Please leave out the phone number."
    page = await service.client.get("/review-status", params={"token": token})
    assert "Please leave out the phone number." in page.text and "Not published" in page.text
    assert 'action="/review-status"' in page.text and "713-555-0188" in page.text  # pre-filled

    edited = {c: "5" for c in GOOD} | {"comment": "Great agent, knew the area.", "token": token}
    incomplete = await service.client.post(
        "/review-status", data={k: v for k, v in edited.items() if k != "overall"}
    )
    assert incomplete.status_code == 422 and "Overall service" in incomplete.text
    sent = await service.client.post("/review-status", data=edited)
    assert sent.status_code == 200, sent.text
    assert "your edited review was sent" in sent.text and "Published" in sent.text

    published = await reviews.wait_for(lambda e: e.data.get("review_id") == review_id, timeout=30)
    assert published.data["comment"] == "Great agent, knew the area."
    assert published.data["scores"]["overall"] == 5
    now = (await service.client.get("/api/v1/review-status", params={"token": token})).json()
    assert now["status"] == "published" and now["resubmitted_at"] is not None

    again = await service.client.post(
        "/api/v1/review-status/resubmission",
        json={"token": token, "scores": GOOD, "comment": "Again."},
    )
    assert again.status_code == 409 and again.json()["code"] == "not_rejected"
    record = await service.client.get(f"/api/v1/reviews/{review_id}", headers=MODERATOR)
    assert "resubmitted" in [d["action"] for d in record.json()["decisions"]]
    assert agent_id == record.json()["agent_id"]


async def test_a_second_rejection_is_final_and_a_removal_shows_its_reason(
    service: Service, publish_event: EventPublisher
) -> None:
    _, review_id, token = await held_review(service, publish_event)
    await reject(service, review_id, "Please leave out the phone number.")
    still_flagged = await service.client.post(
        "/api/v1/review-status/resubmission",
        json={"token": token, "scores": GOOD, "comment": "Call me: 713-555-0188."},
    )
    assert still_flagged.status_code == 200, still_flagged.text
    assert still_flagged.json()["status"] == "held"
    await reject(service, review_id, "Still a phone number.")
    final = (await service.client.get("/api/v1/review-status", params={"token": token})).json()
    assert final["reason"] == "Still a phone number." and final["may_resubmit"] is False
    refused = await service.client.post(
        "/api/v1/review-status/resubmission",
        json={"token": token, "scores": GOOD, "comment": "Fine."},
    )
    assert refused.status_code == 409 and refused.json()["code"] == "already_resubmitted"
    bad_link = await service.client.post(
        "/api/v1/review-status/resubmission",
        json={"token": f"{review_id}.forged", "scores": GOOD, "comment": "Fine."},
    )
    assert bad_link.status_code == 404

    _, published_id, published_token = await held_review(service, publish_event)
    approved = await service.client.post(
        f"/api/v1/moderation/{published_id}/decision",
        json={"decision": "approve", "reason": "ok"},
        headers=MODERATOR,
    )
    assert approved.json()["status"] == "published"
    await service.client.post(
        f"/api/v1/reviews/{published_id}/withdrawal",
        json={"reason": "Found to be about another agent."},
        headers=MODERATOR,
    )
    removed = await service.client.get("/review-status", params={"token": published_token})
    assert "Removed" in removed.text and "Found to be about another agent." in removed.text
