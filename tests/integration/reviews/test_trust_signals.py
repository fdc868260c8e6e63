"""Trust signals hold a review for a moderator, on the real stack (docs/design.md §3.3): the
client hears it is being checked, the moderator sees the signals, the agent sees only that a
review is under review."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from devtools.smtp_sink import MailSink
from services.reviews.app import create_app
from shared.auth import Role
from shared.clock import FixedClock
from shared.contracts import INVITATION_ISSUED
from shared.crypto import SecretHasher, new_pin
from tests.conftest import running_app
from tests.integration.reviews.conftest import (
    GOOD,
    PEPPER,
    START,
    Service,
    announce_agent,
    bearer,
    issue_invitation,
    reviews_settings,
    unique,
)
from tests.support.kafka import EventPublisher, dispatcher_of, start_group_at_end
from tests.support.waiting import until_stored

pytestmark = pytest.mark.integration

CLIENT = {"X-Forwarded-For": "203.0.113.50"}
AGENT_HOME = {"X-Forwarded-For": "198.51.100.20"}
COMMENT = "Knew the schools and the flood maps, and got us the house under asking."


@pytest.fixture(scope="module")
async def service(
    kafka_bootstrap: str, database_url: str, smtp_sink: MailSink
) -> AsyncIterator[Service]:
    """The reviews service behind a trusted proxy on 127.0.0.1, so each request's address is
    the X-Forwarded-For it sends."""
    clock = FixedClock(START)
    settings = reviews_settings(
        kafka_bootstrap, database_url, smtp_sink.port, trusted_proxies="127.0.0.1"
    )
    app = create_app(settings, clock=clock)
    await start_group_at_end(kafka_bootstrap, settings.group_id, dispatcher_of(app).subscribed)
    async with running_app(app) as client:
        yield Service(app, client, clock, settings)


async def submit(
    service: Service, *, pin: str | None, headers: dict[str, str], comment: str = COMMENT
) -> Any:
    submitted = await service.client.post(
        "/api/v1/reviews", json={"scores": GOOD, "comment": comment, "pin": pin}, headers=headers
    )
    assert submitted.status_code == 201, submitted.text
    return submitted.json()


async def queue_item(service: Service, review_id: str) -> dict[str, Any]:
    queue = await service.client.get(
        "/api/v1/moderation/queue", params={"limit": 500}, headers=bearer("M-1", Role.MODERATOR)
    )
    assert queue.status_code == 200, queue.text
    items: list[dict[str, Any]] = queue.json()["items"]
    [item] = [i for i in items if i["review_id"] == review_id]
    return item


async def test_a_review_on_a_flagged_contact_is_held_and_the_agent_sees_it_under_review(
    service: Service, publish_event: EventPublisher
) -> None:
    agent_id = unique("A")
    await announce_agent(publish_event, service, agent_id)
    plain = await issue_invitation(publish_event, service, agent_id=agent_id)
    pin = new_pin()  # the flagged invitation's own PIN
    event = plain.event.model_copy(
        update={
            "invitation_id": unique("inv"),
            "transaction_id": unique("T"),
            "pin_hash": SecretHasher(PEPPER).pin_hash(pin),
            "token_hash": None,
            "trust_flags": ["contact_reused_across_agents"],
        }
    )
    await publish_event(INVITATION_ISSUED, event)
    await until_stored(service.settings, "invitations", "invitation_id", event.invitation_id)

    honest = await submit(service, pin=plain.pin, headers=CLIENT)
    assert honest["status"] == "published"
    held = await submit(service, pin=pin, headers=CLIENT, comment="Patient with our questions.")
    assert held["status"] == "moderation"
    assert "being checked" in held["message"]

    item = await queue_item(service, held["review_id"])
    assert item["signals"] == ["flagged_contact"] and item["flags"] == []
    metrics = (await service.client.get("/metrics")).text
    assert (
        'ratings_trust_signals_total{outcome="held",service="reviews",signal="flagged_contact"}'
        in metrics
    )
    record = await service.client.get(
        f"/api/v1/reviews/{held['review_id']}", headers=bearer("M-1", Role.MODERATOR)
    )
    assert record.status_code == 200, record.text
    actions = [(d["action"], d["reason"]) for d in record.json()["decisions"]]
    assert ("trust_signals", "flagged_contact") in actions
    assert ("to_moderation", "held for a moderator") in actions

    mine = await service.client.get(
        f"/api/v1/agents/{agent_id}/reviews", headers=bearer(agent_id, Role.AGENT)
    )
    assert mine.status_code == 200, mine.text
    assert [r["review_id"] for r in mine.json()["reviews"]] == [honest["review_id"]]
    [under] = mine.json()["under_review"]
    assert under == {
        "review_id": held["review_id"],
        "submitted_at": under["submitted_at"],
        "status": "under_review",
    }

    approved = await service.client.post(
        f"/api/v1/moderation/{held['review_id']}/decision",
        json={"decision": "approve", "reason": "a real client, checked by phone"},
        headers=bearer("M-1", Role.MODERATOR),
    )
    assert approved.status_code == 200 and approved.json()["status"] == "published"
    seen = await service.client.get(
        f"/api/v1/reviews/{held['review_id']}", headers=bearer(agent_id, Role.AGENT)
    )
    assert seen.status_code == 200 and seen.json()["signals"] == []
    assert "trust_signals" not in [d["action"] for d in seen.json()["decisions"]]


async def test_a_review_sent_from_an_address_the_agent_used_is_held(
    service: Service, publish_event: EventPublisher
) -> None:
    agent_id = unique("A")
    await announce_agent(publish_event, service, agent_id)
    first = await issue_invitation(publish_event, service, agent_id=agent_id)
    second = await issue_invitation(publish_event, service, agent_id=agent_id)

    looked = await service.client.get(
        f"/api/v1/agents/{agent_id}/reviews", headers={**bearer(agent_id, Role.AGENT), **AGENT_HOME}
    )
    assert looked.status_code == 200
    other_client = await submit(service, pin=first.pin, headers=CLIENT)
    assert other_client["status"] == "published"
    from_agent = await submit(service, pin=second.pin, headers=AGENT_HOME, comment="Superb!")
    assert from_agent["status"] == "moderation"
    assert (await queue_item(service, from_agent["review_id"]))["signals"] == ["agent_address"]


async def test_a_burst_and_a_copied_comment_are_held(
    service: Service, publish_event: EventPublisher
) -> None:
    agent_id = unique("A")
    await announce_agent(publish_event, service, agent_id)
    limit = service.settings.review_burst_max
    codes = [
        await issue_invitation(publish_event, service, agent_id=agent_id) for _ in range(limit + 3)
    ]
    statuses = []
    for n, issued in enumerate(codes[: limit + 1]):
        body = {"scores": GOOD, "comment": f"Review number {n}: good.", "pin": issued.pin}
        response = await service.client.post("/api/v1/reviews", json=body, headers=CLIENT)
        statuses.append(response.json()["status"])
    assert statuses == ["published"] * limit + ["moderation"]
    assert (await queue_item(service, response.json()["review_id"]))["signals"] == ["burst"]

    service.clock.advance(timedelta(days=2))
    copied = await submit(service, pin=codes[limit + 1].pin, headers=CLIENT)
    assert copied["status"] == "published"  # the first with this comment
    again = await service.client.post(
        "/api/v1/reviews",
        json={
            "scores": GOOD,
            "comment": COMMENT.replace("house", "home"),
            "pin": codes[limit + 2].pin,
        },
        headers=CLIENT,
    )
    assert again.json()["status"] == "moderation"
    assert (await queue_item(service, again.json()["review_id"]))["signals"] == ["copied_comment"]
