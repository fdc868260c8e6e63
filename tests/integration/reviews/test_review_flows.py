"""The reviews service against real Kafka, PostgreSQL and SMTP: from an invitation event to
the published review stream, through every moderation path."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from devtools.smtp_sink import MailSink, body_text
from shared.auth import Role
from shared.contracts import INVITATION_CANCELLED, INVITATION_ISSUED
from shared.contracts.invitations import InvitationClosed
from shared.contracts.removals import RemovalReason
from shared.contracts.reviews import Channel
from shared.crypto import SecretHasher, new_token
from shared.topics import Topic
from tests.integration.reviews.conftest import (
    GOOD,
    PEPPER,
    POOR,
    Service,
    announce_agent,
    bearer,
    issue_invitation,
    unique,
)
from tests.support.kafka import EventPublisher
from tests.support.waiting import eventually, until_stored

pytestmark = pytest.mark.integration


def answers(
    scores: dict[str, int], comment: str = "Knew the area inside out.", **code: str | None
) -> dict[str, object]:
    return {"scores": scores, "comment": comment, **code}


async def test_invitation_to_page_to_published_review(
    service: Service, publish_event: EventPublisher, topic_reader, mail: MailSink
) -> None:
    reviews = await topic_reader(Topic.REVIEWS_PUBLISHED)
    answered = await topic_reader(Topic.REVIEWS_EVENTS)
    agent_id = unique("A")
    await announce_agent(publish_event, service, agent_id)
    issued = await issue_invitation(publish_event, service, agent_id=agent_id)

    page = await service.client.get("/survey", params={"token": issued.token})
    assert page.status_code == 200 and "<form" in page.text and "Jo Agent" in page.text

    submitted = await service.client.post("/api/v1/reviews", json=answers(GOOD, pin=issued.pin))
    assert submitted.status_code == 201, submitted.text
    review_id = submitted.json()["review_id"]
    assert submitted.json()["status"] == "published"

    published = await reviews.wait_for(lambda e: e.data.get("review_id") == review_id, timeout=30)
    assert published.type == "review.published.v1" and published.key == agent_id
    assert published.data["transaction_id"] == issued.transaction_id
    assert published.data["positive"] is True and published.data["channel"] == "email"
    assert published.data["scores"] == GOOD and published.data["agent_response"] is None
    done = await answered.wait_for(lambda e: e.data.get("invitation_id") == issued.invitation_id)
    assert done.type == "survey.answered.v1" and done.data["review_id"] == review_id

    notice = await mail.wait_for(lambda m: f"{agent_id.lower()}@realty.example" in str(m["To"]))
    assert review_id in body_text(notice) and "published" in str(notice["Subject"])

    again = await service.client.post("/api/v1/reviews", json=answers(GOOD, token=issued.token))
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")


async def test_wrong_expired_and_cancelled_codes_are_refused(
    service: Service, publish_event: EventPublisher
) -> None:
    wrong = await service.client.post("/api/v1/reviews", json=answers(GOOD, pin="ZZZZ-ZZZZ-ZZZZ"))
    assert wrong.status_code == 404 and wrong.json()["code"] == "unknown"

    short = await issue_invitation(publish_event, service, ttl=timedelta(hours=1))
    service.clock.advance(timedelta(hours=2))
    expired = await service.client.post("/api/v1/reviews", json=answers(GOOD, pin=short.pin))
    assert expired.status_code == 410 and expired.json()["code"] == "expired"

    cancelled = await issue_invitation(publish_event, service)
    await publish_event(
        INVITATION_CANCELLED,
        InvitationClosed(
            invitation_id=cancelled.invitation_id,
            agent_id=cancelled.agent_id,
            at=service.clock.now(),
            reason="unsubscribed",
        ),
    )

    async def closed() -> bool:
        async with service.app.state.runtime.pool.acquire() as conn:
            reason = await conn.fetchval(
                "SELECT closed_reason FROM invitations WHERE invitation_id = $1",
                cancelled.invitation_id,
            )
        return bool(reason == "unsubscribed")

    await eventually(closed)
    gone = await service.client.post("/api/v1/reviews", json=answers(GOOD, token=cancelled.token))
    assert gone.status_code == 410 and gone.json()["code"] == "closed"


async def test_a_replayed_invitation_changes_nothing(
    service: Service, publish_event: EventPublisher
) -> None:
    issued = await issue_invitation(publish_event, service)
    first = await service.client.post("/api/v1/reviews", json=answers(GOOD, pin=issued.pin))
    assert first.status_code == 201
    replays = [
        await publish_event(INVITATION_ISSUED, issued.event)  # same payload, new ce_id
        for _ in range(2)
    ]
    for ce_id in replays:
        await until_stored(service.settings, "inbox", "ce_id", ce_id)
    again = await service.client.post("/api/v1/reviews", json=answers(GOOD, pin=issued.pin))
    assert again.status_code == 409


async def test_negative_waits_for_the_agent_then_publishes_with_the_response(
    service: Service, publish_event: EventPublisher, topic_reader, mail: MailSink
) -> None:
    reviews = await topic_reader(Topic.REVIEWS_PUBLISHED)
    agent_id = unique("A")
    await announce_agent(publish_event, service, agent_id)
    issued = await issue_invitation(publish_event, service, agent_id=agent_id)
    submitted = await service.client.post(
        "/api/v1/reviews", json=answers(POOR, "Slow to call back.", pin=issued.pin)
    )
    assert submitted.json()["status"] == "awaiting_response"
    review_id = submitted.json()["review_id"]
    request = await mail.wait_for(lambda m: f"{agent_id.lower()}@realty.example" in str(m["To"]))
    assert "waiting for your response" in str(request["Subject"]) and review_id in body_text(
        request
    )

    listing = await service.client.get(
        f"/api/v1/agents/{agent_id}/reviews", headers=bearer(agent_id, Role.AGENT)
    )
    assert [r["review_id"] for r in listing.json()["reviews"]] == [review_id]
    other = await service.client.get(
        f"/api/v1/agents/{agent_id}/reviews", headers=bearer("A-someone-else", Role.AGENT)
    )
    assert other.status_code == 403
    stranger = await service.client.post(
        f"/api/v1/reviews/{review_id}/response",
        json={"text": "Not mine"},
        headers=bearer("A-someone-else", Role.AGENT),
    )
    assert stranger.status_code == 404

    response = await service.client.post(
        f"/api/v1/reviews/{review_id}/response",
        json={"text": "Sorry: I was on leave; my colleague should have called."},
        headers=bearer(agent_id, Role.AGENT),
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "published"
    published = await reviews.wait_for(lambda e: e.data.get("review_id") == review_id)
    assert published.data["positive"] is False
    assert published.data["agent_response"].startswith("Sorry: I was on leave")
    twice = await service.client.post(
        f"/api/v1/reviews/{review_id}/response",
        json={"text": "again"},
        headers=bearer(agent_id, Role.AGENT),
    )
    assert twice.status_code == 409


async def test_negative_publishes_when_the_response_window_ends(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    reviews = await topic_reader(Topic.REVIEWS_PUBLISHED)
    issued = await issue_invitation(publish_event, service)
    submitted = await service.client.post("/api/v1/reviews", json=answers(POOR, pin=issued.pin))
    review_id = submitted.json()["review_id"]
    service.clock.advance(timedelta(days=6, hours=23))
    await reviews.expect_none(lambda e: e.data.get("review_id") == review_id, within=1.0)
    service.clock.advance(timedelta(hours=1))
    published = await reviews.wait_for(lambda e: e.data.get("review_id") == review_id)
    assert published.data["agent_response"] is None
    record = await service.client.get(
        f"/api/v1/reviews/{review_id}", headers=bearer("mod-1", Role.MODERATOR)
    )
    actions = [d["action"] for d in record.json()["decisions"]]
    assert actions == ["submitted", "to_awaiting_response", "to_published"]
    assert record.json()["decisions"][-1]["reason"] == "the response window ended"


async def test_flagged_reviews_wait_for_a_moderator(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    reviews = await topic_reader(Topic.REVIEWS_PUBLISHED)
    moderator = bearer("mod-7", Role.MODERATOR)
    approved_invite = await issue_invitation(publish_event, service)
    rejected_invite = await issue_invitation(publish_event, service)
    approved = await service.client.post(
        "/api/v1/reviews",
        json=answers(GOOD, "Great! Ask me anything: 713-555-0188", pin=approved_invite.pin),
    )
    rejected = await service.client.post(
        "/api/v1/reviews", json=answers(GOOD, "What an idiot", pin=rejected_invite.pin)
    )
    assert approved.json()["status"] == rejected.json()["status"] == "moderation"
    approved_id, rejected_id = approved.json()["review_id"], rejected.json()["review_id"]

    queue = await service.client.get("/api/v1/moderation/queue", headers=moderator)
    flags = {item["review_id"]: item["flags"] for item in queue.json()["items"]}
    assert flags[approved_id] == ["phone_number"] and flags[rejected_id] == ["abusive_language"]
    as_agent = await service.client.get(
        "/api/v1/moderation/queue", headers=bearer(approved_invite.agent_id, Role.AGENT)
    )
    assert as_agent.status_code == 403

    ok = await service.client.post(
        f"/api/v1/moderation/{approved_id}/decision",
        json={"decision": "approve", "reason": "office number, public anyway"},
        headers=moderator,
    )
    no = await service.client.post(
        f"/api/v1/moderation/{rejected_id}/decision",
        json={"decision": "reject", "reason": "abusive"},
        headers=moderator,
    )
    assert ok.json()["status"] == "published" and no.json()["status"] == "rejected"
    await reviews.wait_for(lambda e: e.data.get("review_id") == approved_id)
    await reviews.expect_none(lambda e: e.data.get("review_id") == rejected_id, within=1.0)
    again = await service.client.post(
        f"/api/v1/moderation/{rejected_id}/decision",
        json={"decision": "approve", "reason": "changed my mind"},
        headers=moderator,
    )
    assert again.status_code == 409
    record = await service.client.get(f"/api/v1/reviews/{rejected_id}", headers=moderator)
    decision = next(d for d in record.json()["decisions"] if d["action"] == "rejected")
    assert (decision["actor"], decision["actor_role"], decision["reason"]) == (
        "mod-7",
        "moderator",
        "abusive",
    )


async def test_a_moderator_withdraws_a_published_review(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    reviews = await topic_reader(Topic.REVIEWS_PUBLISHED)
    issued = await issue_invitation(publish_event, service)
    submitted = await service.client.post("/api/v1/reviews", json=answers(GOOD, pin=issued.pin))
    review_id = submitted.json()["review_id"]
    withdrawn = await service.client.post(
        f"/api/v1/reviews/{review_id}/withdrawal",
        json={"reason": "the client was the agent's relative"},
        headers=bearer("mod-1", Role.MODERATOR),
    )
    assert withdrawn.json()["status"] == "withdrawn"
    event = await reviews.wait_for(
        lambda e: e.type == "review.withdrawn.v1" and e.data["review_id"] == review_id
    )
    assert event.key == issued.agent_id and event.data["reason"].startswith("the client")


async def test_phone_answers_follow_the_same_path(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    reviews = await topic_reader(Topic.REVIEWS_PUBLISHED)
    issued = await issue_invitation(publish_event, service, channel=Channel.PHONE)
    path = f"/api/v1/phone-surveys/{issued.invitation_id}/answers"
    body = {"scores": GOOD, "comment": "Said she would use him again."}
    assert (await service.client.post(path, json=body)).status_code == 401
    denied = await service.client.post(path, json=body, headers=bearer("A-1", Role.AGENT))
    assert denied.status_code == 403
    entered = await service.client.post(path, json=body, headers=bearer("sv-3", Role.SURVEYOR))
    assert entered.status_code == 201, entered.text
    review_id = entered.json()["review_id"]
    published = await reviews.wait_for(lambda e: e.data.get("review_id") == review_id)
    assert published.data["channel"] == "phone"
    twice = await service.client.post(path, json=body, headers=bearer("sv-3", Role.SURVEYOR))
    assert twice.status_code == 409


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"scores": {**GOOD, "overall": 6}}, "overall"),
        ({"scores": {**GOOD, "overall": 0}}, "overall"),
        ({"scores": {k: v for k, v in GOOD.items() if k != "friendliness"}}, "friendliness"),
        ({"scores": {**GOOD, "overall": "5"}}, "overall"),
        ({"scores": {**GOOD, "charm": 5}}, "charm"),
        ({"comment": "x" * 5001}, "comment"),
        ({"pin": None}, "body"),
    ],
)
async def test_bad_answers_are_422_problems(
    service: Service, publish_event: EventPublisher, change: dict[str, object], field: str
) -> None:
    body = {**answers(GOOD, pin="AAAA-BBBB-CCCC"), **change}
    response = await service.client.post("/api/v1/reviews", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert any(field in ".".join(e["loc"]) for e in response.json()["errors"]), response.json()


async def test_script_in_a_comment_is_escaped_on_the_page(
    service: Service, publish_event: EventPublisher
) -> None:
    issued = await issue_invitation(publish_event, service)
    form = {"token": issued.token, **{k: str(v) for k, v in GOOD.items()}}
    form["comment"] = "<script>alert('x')</script> <b>bold</b>"
    page = await service.client.post("/survey/answers", data=form)
    assert page.status_code == 200 and "Thank you" in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text


async def test_wrong_codes_are_rate_limited_per_client_address(
    service: Service, publish_event: EventPublisher
) -> None:
    issued = await issue_invitation(publish_event, service)
    transport = httpx.ASGITransport(app=service.app, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as guesser:
        limit = service.settings.code_failure_limit
        for attempt in range(limit):
            wrong = await guesser.post(
                "/api/v1/reviews", json=answers(GOOD, pin=f"WRONG{attempt:04d}XYZ")
            )
            assert wrong.status_code == 404
        blocked = await guesser.post("/api/v1/reviews", json=answers(GOOD, pin=issued.pin))
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    # other addresses are unaffected
    ok = await service.client.post("/api/v1/reviews", json=answers(GOOD, pin=issued.pin))
    assert ok.status_code == 201


async def test_a_genuine_link_before_its_invitation_is_being_prepared_then_works(
    service: Service, publish_event: EventPublisher
) -> None:
    """A client who opens the mail's link before this service has consumed the invitation
    event is told to come back in a minute (never "not one we issued"), as often as they
    try, without being locked out; once the event arrives the same link works."""
    invitation_id = unique("inv")
    token = SecretHasher(PEPPER).link_token(invitation_id)
    transport = httpx.ASGITransport(app=service.app, client=("203.0.113.77", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as early:
        for _ in range(service.settings.code_failure_limit + 2):
            api = await early.post("/api/v1/reviews", json=answers(GOOD, token=token))
            assert api.status_code == 503, api.text
            assert api.headers["content-type"].startswith("application/problem+json")
            assert api.json()["code"] == "preparing"
            assert "being prepared" in api.json()["detail"]
            assert int(api.headers["retry-after"]) > 0
        page = await early.get("/survey", params={"token": token})
        assert page.status_code == 503 and int(page.headers["retry-after"]) > 0
        assert "being prepared" in page.text and "not one we issued" not in page.text
        assert 'http-equiv="refresh"' in page.text and f"/survey?token={token}" in page.text

        issued = await issue_invitation(
            publish_event, service, invitation_id=invitation_id, token=token
        )
        form = await early.get("/survey", params={"token": issued.token})
        assert form.status_code == 200 and "<form" in form.text
        ok = await early.post("/api/v1/reviews", json=answers(GOOD, token=token))
        assert ok.status_code == 201, ok.text


async def test_a_link_mailed_in_the_first_format_still_works(
    service: Service, publish_event: EventPublisher
) -> None:
    issued = await issue_invitation(publish_event, service, token=new_token())
    assert SecretHasher(PEPPER).linked_invitation(issued.token or "") is None
    page = await service.client.get("/survey", params={"token": issued.token})
    assert page.status_code == 200 and "<form" in page.text
    ok = await service.client.post("/api/v1/reviews", json=answers(GOOD, token=issued.token))
    assert ok.status_code == 201, ok.text


async def test_forged_and_unknown_links_are_404_and_count_as_wrong_codes(
    service: Service, publish_event: EventPublisher
) -> None:
    """A link whose MAC is not ours (forged, altered, or another pepper's) is a wrong code like
    a wrong PIN: 404, counted, and past the limit the address is refused for a while."""
    issued = await issue_invitation(publish_event, service)
    genuine = SecretHasher(PEPPER).link_token(unique("inv"))
    _, nonce, mac = genuine.split(".")
    forged = [
        f"{unique('inv')}.{nonce}.{mac}",  # another invitation under a copied MAC
        SecretHasher("another-pepper").link_token(unique("inv")),
        "not-a-real-token-at-all-000000",  # the first format, never issued
    ]
    transport = httpx.ASGITransport(app=service.app, client=("203.0.113.78", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as guesser:
        for attempt in range(service.settings.code_failure_limit):
            token = forged[attempt % len(forged)]
            wrong = await guesser.post("/api/v1/reviews", json=answers(GOOD, token=token))
            assert wrong.status_code == 404, (token, wrong.text)
            assert wrong.json()["code"] == "unknown"
        page = await guesser.get("/survey", params={"token": forged[0]})
        assert page.status_code == 429
        blocked = await guesser.post("/api/v1/reviews", json=answers(GOOD, pin=issued.pin))
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0


async def test_removal_survey_answers_are_reviews_with_the_reason(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    reviews = await topic_reader(Topic.REVIEWS_PUBLISHED)
    issued = await issue_invitation(
        publish_event, service, removal_reason=RemovalReason.OUT_OF_AREA
    )
    page = await service.client.get("/survey", params={"token": issued.token})
    assert "ended your working relationship" in page.text
    submitted = await service.client.post("/api/v1/reviews", json=answers(GOOD, pin=issued.pin))
    review_id = submitted.json()["review_id"]
    published = await reviews.wait_for(lambda e: e.data.get("review_id") == review_id)
    assert published.data["survey"] == "removal"
    assert published.data["removal_reason"] == "out_of_area"
    assert published.data["transaction_id"] is None


@pytest.mark.parametrize("reason", [RemovalReason.ACTIVE_HANDOFF, RemovalReason.BAD_FIT])
async def test_a_handoff_survey_page_says_the_client_was_handed_on(
    service: Service, publish_event: EventPublisher, reason: RemovalReason
) -> None:
    agent_id = unique("A")
    await announce_agent(publish_event, service, agent_id)
    issued = await issue_invitation(
        publish_event, service, agent_id=agent_id, removal_reason=reason
    )
    page = await service.client.get("/survey", params={"token": issued.token})
    assert page.status_code == 200
    assert "Jo Agent handed you on to another agent" in page.text
    assert "ended your working relationship" not in page.text


async def test_concurrent_submissions_with_one_code_make_one_review(
    service: Service, publish_event: EventPublisher, mail: MailSink
) -> None:
    """The invitation is locked when its code is looked up for a submission, and `used` is read
    after the lock: of eight submissions at once, one is stored and seven are told it is
    answered; the agent is told once."""
    agent_id = unique("A")
    await announce_agent(publish_event, service, agent_id)
    issued = await issue_invitation(publish_event, service, agent_id=agent_id)
    outcomes = await asyncio.gather(
        *(
            service.client.post("/api/v1/reviews", json=answers(GOOD, pin=issued.pin))
            for _ in range(8)
        )
    )
    codes = sorted(response.status_code for response in outcomes)
    assert codes == [201] + [409] * 7, [r.text for r in outcomes]
    async with service.app.state.runtime.pool.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT count(*) FROM reviews WHERE invitation_id = $1", issued.invitation_id
        )
        notices = await conn.fetchval(
            "SELECT count(*) FROM mail_outbox WHERE dedupe_key = 'review-notice:' || "
            "(SELECT review_id FROM reviews WHERE invitation_id = $1)",
            issued.invitation_id,
        )
    assert stored == 1 and notices == 1
