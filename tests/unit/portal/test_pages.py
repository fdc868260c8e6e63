"""The portal's pages with the services faked over HTTP: sign-in, CSRF, the token each call
carries, how a service's refusal is shown, and every page rendering from the APIs' shapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.unit.portal.conftest import FakeServices, csrf_of, sign_in

NOW = "2026-12-01T12:00:00Z"
SCORES = {
    "communication": 5,
    "friendliness": 4,
    "professionalism": 5,
    "area_knowledge": 4,
    "overall": 2,
}
REVIEW: dict[str, Any] = {
    "review_id": "R-1",
    "agent_id": "A-1",
    "transaction_id": "T-1",
    "survey": "transaction",
    "removal_reason": None,
    "channel": "email",
    "status": "awaiting_response",
    "submitted_at": "2026-11-28T10:00:00Z",
    "scores": SCORES,
    "positive": False,
    "comment": "<b>Slow</b> to answer.",
    "display_name": None,
    "flags": [],
    "signals": [],
    "response_due_at": "2026-12-05T10:00:00Z",
    "agent_response": None,
    "published_at": None,
    "decisions": [],
}
RATING = {
    "agent_id": "A-1",
    "as_of": NOW,
    "visibility": "hidden",
    "policy_version": "2026-11.1",
    "stars": 2,
    "status": "silver",
    "status_since": "2026-10-01T00:00:00Z",
    "next_review_at": "2027-01-01T00:00:00Z",
    "positive_reviews_3m": 4,
    "positive_reviews_6m": 5,
    "reviews_total": 6,
    "category_averages": {},
    "explanation": {
        "reviews_counted": 6,
        "windows": [],
        "periods": [
            {
                "status": "silver",
                "start": "2026-10-01T00:00:00Z",
                "end": "2027-01-01T00:00:00Z",
                "reason": "x",
            }
        ],
        "next_change_at": "2026-12-20T00:00:00Z",
    },
}
CONTACT_REQUESTS = {
    "items": [
        {
            "transaction_id": "T-9",
            "closed_at": "2026-11-25T15:00:00Z",
            "deadline": "2026-12-09T15:00:00Z",
            "clients_missing": [{"client": 1, "name": "Kim Lee", "label": "Kim Lee"}],
            "paused": False,
        }
    ]
}
LEAD = {
    "lead_id": "L-1",
    "agent_id": "A-1",
    "status": "open",
    "assigned_at": "2026-11-01T00:00:00Z",
    "client_responded_at": None,
    "client": {
        "name": "Sam Lee",
        "email": "sam@example.com",
        "phone": None,
        "preferred_contact": "email",
    },
    "completed_by_transaction": None,
    "completed_at": None,
    "client_erased_at": None,
    "handed_from_agent_id": None,
}
REMOVAL = {
    "removal_id": "RM-1",
    "lead_id": "L-2",
    "agent_id": "A-1",
    "reason": "active_handoff",
    "notes": "Moving to Austin, wants an agent there.",
    "status": "pending",
    "needs_approval": True,
    "client_ever_responded": True,
    "proof": None,
    "referral_fee_owed": True,
    "requested_at": "2026-11-30T00:00:00Z",
    "decided_by": None,
    "decided_at": None,
    "decision_note": None,
    "completed_at": None,
    "handed_to_agent_id": None,
    "steps": [],
}
TASK = {
    "invitation_id": "I-1",
    "agent_id": "A-1",
    "transaction_id": "T-1",
    "lead_id": None,
    "survey": "transaction",
    "removal_reason": None,
    "issued_at": "2026-11-20T00:00:00Z",
    "expires_at": "2026-12-20T00:00:00Z",
    "claimed_by": None,
}


INVITED_FUNNEL = {
    "agent_id": "A-1",
    "from": "2026-09-02T12:00:00Z",
    "to": NOW,
    "closings": 7,
    "clients": 11,
    "invited": {"email": 8, "phone": 1, "code": 1, "total": 10},
    "not_invited": 1,
}
ANSWERED_FUNNEL = {
    "agent_id": "A-1",
    "from": "2026-09-02T12:00:00Z",
    "to": NOW,
    "invited": 10,
    "answered": 6,
    "with_moderator": 1,
    "negative": 2,
    "published": 4,
    "withdrawn": 0,
    "shown_publicly": 3,
}
INVITATION = {
    "invitation_id": "I-9",
    "transaction_id": "T-1",
    "channel": "email",
    "origin": "agent",
    "client_name": "Pat Doe",
    "email": "pat@exmaple.com",
    "status": "open",
    "issued_at": "2026-11-21T00:00:00Z",
    "expires_at": "2026-12-21T00:00:00Z",
    "replaces": None,
    "replaced_by": None,
    "resendable": True,
}
DISPUTE = {
    "dispute_id": "D-1",
    "review_id": "R-1",
    "agent_id": "A-1",
    "reason": "Not my client: the closing names another agent.",
    "status": "open",
    "opened_at": "2026-11-30T09:00:00Z",
    "answer_due_at": "2026-12-02T09:00:00Z",
    "overdue": False,
    "resolved_at": None,
    "resolution": None,
}


def canned(services: FakeServices) -> None:
    services.routes.update(
        {
            ("GET", "scoring.test", r"/api/v1/agents/A-1/rating"): RATING,
            ("GET", "reviews.test", r"/api/v1/agents/A-1/reviews"): {
                "reviews": [
                    REVIEW,
                    {**REVIEW, "review_id": "R-2", "status": "published", "positive": True},
                ],
                "under_review": [
                    {"review_id": "R-3", "submitted_at": NOW, "status": "under_review"}
                ],
            },
            ("GET", "reviews.test", r"/api/v1/reviews/R-1"): REVIEW,
            ("GET", "invitations.test", r"/api/v1/agents/A-1/contact-requests"): CONTACT_REQUESTS,
            ("GET", "removals.test", r"/api/v1/leads"): {"items": [LEAD]},
            ("GET", "removals.test", r"/api/v1/removals"): {"items": [REMOVAL]},
            ("GET", "reviews.test", r"/api/v1/moderation/queue"): {
                "items": [
                    {
                        **REVIEW,
                        "status": "moderation",
                        "flags": ["phone_number"],
                        "signals": ["burst"],
                    }
                ]
            },
            ("GET", "invitations.test", r"/api/v1/phone-tasks"): {"items": [TASK]},
            ("GET", "invitations.test", r"/api/v1/agents/A-1/funnel"): INVITED_FUNNEL,
            ("GET", "reviews.test", r"/api/v1/agents/A-1/funnel"): ANSWERED_FUNNEL,
            ("GET", "invitations.test", r"/api/v1/agents/A-1/invitations"): {"items": [INVITATION]},
            ("GET", "reviews.test", r"/api/v1/moderation/disputes"): {
                "items": [{"dispute": DISPUTE, "review": {**REVIEW, "status": "published"}}]
            },
        }
    )


AGENT_PAGES = [
    (
        "/agent",
        [
            "4 positive reviews in the last 3 months",
            "more by 1 Jan 2027 keep",
            "1 closing still needs a client contact",
        ],
    ),
    ("/agent/clients", ["Closing T-9", "Kim Lee", "Generate code"]),
    ("/agent/reviews", ["Held for your response", "&lt;b&gt;Slow&lt;/b&gt;", "Respond by"]),
    ("/reviews/R-1", ["Publish my response"]),
    ("/agent/participation", ["Participate privately", "checked"]),
    ("/agent/leads", ["Sam Lee", "Waiting for a coordinator"]),
    ("/agent/leads/L-1/removal", ["Hand off to another agent", "Notes (required)"]),
    ("/agent/removal-reasons/no_contact", ["We could not reach you", "could not get in touch"]),
]


@pytest.mark.parametrize(("path", "expected"), AGENT_PAGES)
async def test_every_agent_page_renders_what_the_services_answer(
    portal_factory: Callable[..., Any], services: FakeServices, path: str, expected: list[str]
) -> None:
    canned(services)
    async with portal_factory() as client:
        await sign_in(client, "A-1", "agent")
        page = await client.get(path)
    assert page.status_code == 200, page.text
    for text in expected:
        assert text in page.text, text
    assert "<b>Slow</b>" not in page.text


@pytest.mark.parametrize(
    ("role", "path", "expected"),
    [
        ("moderator", "/moderation", ["a phone number", "many reviews at once", "Reject"]),
        (
            "moderator",
            "/moderation/disputes",
            ["Not my client", "Answer by 2 Dec 2026", "Keep the review"],
        ),
        ("coordinator", "/coordination", ["Agent who takes the client over", "Moving to Austin"]),
        ("surveyor", "/phone-tasks", ["Claim", "Closing survey for agent A-1"]),
    ],
)
async def test_every_staff_page_renders_what_the_services_answer(
    portal_factory: Callable[..., Any],
    services: FakeServices,
    role: str,
    path: str,
    expected: list[str],
) -> None:
    canned(services)
    async with portal_factory() as client:
        signed = await sign_in(client, "S-1", role)
        assert path.startswith(signed.headers["location"]), "signed in, staff land on their queue"
        page = await client.get(path)
    assert page.status_code == 200, page.text
    for text in expected:
        assert text in page.text, text


async def test_each_call_carries_a_short_lived_token_of_the_signed_in_person(
    portal_factory: Callable[..., Any], services: FakeServices
) -> None:
    canned(services)
    async with portal_factory() as client:
        await sign_in(client, "A-1", "agent")
        await client.get("/agent/clients")
    _, _, claims, _ = services.calls[-1]
    assert (claims["sub"], claims["role"]) == ("A-1", "agent")
    assert claims["exp"] - claims["iat"] == 300


async def test_pages_need_a_sign_in(portal_factory: Callable[..., Any]) -> None:
    async with portal_factory() as client:
        page = await client.get("/agent")
    assert page.status_code == 303
    assert page.headers["location"] == "/sign-in"


async def test_the_development_sign_in_is_refused_outside_local_development(
    portal_factory: Callable[..., Any],
) -> None:
    async with portal_factory(environment="test") as client:
        page = await client.get("/sign-in")
        assert "Development sign-in" not in page.text
        refused = await client.post(
            "/sign-in/development",
            data={
                "csrf": csrf_of(page.text) if "csrf" in page.text else "",
                "sub": "A-1",
                "role": "agent",
            },
        )
    assert refused.status_code == 403
    assert (
        "portal_session" not in refused.headers.get("set-cookie", "")
        or "person" not in refused.text
    )


async def test_a_form_without_the_session_token_is_refused_and_nothing_is_called(
    portal_factory: Callable[..., Any], services: FakeServices
) -> None:
    canned(services)
    async with portal_factory() as client:
        await sign_in(client, "A-1", "agent")
        before = len(services.calls)
        forged = await client.post("/agent/participation", data={"mode": "opt_out", "csrf": "x"})
        missing = await client.post("/agent/participation", data={"mode": "opt_out"})
    assert forged.status_code == missing.status_code == 403
    assert "Form expired" in forged.text
    assert len(services.calls) == before


async def test_a_form_sends_the_body_the_api_documents_and_says_what_happened(
    portal_factory: Callable[..., Any], services: FakeServices
) -> None:
    canned(services)
    services.routes[("PUT", "invitations.test", r"/api/v1/agents/A-1/participation")] = {
        "agent_id": "A-1",
        "mode": "opt_in_public",
    }
    async with portal_factory() as client:
        await sign_in(client, "A-1", "agent")
        page = await client.get("/agent/participation")
        done = await client.post(
            "/agent/participation", data={"mode": "opt_in_public", "csrf": csrf_of(page.text)}
        )
        assert done.status_code == 303
        after = await client.get(done.headers["location"])
    _, where, _, body = next(c for c in services.calls if c[0] == "PUT")
    assert (where, json.loads(body)) == (
        "invitations.test/api/v1/agents/A-1/participation",
        {"mode": "opt_in_public"},
    )
    assert "You now participate publicly" in after.text


async def test_a_refusal_the_person_can_fix_comes_back_with_the_services_words(
    portal_factory: Callable[..., Any], services: FakeServices
) -> None:
    canned(services)

    def too_short(request: httpx.Request, claims: dict[str, Any]) -> httpx.Response:
        return httpx.Response(
            422,
            json={
                "status": 422,
                "title": "Unprocessable Content",
                "detail": "notes are too short",
                "code": "notes_required",
            },
        )

    services.routes[("POST", "removals.test", r"/api/v1/removals")] = too_short
    async with portal_factory() as client:
        await sign_in(client, "A-1", "agent")
        form = await client.get("/agent/leads/L-1/removal")
        page = await client.post(
            "/agent/removals",
            data={
                "csrf": csrf_of(form.text),
                "lead_id": "L-1",
                "reason": "changed_mind",
                "notes": "short",
            },
        )
    assert page.status_code == 422
    assert "notes are too short" in page.text
    assert ">short</textarea>" in page.text, "what was typed is kept"
    assert (
        'value="changed_mind" required aria-describedby="reason-changed_mind-what" checked'
        in page.text
    )


async def test_a_services_403_is_shown_as_a_refusal_not_an_error(
    portal_factory: Callable[..., Any], services: FakeServices
) -> None:
    def forbidden(request: httpx.Request, claims: dict[str, Any]) -> httpx.Response:
        return httpx.Response(
            403,
            json={"status": 403, "title": "Forbidden", "detail": "role moderator may not do this"},
        )

    services.routes[("GET", "removals.test", r"/api/v1/removals")] = forbidden
    async with portal_factory() as client:
        await sign_in(client, "M-1", "moderator")
        page = await client.get("/coordination")
    assert page.status_code == 403
    assert "Not for you" in page.text and "role moderator may not do this" in page.text


async def test_the_phone_task_shows_the_contact_only_once_claimed_by_this_surveyor(
    portal_factory: Callable[..., Any], services: FakeServices
) -> None:
    canned(services)
    async with portal_factory() as client:
        await sign_in(client, "S-1", "surveyor")
        unclaimed = await client.get("/phone-tasks/I-1")
        assert unclaimed.status_code == 409
        assert not any(c[0] == "POST" for c in services.calls), "opening a task does not claim it"
        services.routes[("GET", "invitations.test", r"/api/v1/phone-tasks")] = {
            "items": [{**TASK, "claimed_by": "S-1"}]
        }
        services.routes[("POST", "invitations.test", r"/api/v1/phone-tasks/I-1/claim")] = {
            "invitation_id": "I-1",
            "state": "open",
            "client_name": "Jo Park",
            "client_phone": "+1 713 555 0100",
        }
        claimed = await client.get("/phone-tasks/I-1")
    assert claimed.status_code == 200
    assert "Call Jo Park" in claimed.text and "+1 713 555 0100" in claimed.text


async def test_the_funnel_period_the_agent_picks_is_asked_of_both_services(
    portal_factory: Callable[..., Any], services: FakeServices
) -> None:
    canned(services)
    async with portal_factory() as client:
        await sign_in(client, "A-1", "agent")
        page = await client.get("/agent?days=30")
    assert 'value="30" selected' in page.text
    funnels = [c for c in services.calls if c[1].endswith("/funnel")]
    assert {c[1].split("/")[0] for c in funnels} == {"invitations.test", "reviews.test"}


async def test_an_agent_disputes_a_published_review_once_with_a_reason(
    portal_factory: Callable[..., Any], services: FakeServices
) -> None:
    canned(services)
    services.routes[("GET", "reviews.test", r"/api/v1/reviews/R-2")] = {
        **REVIEW,
        "review_id": "R-2",
        "status": "published",
        "agent_response": "Thanks.",
    }
    services.routes[("POST", "reviews.test", r"/api/v1/reviews/R-2/dispute")] = DISPUTE
    async with portal_factory() as client:
        await sign_in(client, "A-1", "agent")
        page = await client.get("/reviews/R-2")
        assert "Dispute the review" in page.text
        done = await client.post(
            "/agent/reviews/R-2/dispute",
            data={"csrf": csrf_of(page.text), "reason": "Not my client."},
        )
        services.routes[("GET", "reviews.test", r"/api/v1/reviews/R-2/dispute")] = DISPUTE
        after = await client.get(done.headers["location"])
    posted = next(c for c in services.calls if c[0] == "POST")
    assert json.loads(posted[3]) == {"reason": "Not my client."}
    assert "Your dispute is with a moderator" in after.text
    assert "a moderator answers by 2 Dec 2026, 09:00 UTC" in after.text
    assert "Dispute the review" not in after.text


async def test_an_agent_resends_an_invitation_to_the_right_address(
    portal_factory: Callable[..., Any], services: FakeServices
) -> None:
    canned(services)
    services.routes[("POST", "invitations.test", r"/api/v1/invitations/I-9/resend")] = {
        "cancelled_invitation_id": "I-9",
        "invitation_id": "I-10",
        "transaction_id": "T-1",
        "expires_at": "2026-12-31T00:00:00Z",
        "status": "sent",
    }
    async with portal_factory() as client:
        await sign_in(client, "A-1", "agent")
        page = await client.get("/agent/clients")
        done = await client.post(
            "/agent/invitations/I-9/resend",
            data={"csrf": csrf_of(page.text), "email": "pat@example.com"},
        )
        after = await client.get(done.headers["location"])
    posted = next(c for c in services.calls if c[1].endswith("/resend"))
    assert json.loads(posted[3]) == {"email": "pat@example.com"}
    assert "a new one went to the right address" in after.text


def test_every_page_the_mails_link_to_is_a_page_of_the_portal() -> None:
    from services.portal import agent, signin, staff
    from shared import portal as links

    paths = {getattr(r, "path", "") for m in (agent, signin, staff) for r in m.router.routes}
    base = "http://portal.test"
    linked = [
        links.review_page(base, "R-1"),
        links.clients_page(base),
        links.disputes_page(base),
        links.participation_page(base),
    ]
    for url in linked:
        path = url.removeprefix(base)
        assert path in paths or path.replace("R-1", "{review_id}") in paths, path


@pytest.mark.parametrize(
    ("role", "page", "action", "decision", "said"),
    [
        ("moderator", "/moderation", "/moderation/R-1/decision", "reject", "Rejected: the client"),
        ("moderator", "/moderation", "/moderation/R-1/decision", "approve", "Approved: the review"),
        (
            "coordinator",
            "/coordination",
            "/coordination/RM-1/decision",
            "deny",
            "Denied: the agent",
        ),
    ],
)
async def test_a_decision_the_service_accepted_is_said_in_words(
    portal_factory: Callable[..., Any],
    services: FakeServices,
    role: str,
    page: str,
    action: str,
    decision: str,
    said: str,
) -> None:
    canned(services)
    services.routes[("POST", "reviews.test", r"/api/v1/moderation/R-1/decision")] = REVIEW
    services.routes[("POST", "removals.test", r"/api/v1/removals/RM-1/decision")] = REMOVAL
    async with portal_factory() as client:
        await sign_in(client, "S-1", role)
        form = await client.get(page)
        done = await client.post(
            action,
            data={"csrf": csrf_of(form.text), "decision": decision, "reason": "x", "note": "x"},
        )
        after = await client.get(done.headers["location"])
    assert said in after.text


async def test_a_code_for_an_address_without_a_closing_is_refused_on_the_form(
    portal_factory: Callable[..., Any], services: FakeServices
) -> None:
    canned(services)
    async with portal_factory() as client:
        await sign_in(client, "A-1", "agent")
        page = await client.get("/agent/clients")
        refused = await client.post(
            "/agent/codes",
            data={
                "csrf": csrf_of(page.text),
                "client_email": "a@b.example",
                "street": "x",
                "postcode": "1",
            },
        )
        assert refused.status_code == 303, "back to the form, not a page of its own"
        after = await client.get(refused.headers["location"])
    assert "No code was generated." in after.text
