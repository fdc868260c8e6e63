"""Access isolation and PIN throttling, on the four services running in-process.

Agent A's token is tried on every agent-facing route of every service against agent B's data:
it never reads B's data (no marker of B's in any answer) and never changes it. Each row also
runs as B, the owner, so the seeded data is known to be there and the check can fail. Then
bursts of wrong PINs — concurrent from one address, spread over many addresses, through the
JSON API and the HTML form — are throttled, and the throttle lifts when the window ends.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from devtools.smtp_sink import MailSink
from shared.auth import Role
from shared.clock import FixedClock
from shared.contracts import (
    AGENT_UPSERTED,
    INVITATION_ISSUED,
    LEAD_ASSIGNED,
    PARTICIPATION_CHANGED,
    TRANSACTION_CLOSED,
)
from shared.crypto import SecretHasher, new_pin, new_token
from tests.conftest import running_app
from tests.reliability.hostile import NOW, PEPPER, SERVICES, bearer, valid_data
from tests.support.kafka import EventPublisher, start_group_at_end
from tests.support.waiting import eventually, until_stored

pytestmark = pytest.mark.integration

GOOD = {"communication": 5, "friendliness": 4, "professionalism": 5, "area_knowledge": 4}


@dataclass
class Running:
    app: FastAPI
    client: httpx.AsyncClient
    clock: FixedClock
    settings: Any


@asynccontextmanager
async def run_service(
    name: str, kafka_bootstrap: str, database_url: str, smtp_port: int, **overrides: Any
) -> AsyncIterator[Running]:
    spec = SERVICES[name]
    settings = spec.settings(kafka_bootstrap, database_url, smtp_port=smtp_port, **overrides)
    await start_group_at_end(kafka_bootstrap, settings.group_id, spec.topics)
    clock = FixedClock(NOW)
    app = spec.create_app(settings, clock=clock)
    async with running_app(app) as client:
        yield Running(app, client, clock, settings)


@dataclass
class Seeded:
    """Agents A and B, and B's data in every service, with markers to look for."""

    services: dict[str, Running]
    a: str
    b: str
    b_review: str
    b_review_marker: str
    b_lead: str
    b_client_email: str
    b_removal: str
    b_removal_marker: str
    b_transaction: str
    a_lead: str


def answers(pin: str, comment: str) -> dict[str, Any]:
    return {"pin": pin, "scores": {**GOOD, "overall": 5}, "comment": comment}


async def issue(publish_event: EventPublisher, reviews: Running, agent_id: str) -> str:
    """An invitation for a client of `agent_id`, known to the reviews service; its PIN."""
    hasher, pin = SecretHasher(PEPPER), new_pin()
    data = valid_data(INVITATION_ISSUED.ce_type, uuid.uuid4().hex[:12])
    data.update(agent_id=agent_id, pin_hash=hasher.pin_hash(pin))
    data["token_hash"] = hasher.token_hash(new_token())
    event = INVITATION_ISSUED.model.model_validate(data)
    await publish_event(INVITATION_ISSUED, event)
    await until_stored(reviews.settings, "invitations", "invitation_id", data["invitation_id"], 60)
    return pin


async def rostered(publish_event: EventPublisher, agent_id: str, mode: str) -> None:
    agent = valid_data(AGENT_UPSERTED.ce_type, "x")
    agent.update(agent_id=agent_id, email=f"{agent_id.lower()}@realty.example")
    await publish_event(AGENT_UPSERTED, AGENT_UPSERTED.model.model_validate(agent))
    participation = valid_data(PARTICIPATION_CHANGED.ce_type, "x")
    participation.update(agent_id=agent_id, mode=mode)
    await publish_event(
        PARTICIPATION_CHANGED, PARTICIPATION_CHANGED.model.model_validate(participation)
    )


@pytest.fixture(scope="module")
async def seeded(
    kafka_bootstrap: str, database_url: str, smtp_sink: MailSink, _producer: Any
) -> AsyncIterator[Seeded]:
    publish_event = EventPublisher(_producer)
    run = uuid.uuid4().hex[:8]
    a, b = f"A-{run}", f"B-{run}"
    async with AsyncExitStack() as stack:
        services = {
            name: await stack.enter_async_context(
                run_service(name, kafka_bootstrap, database_url, smtp_sink.port)
            )
            for name in sorted(SERVICES)
        }
        for agent_id in (a, b):
            await rostered(publish_event, agent_id, "opt_in_hidden")
        # reviews: one published review each, B's with a marker in the comment
        marker = f"review-of-b-{run}"
        reviews = services["reviews"]
        pin_b = await issue(publish_event, reviews, b)
        made = await reviews.client.post("/api/v1/reviews", json=answers(pin_b, marker))
        assert made.status_code == 201, made.text
        b_review = made.json()["review_id"]
        pin_a = await issue(publish_event, reviews, a)
        made_a = await reviews.client.post("/api/v1/reviews", json=answers(pin_a, "fine"))
        assert made_a.status_code == 201, made_a.text
        # scoring hears of B's review from the reviews service: B's hidden rating has numbers
        # removals: a lead each; B asks to remove theirs (waits for a coordinator)
        leads = {}
        for agent_id in (a, b):
            lead = valid_data(LEAD_ASSIGNED.ce_type, f"{agent_id}-{run}")
            lead["agent_id"] = agent_id
            await publish_event(LEAD_ASSIGNED, LEAD_ASSIGNED.model.model_validate(lead))
            leads[agent_id] = lead
        # invitations: B closed a transaction without client details (a contact request)
        closing = valid_data(TRANSACTION_CLOSED.ce_type, f"b-{run}")
        closing["representations"][0].update(agent_id=b, clients=[])
        await publish_event(TRANSACTION_CLOSED, TRANSACTION_CLOSED.model.model_validate(closing))

        async def everything_arrived() -> bool:
            checks = [
                await services["scoring"].client.get(
                    f"/api/v1/agents/{b}/rating", headers=bearer(b, Role.AGENT)
                ),
                await services["removals"].client.get(
                    "/api/v1/leads", headers=bearer(b, Role.AGENT)
                ),
                await services["invitations"].client.get(
                    f"/api/v1/agents/{b}/contact-requests", headers=bearer(b, Role.AGENT)
                ),
            ]
            return (
                checks[0].status_code == 200
                and checks[0].json()["reviews_total"] == 1
                and len(checks[1].json()["items"]) == 1
                and len(checks[2].json()["items"]) == 1
            )

        await eventually(everything_arrived, timeout=90, every=0.5)
        removal_marker = f"removal-notes-of-b-{run} the client moved to another city"
        asked = await services["removals"].client.post(
            "/api/v1/removals",
            json={
                "lead_id": leads[b]["lead_id"],
                "reason": "active_handoff",
                "notes": removal_marker,
            },
            headers=bearer(b, Role.AGENT),
        )
        assert asked.status_code == 201, asked.text
        yield Seeded(
            services,
            a,
            b,
            b_review,
            marker,
            leads[b]["lead_id"],
            leads[b]["client"]["email"],
            asked.json()["removal_id"],
            removal_marker,
            closing["transaction_id"],
            leads[a]["lead_id"],
        )


@dataclass(frozen=True)
class Route:
    """One agent-facing route tried on B's data: as A (refused, or B's data left out) and as B
    (served)."""

    service: str
    method: str
    path: str
    body: dict[str, Any] | None
    as_other: frozenset[int]
    as_owner: frozenset[int]


def routes(s: Seeded) -> list[Route]:
    b = s.b

    def route(
        service: str, method: str, path: str, other: set[int], owner: set[int], body: Any = None
    ) -> Route:
        return Route(service, method, path, body, frozenset(other), frozenset(owner))

    return [
        route("reviews", "GET", f"/api/v1/agents/{b}/reviews", {403}, {200}),
        route("reviews", "GET", f"/api/v1/reviews/{s.b_review}", {404}, {200}),
        route(
            "reviews",
            "POST",
            f"/api/v1/reviews/{s.b_review}/response",
            {404},
            {200},
            {"text": "a reply"},
        ),
        route(
            "reviews",
            "POST",
            f"/api/v1/reviews/{s.b_review}/dispute",
            {404},
            {201},
            {"reason": "not my client"},
        ),
        route("reviews", "GET", f"/api/v1/reviews/{s.b_review}/dispute", {404}, {200}),
        route("reviews", "GET", f"/api/v1/agents/{b}/funnel", {403}, {200}),
        route("reviews", "GET", "/api/v1/moderation/disputes", {403}, {403}),
        route(
            "reviews",
            "POST",
            f"/api/v1/moderation/disputes/{s.b_review}/decision",
            {403},
            {403},
            {"decision": "withdraw", "reason": "spite"},
        ),
        route("reviews", "GET", "/api/v1/moderation/queue", {403}, {403}),
        route(
            "reviews",
            "POST",
            f"/api/v1/moderation/{s.b_review}/decision",
            {403},
            {403},
            {"decision": "reject", "reason": "spite"},
        ),
        route(
            "reviews",
            "POST",
            f"/api/v1/reviews/{s.b_review}/withdrawal",
            {403},
            {403},
            {"reason": "spite"},
        ),
        route("scoring", "GET", f"/api/v1/agents/{b}/rating", {200}, {200}),
        route("scoring", "GET", "/api/v1/agents", {200}, {200}),
        route("removals", "GET", "/api/v1/removals", {200}, {200}),
        route("removals", "GET", f"/api/v1/removals?agent_id={b}", {200}, {200}),
        route("removals", "GET", f"/api/v1/removals/{s.b_removal}", {403}, {200}),
        route(
            "removals",
            "POST",
            f"/api/v1/removals/{s.b_removal}/decision",
            {403},
            {403},
            {"decision": "approve", "note": "self-approved"},
        ),
        route("removals", "GET", "/api/v1/leads", {200}, {200}),
        route(
            "removals",
            "POST",
            "/api/v1/removals",
            {403},
            {409},
            {"lead_id": s.b_lead, "reason": "changed_mind", "notes": "x" * 30},
        ),
        route(
            "removals",
            "POST",
            f"/api/v1/leads/{s.b_lead}/client-responses",
            {403},
            {409, 200},
            {},
        ),
        route(
            "invitations",
            "PUT",
            f"/api/v1/agents/{b}/participation",
            {403},
            {200},
            {"mode": "opt_in_hidden"},
        ),
        route("invitations", "GET", f"/api/v1/agents/{b}/contact-requests", {403}, {200}),
        route("invitations", "GET", f"/api/v1/agents/{b}/invitations", {403}, {200}),
        route("invitations", "GET", f"/api/v1/agents/{b}/funnel", {403}, {200}),
        route(
            "invitations",
            "POST",
            f"/api/v1/agents/{b}/codes",
            {403},
            {404},
            {"client_email": "someone@example.com", "street": "1 Nowhere", "postcode": "00000"},
        ),
        route(
            "invitations",
            "POST",
            f"/api/v1/transactions/{s.b_transaction}/clients",
            {404},
            {200},
            {"clients": [{"name": "Eve", "email": f"eve-{uuid.uuid4().hex[:6]}@example.com"}]},
        ),
        route("invitations", "GET", "/api/v1/phone-tasks", {403}, {403}),
        route(
            "invitations",
            "POST",
            "/api/v1/erasures",
            {403},
            {403},
            {"email": "someone@example.com"},
        ),
    ]


async def state_of_b(s: Seeded) -> dict[str, Any]:
    """B's data as B sees it (what A must not be able to change)."""
    as_b = bearer(s.b, Role.AGENT)
    review = await s.services["reviews"].client.get(f"/api/v1/reviews/{s.b_review}", headers=as_b)
    removal = await s.services["removals"].client.get(
        f"/api/v1/removals/{s.b_removal}", headers=as_b
    )
    leads = await s.services["removals"].client.get("/api/v1/leads", headers=as_b)
    requests = await s.services["invitations"].client.get(
        f"/api/v1/agents/{s.b}/contact-requests", headers=as_b
    )
    async with s.services["invitations"].app.state.runtime.pool.acquire() as conn:
        mode = await conn.fetchval("SELECT mode FROM agents WHERE agent_id = $1", s.b)
        invitations = await conn.fetchval(
            "SELECT count(*) FROM invitations WHERE agent_id = $1", s.b
        )
    return {
        "review": {k: v for k, v in review.json().items() if k != "decisions"},
        "decisions": len(review.json()["decisions"]),
        "removal": removal.json(),
        "leads": leads.json(),
        "contact_requests": requests.json(),
        "mode": mode,
        "invitations": invitations,
    }


async def test_agent_a_never_reads_or_changes_agent_b_data(seeded: Seeded) -> None:
    s = seeded
    secrets_of_b = [s.b_review_marker, s.b_removal_marker, s.b_client_email, s.b_removal]
    before = await state_of_b(s)
    refused: list[str] = []
    for route in routes(s):
        client = s.services[route.service].client
        answer = await client.request(
            route.method, route.path, json=route.body, headers=bearer(s.a, Role.AGENT)
        )
        label = f"{route.method} {route.path} ({route.service})"
        assert answer.status_code in route.as_other, (label, answer.status_code, answer.text)
        # an id that A put in the path may be echoed back (problem+json `instance`): not a leak
        leaked = [s_ for s_ in secrets_of_b if s_ in answer.text and s_ not in route.path]
        assert not leaked, (label, "leaked", leaked)
        if answer.status_code == 200 and route.path.endswith("/rating"):
            shown = answer.json()
            assert shown["visibility"] == "hidden" and shown["explanation"] is None, shown
            assert shown["stars"] is None and shown["reviews_total"] is None, shown
        if route.service == "scoring" and route.path == "/api/v1/agents":
            assert s.b not in answer.text
        refused.append(label)
    after = await state_of_b(s)
    assert after == before, "A's requests changed B's data"
    # the owner is served on the same routes: the data was there to leak
    for route in routes(s):
        answer = await s.services[route.service].client.request(
            route.method, route.path, json=route.body, headers=bearer(s.b, Role.AGENT)
        )
        assert answer.status_code in route.as_owner, (route, answer.status_code, answer.text)
    own_rating = await s.services["scoring"].client.get(
        f"/api/v1/agents/{s.b}/rating", headers=bearer(s.b, Role.AGENT)
    )
    assert own_rating.json()["reviews_total"] == 1
    own_reviews = await s.services["reviews"].client.get(
        f"/api/v1/agents/{s.b}/reviews", headers=bearer(s.b, Role.AGENT)
    )
    assert s.b_review_marker in own_reviews.text
    own_removals = await s.services["removals"].client.get(
        "/api/v1/removals", headers=bearer(s.b, Role.AGENT)
    )
    assert s.b_removal_marker in own_removals.text
    own_leads = await s.services["removals"].client.get(
        "/api/v1/leads", headers=bearer(s.b, Role.AGENT)
    )
    assert s.b_client_email in own_leads.text
    print(f"\naccess: {len(refused)} routes tried with another agent's token, none leaked")


async def test_tokens_that_are_not_valid_are_401_on_every_protected_route(seeded: Seeded) -> None:
    """Expired, wrongly signed, role-less and `none`-algorithm tokens for B are all refused."""
    s = seeded
    # token expiry is checked against real time, not the services' fixed clock
    real_now = datetime.now(UTC).timestamp()
    secret = s.services["reviews"].settings.auth_secret
    forged = [
        jwt.encode({"sub": s.b, "role": "agent", "exp": real_now - 60}, secret, algorithm="HS256"),
        jwt.encode(
            {"sub": s.b, "role": "agent", "exp": real_now + 600}, "x" * 40, algorithm="HS256"
        ),
        jwt.encode({"sub": s.b, "exp": real_now + 600}, secret, algorithm="HS256"),
        jwt.encode({"sub": s.b, "role": "root", "exp": real_now + 600}, secret, algorithm="HS256"),
        jwt.encode({"sub": s.b, "role": "agent", "exp": real_now + 600}, "", algorithm="none"),
    ]
    for route in routes(s):
        if route.path in ("/api/v1/agents",) or route.path.endswith("/rating"):
            continue  # public routes: a bad token is refused there too, checked below
        for token in forged:
            answer = await s.services[route.service].client.request(
                route.method,
                route.path,
                json=route.body,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 401, (route.path, answer.status_code)
    rating = await s.services["scoring"].client.get(
        f"/api/v1/agents/{s.b}/rating", headers={"Authorization": f"Bearer {forged[1]}"}
    )
    assert rating.status_code == 401


# PIN brute force


@pytest.fixture(scope="module")
async def guarded(
    kafka_bootstrap: str, database_url: str, smtp_sink: MailSink
) -> AsyncIterator[Running]:
    """A reviews service with small limits, so a burst is bounded."""
    async with run_service(
        "reviews",
        kafka_bootstrap,
        database_url,
        smtp_sink.port,
        code_failure_limit=5,
        code_failure_global_limit=25,
        code_failure_window_minutes=15,
    ) as service:
        yield service


def from_address(service: Running, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=service.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://service")


async def test_a_concurrent_burst_of_wrong_pins_from_one_address_is_held_at_the_limit(
    guarded: Running, publish_event: EventPublisher
) -> None:
    limit = guarded.settings.code_failure_limit
    pin = await issue(publish_event, guarded, f"A-{uuid.uuid4().hex[:8]}")
    async with from_address(guarded, "198.51.100.7") as guesser:
        burst = await asyncio.gather(
            *(
                guesser.post("/api/v1/reviews", json=answers(f"WRONG-{n:04d}-XXXX", "guess"))
                for n in range(4 * limit)
            )
        )
        statuses = [answer.status_code for answer in burst]
        checked = statuses.count(404)
        throttled = [answer for answer in burst if answer.status_code == 429]
        print(f"\nburst of {len(burst)} wrong PINs: {checked} checked, {len(throttled)} refused")
        assert checked <= limit, f"{checked} wrong PINs were checked, the limit is {limit}"
        assert checked + len(throttled) == len(burst), statuses
        assert all(int(a.headers["retry-after"]) > 0 for a in throttled)
        # the right PIN is refused too while the address is locked out, on both routes
        locked = await guesser.post("/api/v1/reviews", json=answers(pin, "me"))
        assert locked.status_code == 429
        page = await guesser.post("/survey", data={"pin": pin})
        assert page.status_code == 429
        guarded.clock.advance(timedelta(minutes=15, seconds=1))
        accepted = await guesser.post("/api/v1/reviews", json=answers(pin, "me"))
        assert accepted.status_code == 201, accepted.text


async def test_wrong_pins_spread_over_many_addresses_hit_the_global_limit(
    guarded: Running, publish_event: EventPublisher
) -> None:
    """A botnet trying a few PINs from each address: the total is throttled too."""
    settings = guarded.settings
    guarded.clock.advance(timedelta(minutes=30))  # a window of its own
    pin = await issue(publish_event, guarded, f"A-{uuid.uuid4().hex[:8]}")
    per_address = settings.code_failure_limit - 1
    addresses = [f"203.0.113.{n}" for n in range(1, 2 * settings.code_failure_global_limit)]
    statuses: list[int] = []
    for n, address in enumerate(addresses):
        async with from_address(guarded, address) as guesser:
            for attempt in range(per_address):
                if n % 2:  # half through the HTML form: the same counter
                    answer = await guesser.post("/survey", data={"pin": f"BAD{n:03d}{attempt}XXXX"})
                else:
                    answer = await guesser.post(
                        "/api/v1/reviews", json=answers(f"BAD{n:03d}{attempt}XXXX", "guess")
                    )
                statuses.append(answer.status_code)
        if statuses[-1] == 429:
            break
    checked = statuses.count(404)
    print(f"\nspread guessing: {len(statuses)} tries, {checked} checked before the global limit")
    assert checked <= settings.code_failure_global_limit
    assert statuses[-1] == 429
    async with from_address(guarded, "192.0.2.200") as newcomer:
        blocked = await newcomer.post("/api/v1/reviews", json=answers(pin, "me"))
        assert blocked.status_code == 429
        guarded.clock.advance(timedelta(minutes=15, seconds=1))
        accepted = await newcomer.post("/api/v1/reviews", json=answers(pin, "me"))
        assert accepted.status_code == 201, accepted.text
