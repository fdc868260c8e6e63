"""Schemathesis fuzzes every operation in the four services' OpenAPI documents, with each service
running in-process: no valid, invalid or badly authenticated request gets a 5xx, and every JSON
API error is RFC 9457 problem+json (401 for a bad token, 403 for a wrong role)."""

from __future__ import annotations

import asyncio
import itertools
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import jwt
import pytest
import schemathesis
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from starlette.types import Receive, Scope, Send

from devtools.smtp_sink import MailSink
from shared.auth import Role, issue_token
from shared.clock import FixedClock
from shared.contracts import (
    AGENT_UPSERTED,
    INVITATION_ISSUED,
    LEAD_ASSIGNED,
    PARTICIPATION_CHANGED,
    REVIEW_PUBLISHED,
    TRANSACTION_CLOSED,
    EventType,
)
from shared.contracts.reviews import CATEGORIES
from shared.crypto import SecretHasher, new_pin, new_token
from shared.http import PROBLEM_JSON
from tests.conftest import running_app
from tests.reliability.hostile import (
    GOOD_SCORES,
    NOW,
    PEPPER,
    SECRET,
    SERVICES,
    SQL_AND_HTML,
    valid_data,
)
from tests.support.kafka import EventPublisher, start_group_at_end
from tests.support.waiting import eventually

pytestmark = [
    pytest.mark.integration,
    # schemathesis's own strategies draw from `random`; derandomized runs stay repeatable
    pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies"),
]

BASE_URL = "http://service"
Operation = APIOperation[Any, Any, Any, Any]
FuzzCase = Case[Any]
# cases per operation and generation mode (negative: parameters and bodies the schema forbids)
FUZZ = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 8}
SLOW_FUZZ = {GenerationMode.POSITIVE: 150, GenerationMode.NEGATIVE: 80}


@dataclass(frozen=True)
class Access:
    """Who may call an operation: `roles` (none: anyone), a token that is `optional` (read if
    given), and `pages` for people, whose refusals are HTML pages rather than problem+json."""

    roles: tuple[Role, ...] = ()
    optional: bool = False
    pages: bool = False


AGENT = Access((Role.AGENT,))
SURVEYOR = Access((Role.SURVEYOR,))
MODERATOR = Access((Role.MODERATOR,))
COORDINATOR = Access((Role.COORDINATOR,))
AGENT_OR_COORDINATOR = Access((Role.AGENT, Role.COORDINATOR))
PUBLIC = Access()
PAGE = Access(pages=True)

# every operation of each OpenAPI document, with the roles its route's dependency accepts
ACCESS: dict[str, dict[str, Access]] = {
    "invitations": {
        "PUT /api/v1/agents/{agent_id}/participation": AGENT,
        "POST /api/v1/transactions/{transaction_id}/clients": AGENT,
        "GET /api/v1/agents/{agent_id}/contact-requests": AGENT,
        "POST /api/v1/agents/{agent_id}/codes": AGENT,
        "GET /api/v1/agents/{agent_id}/invitations": AGENT,
        "POST /api/v1/invitations/{invitation_id}/resend": AGENT,
        "GET /api/v1/agents/{agent_id}/funnel": AGENT,
        "GET /api/v1/phone-tasks": SURVEYOR,
        "POST /api/v1/phone-tasks/{invitation_id}/claim": SURVEYOR,
        "POST /api/v1/phone-tasks/{invitation_id}/done": SURVEYOR,
        "POST /api/v1/erasures": Access((Role.OPS,)),
        "GET /unsubscribe": PUBLIC,
        "POST /unsubscribe": PUBLIC,
    },
    "removals": {
        "POST /api/v1/removals": AGENT,
        "GET /api/v1/removals": AGENT_OR_COORDINATOR,
        "GET /api/v1/removals/{removal_id}": AGENT_OR_COORDINATOR,
        "POST /api/v1/removals/{removal_id}/decision": COORDINATOR,
        "GET /api/v1/leads": AGENT,
        "POST /api/v1/leads/{lead_id}/client-responses": AGENT,
        "POST /api/v1/leads/{lead_id}/proof-documents": AGENT,
        "GET /api/v1/proof-documents/{document_id}": AGENT_OR_COORDINATOR,
    },
    "reviews": {
        "POST /api/v1/reviews": PUBLIC,
        "POST /api/v1/phone-surveys/{invitation_id}/answers": SURVEYOR,
        "POST /api/v1/reviews/{review_id}/response": AGENT,
        "GET /api/v1/reviews/{review_id}": Access((Role.AGENT, Role.MODERATOR)),
        "GET /api/v1/agents/{agent_id}/reviews": AGENT,
        "GET /api/v1/agents/{agent_id}/funnel": AGENT,
        "GET /api/v1/moderation/queue": MODERATOR,
        "POST /api/v1/moderation/{review_id}/decision": MODERATOR,
        "POST /api/v1/reviews/{review_id}/withdrawal": MODERATOR,
        "POST /api/v1/reviews/{review_id}/dispute": AGENT,
        "GET /api/v1/reviews/{review_id}/dispute": Access((Role.AGENT, Role.MODERATOR)),
        "GET /api/v1/moderation/disputes": MODERATOR,
        "POST /api/v1/moderation/disputes/{review_id}/decision": MODERATOR,
        "GET /api/v1/review-status": PUBLIC,
        "POST /api/v1/review-status/resubmission": PUBLIC,
        "GET /survey": PAGE,
        "POST /survey": PAGE,
        "POST /survey/answers": PAGE,
        "GET /review-status": PAGE,
        "POST /review-status": PAGE,
    },
    "scoring": {
        "GET /api/v1/agents/{agent_id}/rating": Access(tuple(Role), optional=True),
        "GET /api/v1/agents": PUBLIC,
    },
}

# the HTML forms read a urlencoded body the OpenAPI document does not describe: fuzz it here
FORM_FIELDS = ("pin", "token", *CATEGORIES, "comment", "display_name")
FORM_VALUES = st.one_of(
    st.sampled_from(["", "1", "3", "5", "0", "6", "-1", " 4", "²", "\uff15", "٣", "4.0"]),
    st.text(max_size=40),
    st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=3),  # any script
)
ANSWERS = st.fixed_dictionaries(
    {category: FORM_VALUES for category in CATEGORIES},
    optional={name: FORM_VALUES for name in ("pin", "token", "comment", "display_name")},
)
PROOF_FILES = (b"%PDF-1.7\n%%EOF\n", b"\x89PNG\r\n\x1a\n\x00", b"\xff\xd8\xff\xe0\x00")
FORMS: dict[str, st.SearchStrategy[str | bytes]] = {
    # a file as the body: real PDF, PNG and JPEG starts among arbitrary bytes
    "POST /api/v1/leads/{lead_id}/proof-documents": st.one_of(
        st.sampled_from(PROOF_FILES), st.binary(max_size=256)
    ),
    "POST /survey": st.one_of(
        st.dictionaries(st.just("pin"), FORM_VALUES).map(urlencode), st.binary(max_size=64)
    ),
    "POST /review-status": st.one_of(
        ANSWERS.map(urlencode),
        st.dictionaries(st.sampled_from(FORM_FIELDS), FORM_VALUES).map(urlencode),
        st.binary(max_size=64),
    ),
    "POST /survey/answers": st.one_of(
        ANSWERS.map(urlencode),
        st.dictionaries(st.sampled_from(FORM_FIELDS), FORM_VALUES).map(urlencode),
        st.binary(max_size=64),
    ),
}

PAGE_FORMS = frozenset({"POST /survey", "POST /review-status", "POST /survey/answers"})
"""The HTML forms (a page answers them, not 200/201), which also get the tricky forms."""

# every score given, in digits that are not ASCII (some of which int() refuses)
TRICKY_FORMS = [
    urlencode({category: digit for category in CATEGORIES})
    for digit in ("²", "\uff15", "٣", "⑤", "Ⅳ", "4.0")  # fullwidth 5
]

# wrong PINs are throttled (test_access proves it), and so are the contacts an agent enters
# (test_agent_entered_contacts): here they would soon hide everything else
SETTINGS: dict[str, dict[str, Any]] = {
    "reviews": {
        "code_failure_limit": 100_000,
        "code_failure_global_limit": 100_000,
        "review_burst_max": 100_000,
    },
    "invitations": {"agent_supplied_clients_max": 100_000},
}

# text PostgreSQL cannot store, markup and injections; instants at the ends of the calendar
HOSTILE_TEXT = ("a\x00b", *SQL_AND_HTML, "x" * 5000)
HOSTILE_INSTANTS = (
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999Z",
)
# bearer tokens a route with an optional token must refuse (the others read as anonymous)
REFUSED_WHEN_OPTIONAL = frozenset({"not a jwt", "forged", "expired", "unknown role", "no exp"})


def bad_credentials(sub: str, role: Role, wrong: Role | None) -> list[tuple[str, dict[str, str]]]:
    """Ways to present a token the service must refuse, each with its name."""
    now = int(time.time())
    unknown_role = jwt.encode({"sub": sub, "role": "admin", "exp": now + 600}, SECRET, "HS256")
    no_exp = jwt.encode({"sub": sub, "role": role.value}, SECRET, "HS256")
    forged = issue_token("another-secret-of-at-least-32-bytes!", sub, role)
    expired = issue_token(SECRET, sub, role, ttl=timedelta(minutes=-5))
    ways = [
        ("no token", {}),
        ("not a jwt", {"Authorization": "Bearer not-a-jwt"}),
        ("forged", {"Authorization": f"Bearer {forged}"}),
        ("expired", {"Authorization": f"Bearer {expired}"}),
        ("unknown role", {"Authorization": f"Bearer {unknown_role}"}),
        ("no exp", {"Authorization": f"Bearer {no_exp}"}),
        ("basic scheme", {"Authorization": "Basic YWdlbnQ6c2VjcmV0"}),
        ("empty bearer", {"Authorization": "Bearer "}),
    ]
    if wrong is not None:
        ways.append(("wrong role", {"Authorization": f"Bearer {issue_token(SECRET, sub, wrong)}"}))
    return ways


@dataclass
class Tally:
    """What was sent to one service: per operation, the requests and the statuses answered."""

    requests: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, set[int]] = field(default_factory=dict)
    bad_auth: dict[str, int] = field(default_factory=dict)
    # why seeded requests were refused: what a "never succeeded" failure shows
    refusals: dict[str, list[str]] = field(default_factory=dict)

    def add(self, label: str, status: int, *, bad_auth: bool) -> None:
        self.requests[label] = self.requests.get(label, 0) + 1
        self.statuses.setdefault(label, set()).add(status)
        if bad_auth:
            self.bad_auth[label] = self.bad_auth.get(label, 0) + 1

    def refused(self, label: str, request: dict[str, Any], response: httpx.Response) -> None:
        shown = {k: request.get(k) for k in ("params", "json") if request.get(k)}
        self.refusals.setdefault(label, []).append(
            f"{response.status_code} {response.text[:300]} for {str(shown)[:300]}"
        )

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def summary(self, name: str, seconds: float) -> str:
        lines = [f"{name}: {self.total} requests in {seconds:.1f}s"]
        for label in sorted(self.requests):
            statuses = ",".join(str(s) for s in sorted(self.statuses[label]))
            lines.append(
                f"  {label}: {self.requests[label]} ({self.bad_auth.get(label, 0)} with bad "
                f"credentials) -> {statuses}"
            )
        return "\n".join(lines)


class Recorder:
    """The app, keeping the traceback of anything it raises for the failure message."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.crashes: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception:
            self.crashes.append(traceback.format_exc())
            raise


@dataclass
class Target:
    """One service running in-process, a client reaching it over ASGI, and the ids of data
    seeded into it (path, query and body values to use instead of generated ones)."""

    name: str
    app: FastAPI
    client: httpx.AsyncClient
    recorder: Recorder
    loop: asyncio.AbstractEventLoop
    agent_id: str
    mail: MailSink
    seeds: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    tally: Tally = field(default_factory=Tally)

    def seeds_for(self, label: str) -> dict[str, str]:
        return {**self.seeds, **self.overrides.get(label, {})}

    def send(self, request: dict[str, Any]) -> httpx.Response:
        """From the hypothesis thread: send the request on the service's event loop."""
        self.recorder.crashes.clear()
        future = asyncio.run_coroutine_threadsafe(self.client.request(**request), self.loop)
        return future.result(timeout=60)


@asynccontextmanager
async def serve(
    name: str, kafka_bootstrap: str, database_url: str, mail: MailSink
) -> AsyncIterator[Target]:
    """The service with its lifespan running (database pool, broker, relays, timers)."""
    spec = SERVICES[name]
    settings = spec.settings(
        kafka_bootstrap, database_url, smtp_port=mail.port, **SETTINGS.get(name, {})
    )
    await start_group_at_end(kafka_bootstrap, settings.group_id, spec.topics)
    app = spec.create_app(settings, clock=FixedClock(NOW))
    recorder = Recorder(app)
    async with running_app(app):
        # the app's catch-all handler answers 500 and re-raises; keep the answer to check it
        transport = httpx.ASGITransport(app=recorder, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            agent_id = f"A-fuzz-{uuid.uuid4().hex[:8]}"
            loop = asyncio.get_running_loop()
            yield Target(name, app, client, recorder, loop, agent_id, mail)


def auth(sub: str, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}


# data for the fuzzed requests to find: without it most requests stop at a 404


async def publish(producer: AIOKafkaProducer, event_type: EventType, data: dict[str, Any]) -> None:
    await EventPublisher(producer)(event_type, event_type.model.model_validate(data))


async def rostered(producer: AIOKafkaProducer, agent_id: str) -> None:
    agent = valid_data(AGENT_UPSERTED.ce_type, agent_id)
    agent.update(agent_id=agent_id, email=f"{agent_id.lower()}@realty.example")
    await publish(producer, AGENT_UPSERTED, agent)
    participation = valid_data(PARTICIPATION_CHANGED.ce_type, agent_id)
    participation.update(agent_id=agent_id, mode="opt_in_public")
    await publish(producer, PARTICIPATION_CHANGED, participation)


async def until(
    answered: Callable[[], Awaitable[httpx.Response]], ok: Callable[[Any], bool]
) -> Any:
    """Poll a request until its JSON answer satisfies `ok`; that answer."""
    last: list[httpx.Response] = []

    async def arrived() -> bool:
        last[:] = [await answered()]
        return last[0].status_code == 200 and ok(last[0].json())

    try:
        await eventually(arrived, timeout=60, every=0.2)
    except TimeoutError as exc:
        raise TimeoutError(f"seeding: {last[0].request.url} still {last[0].text[:300]}") from exc
    return last[0].json()


async def seed_invitations(target: Target, producer: AIOKafkaProducer) -> None:
    """A closing without client details (a contact request) and one with only a phone (a
    phone task); codes for the first's address reach the real invitation path; a client
    invited that way, with the unsubscribe link of the email."""
    a, client = target.agent_id, target.client
    await rostered(producer, a)
    closings = []
    # the first closing names three clients and no contact: the seed's code supplies one, and
    # the fuzz's seeded code requests have room for more (an agent may give as many contacts
    # as the closing names clients: too_many_contacts past that)
    unreachable = [{"name": n, "email": None, "phone": None} for n in ("Cara", "Dev", "Eli")]
    phoned = [{"name": "Phil Phone", "email": None, "phone": "+1 555"}]
    for n, clients in enumerate((unreachable, phoned, unreachable)):
        closing = valid_data(TRANSACTION_CLOSED.ce_type, f"{a}-{n}")
        closing["representations"][0].update(agent_id=a, clients=clients)
        # each at its own address: the codes route finds a closing by address
        closing["property"]["street"] = f"{12 + n} Elm Rd"
        await publish(producer, TRANSACTION_CLOSED, closing)
        closings.append(closing)
    await until(
        lambda: client.get(f"/api/v1/agents/{a}/contact-requests", headers=auth(a, Role.AGENT)),
        lambda body: len(body["items"]) == 2,
    )
    tasks = await until(
        lambda: client.get("/api/v1/phone-tasks", headers=auth("S-1", Role.SURVEYOR)),
        lambda body: any(task["agent_id"] == a for task in body["items"]),
    )
    street, postcode = closings[0]["property"]["street"], closings[0]["property"]["postcode"]
    email = f"client-{a.lower()}@example.com"
    invited = await client.post(
        f"/api/v1/agents/{a}/codes",
        json={"client_email": email, "street": street, "postcode": postcode},
        headers=auth(a, Role.AGENT),
    )
    assert invited.status_code == 201, invited.text
    links: list[str] = []

    async def mailed() -> bool:
        links[:] = [str(m["List-Unsubscribe"]) for m in target.mail.to(email)]
        return bool(links)

    await eventually(mailed, timeout=60, every=0.2)
    listed = await until(
        lambda: client.get(f"/api/v1/agents/{a}/invitations", headers=auth(a, Role.AGENT)),
        lambda body: any(i["channel"] == "email" for i in body["items"]),
    )
    # the third closing's contact allowance is the clients route's own (the codes use the first's)
    target.overrides["POST /api/v1/transactions/{transaction_id}/clients"] = {
        "transaction_id": closings[2]["transaction_id"]
    }
    # the code's invitation is the one to re-send to a corrected address
    target.overrides["POST /api/v1/invitations/{invitation_id}/resend"] = {
        "invitation_id": next(
            i["invitation_id"] for i in listed["items"] if i["channel"] == "email"
        )
    }
    target.seeds.update(
        agent_id=a,
        transaction_id=closings[0]["transaction_id"],
        invitation_id=next(t["invitation_id"] for t in tasks["items"] if t["agent_id"] == a),
        street=street,
        postcode=postcode,
        token=links[0].split("token=", 1)[1].rstrip(">"),
    )


async def seed_removals(target: Target, producer: AIOKafkaProducer) -> None:
    """Two leads of the agent, one of them with a removal waiting for a coordinator, the other
    with a proof document."""
    a, client = target.agent_id, target.client
    leads = []
    for n in range(2):
        lead = valid_data(LEAD_ASSIGNED.ce_type, f"{a}-{n}")
        lead["agent_id"] = a
        await publish(producer, LEAD_ASSIGNED, lead)
        leads.append(lead["lead_id"])
    await until(
        lambda: client.get("/api/v1/leads", headers=auth(a, Role.AGENT)),
        lambda body: len(body["items"]) == 2,
    )
    asked = await client.post(
        "/api/v1/removals",
        json={"lead_id": leads[1], "reason": "active_handoff", "notes": "x" * 40},
        headers=auth(a, Role.AGENT),
    )
    assert asked.status_code == 201, asked.text
    proof = await client.post(
        f"/api/v1/leads/{leads[0]}/proof-documents",
        content=b"%PDF-1.7\n%%EOF\n",
        headers=auth(a, Role.AGENT),
    )
    assert proof.status_code == 201, proof.text
    target.seeds.update(
        agent_id=a,
        lead_id=leads[0],
        removal_id=asked.json()["removal_id"],
        document_id=proof.json()["document_id"],
    )


async def seed_reviews(target: Target, producer: AIOKafkaProducer) -> None:
    """A published review of the agent, one held for a moderator, unused email invitations
    (PINs and link tokens) and a phone invitation for surveyors' answers."""
    a, client = target.agent_id, target.client
    await rostered(producer, a)
    hasher = SecretHasher(PEPPER)
    codes: list[tuple[str, str]] = []
    invitations = []
    for channel in ("email",) * 9 + ("phone",):
        pin, token = new_pin(), new_token()
        data = valid_data(INVITATION_ISSUED.ce_type, uuid.uuid4().hex[:12])
        data.update(agent_id=a, channel=channel, pin_hash=None, token_hash=None)
        if channel == "email":
            data.update(pin_hash=hasher.pin_hash(pin), token_hash=hasher.token_hash(token))
            codes.append((pin, token))
        await publish(producer, INVITATION_ISSUED, data)
        invitations.append(data["invitation_id"])

    made: list[str] = []
    for pin, comment in ((codes[0][0], "Knew the area well."), (codes[1][0], "Mail: p@x.com")):

        async def submitted(pin: str = pin, comment: str = comment) -> bool:
            answer = await client.post(
                "/api/v1/reviews", json={"pin": pin, "scores": GOOD_SCORES, "comment": comment}
            )
            if answer.status_code == 201:
                made.append(answer.json()["review_id"])
            return answer.status_code == 201

        await eventually(submitted, timeout=60, every=0.2)
    await until(
        lambda: client.get("/api/v1/moderation/queue", headers=auth("M-1", Role.MODERATOR)),
        lambda body: [r["review_id"] for r in body["items"]] == made[1:],
    )
    target.seeds.update(
        agent_id=a,
        review_id=made[0],
        pin=codes[2][0],
        token=codes[2][1],
        invitation_id=invitations[-1],
    )
    target.overrides["POST /api/v1/moderation/{review_id}/decision"] = {"review_id": made[1]}
    # each form its own invitation, so that one does not find it answered by another
    target.overrides["POST /survey"] = {"pin": codes[3][0]}
    target.overrides["POST /survey/answers"] = {"pin": codes[4][0]}
    await seed_disputes_and_status(target, codes[5:9])


async def seed_disputes_and_status(target: Target, codes: list[tuple[str, str]]) -> None:
    """Published reviews to dispute (one disputed already, for the read and the moderator's
    answer), and a rejected one whose status link may send it again (docs/design.md 1.10)."""
    a, client, hasher = target.agent_id, target.client, SecretHasher(PEPPER)
    made = []
    for pin, comment in zip(
        (code[0] for code in codes),
        ("Fine.", "Good.", "Mail: p@x.com", "Kind."),
        strict=True,
    ):
        answer = await client.post(
            "/api/v1/reviews", json={"pin": pin, "scores": GOOD_SCORES, "comment": comment}
        )
        assert answer.status_code == 201, answer.text
        made.append(answer.json()["review_id"])
    disputed, to_dispute, rejected, shown = made
    opened = await client.post(
        f"/api/v1/reviews/{disputed}/dispute", json={"reason": "x"}, headers=auth(a, Role.AGENT)
    )
    assert opened.status_code == 201, opened.text
    refused = await client.post(
        f"/api/v1/moderation/{rejected}/decision",
        json={"decision": "reject", "reason": "a mail address"},
        headers=auth("M-1", Role.MODERATOR),
    )
    assert refused.status_code == 200, refused.text
    for label in (
        "GET /api/v1/reviews/{review_id}/dispute",
        "POST /api/v1/moderation/disputes/{review_id}/decision",
    ):
        target.overrides[label] = {"review_id": disputed}
    target.overrides["POST /api/v1/reviews/{review_id}/dispute"] = {"review_id": to_dispute}
    for label in ("GET /api/v1/review-status", "GET /review-status"):
        target.overrides[label] = {"token": hasher.status_token(shown)}
    for label in ("POST /api/v1/review-status/resubmission", "POST /review-status"):
        target.overrides[label] = {"token": hasher.status_token(rejected)}


async def seed_scoring(target: Target, producer: AIOKafkaProducer) -> None:
    """A public agent with one published review: its rating is computed as of any instant."""
    a, client = target.agent_id, target.client
    await rostered(producer, a)
    review = valid_data(REVIEW_PUBLISHED.ce_type, a)
    review["agent_id"] = a
    await publish(producer, REVIEW_PUBLISHED, review)
    await until(
        lambda: client.get(f"/api/v1/agents/{a}/rating", headers=auth(a, Role.AGENT)),
        lambda body: body["reviews_total"] == 1,
    )
    target.seeds.update(agent_id=a, office_id=valid_data(AGENT_UPSERTED.ce_type, a)["office_id"])


SEED: dict[str, Callable[[Target, AIOKafkaProducer], Awaitable[None]]] = {
    "invitations": seed_invitations,
    "removals": seed_removals,
    "reviews": seed_reviews,
    "scoring": seed_scoring,
}


# turning cases into requests, and judging the answers


def to_httpx(case: FuzzCase, headers: dict[str, str], form: str | bytes | None) -> dict[str, Any]:
    """The case as `httpx.AsyncClient.request` arguments, with `headers` for credentials."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    unknown = set(kwargs) - {"method", "url", "headers", "params", "cookies", "json", "data"}
    assert not unknown, f"cannot send {unknown} with httpx"
    sent = {k: v for k, v in kwargs["headers"].items() if k.lower() != "authorization"}
    request: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": {**sent, **headers},
        "params": kwargs.get("params"),
    }
    if kwargs.get("cookies"):
        request["cookies"] = kwargs["cookies"]
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    data = kwargs.get("data")
    if isinstance(data, bytes | str):
        request["content"] = data
    elif data is not None:
        request["data"] = data
    if form is not None:
        request["content"] = form
        request["headers"]["Content-Type"] = "application/x-www-form-urlencoded"
    return request


def with_seeds(case: FuzzCase, seeds: dict[str, str]) -> None:
    """Put the seeded ids where the case has a path, query or body field of that name."""
    for container in (case.path_parameters, case.query):
        if isinstance(container, dict):
            for name in container.keys() & seeds.keys():
                container[name] = seeds[name]
    if isinstance(case.body, dict):
        for name in case.body.keys() & seeds.keys():
            case.body[name] = seeds[name]
        shape = SHAPES.get(f"{case.method.upper()} {case.path}")
        if shape is not None:
            shape(case.body)


# what the documents cannot say: the business rules a seeded body is brought within, keeping
# the generated text, so that the request reaches the code past them


def whole_scores(body: dict[str, Any]) -> None:
    """JSON Schema's integers include 5.0; the contract takes JSON integers only."""
    scores = body.get("scores")
    if isinstance(scores, dict):
        body["scores"] = {k: int(v) if isinstance(v, float) else v for k, v in scores.items()}


def one_code(body: dict[str, Any]) -> None:
    whole_scores(body)
    if body.get("pin") is not None and body.get("token") is not None:
        del body["token"]


def known_reason(body: dict[str, Any]) -> None:
    body["reason"] = "bad_fit"
    notes = body.get("notes")
    if isinstance(notes, str):
        body["notes"] = f"{notes} (the client wants another agent)"


def reachable_clients(body: dict[str, Any]) -> None:
    for client in body.get("clients") or []:
        if isinstance(client, dict) and not client.get("email") and not client.get("phone"):
            client["phone"] = "+1 713 555 0199"


def unnumbered_client(body: dict[str, Any]) -> None:
    """The seeded closing names no client, so any client number is one it does not have (422
    unknown_client): a seeded code request leaves the number out, as the agent would. Its
    address is a fresh one on an ordinary domain: a generated one may be on a disposable-mail
    domain, which the trust checks rightly refuse (docs/design.md 3.3)."""
    body.pop("client", None)
    body["client_email"] = f"fuzz-{uuid.uuid4().hex[:10]}@example.com"


def corrected_address(body: dict[str, Any]) -> None:
    """A corrected address is checked like any the agent enters: a fresh ordinary one."""
    body["email"] = f"fuzz-{uuid.uuid4().hex[:10]}@example.com"


SHAPES: dict[str, Callable[[dict[str, Any]], None]] = {
    "POST /api/v1/invitations/{invitation_id}/resend": corrected_address,
    "POST /api/v1/review-status/resubmission": whole_scores,
    "POST /api/v1/agents/{agent_id}/codes": unnumbered_client,
    "POST /api/v1/reviews": one_code,
    "POST /api/v1/phone-surveys/{invitation_id}/answers": whole_scores,
    "POST /api/v1/removals": known_reason,
    "POST /api/v1/transactions/{transaction_id}/clients": reachable_clients,
}


def form_with_seeds(form: str | bytes, seeds: dict[str, str]) -> str | bytes:
    if isinstance(form, bytes) or "pin" not in seeds:
        return form
    return f"{form}&pin={seeds['pin']}" if form else f"pin={seeds['pin']}"


def is_instant(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return len(value) > 10


def string_slots(value: Any, depth: int = 0) -> list[tuple[Any, Any]]:
    """(container, key) of every string in a JSON-like value, a few levels deep."""
    items: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    slots = []
    for key, item in items:
        if isinstance(item, str):
            slots.append((value, key))
        elif depth < 3:
            slots.extend(string_slots(item, depth + 1))
    return slots


def instant_parameters(operation: Operation) -> list[str]:
    """The query parameters the document says hold an RFC 3339 instant."""
    names = []
    for parameter in operation.iter_parameters():
        schema = parameter.definition.get("schema", {})
        formats = [schema.get("format"), *(s.get("format") for s in schema.get("anyOf", []))]
        if parameter.location.value == "query" and "date-time" in formats:
            names.append(parameter.name)
    return names


def with_hostile(case: FuzzCase, k: int, instants: list[str]) -> None:
    """Every other time, an instant at an end of the calendar in an instant field (added to
    the query if the case left it out); otherwise one string of the case (path, query or
    body, in turn) replaced by hostile text."""
    path = case.path_parameters or {}
    slots = [*string_slots(path), *string_slots(case.query or {}), *string_slots(case.body)]
    timed = [(container, key) for container, key in slots if is_instant(container[key])]
    if k % 2 == 1 and (timed or instants):
        instant = HOSTILE_INSTANTS[k // 2 % len(HOSTILE_INSTANTS)]
        if timed:
            container, key = timed[k // 2 % len(timed)]
            container[key] = instant
        else:
            case.query = {**(case.query or {}), instants[0]: instant}
        return
    if not slots:
        return
    container, key = slots[k % len(slots)]
    value = HOSTILE_TEXT[k % len(HOSTILE_TEXT)]
    # schemathesis percent-encodes path parameters as it generates them
    container[key] = quote(value, safe="") if container is path else value


def explain(target: Target, request: dict[str, Any], response: httpx.Response) -> str:
    shown = {k: v for k, v in request.items() if k != "headers"}
    credentials = request["headers"].get("Authorization", "<none>")[:20]
    crashes = target.recorder.crashes
    crash = "\nthe app raised:\n" + "\n".join(crashes[-1].splitlines()[-16:]) if crashes else ""
    return (
        f"{shown} (Authorization: {credentials}...) -> {response.status_code} "
        f"{response.headers.get('content-type')}: {response.text[:500]}{crash}"
    )


def judge(
    target: Target,
    case: FuzzCase,
    access: Access,
    request: dict[str, Any],
    response: httpx.Response,
    expected: int | None,
) -> None:
    """No 5xx; errors are problem+json (or, for the HTML pages, a page); 401s ask for Bearer."""
    why = explain(target, request, response)
    try:
        case.validate_response(response, checks=[not_a_server_error])
    except FailureGroup as failure:
        raise AssertionError(f"{failure!r}\n{why}") from None
    assert response.status_code < 500, why
    if expected is not None:
        assert response.status_code == expected, why
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", "")
    if access.pages and content_type.startswith("text/html"):
        return
    assert content_type.startswith(PROBLEM_JSON), why
    problem = response.json()
    assert problem["status"] == response.status_code and problem["title"], why
    if response.status_code == 401:
        assert response.headers.get("www-authenticate") == "Bearer", why


def fuzz_operation(
    target: Target, operation: Operation, examples: dict[GenerationMode, int]
) -> None:
    """Schemathesis's cases for one operation, driven by hypothesis: each sent with a token of a
    role that may call it (an agent owns the agent id in the path, four times in five), half
    of them with the seeded ids, every third with one hostile value, and every fourth one
    again with bad credentials. The counters make the variants sure to occur; the first
    failure is kept, since a replay with later counters may not repeat it."""
    label = f"{operation.method.upper()} {operation.path}"
    access = ACCESS[target.name][label]
    counter = itertools.count()
    bad_way = itertools.count()
    instants = instant_parameters(operation)

    def principal(case: FuzzCase, n: int) -> tuple[str, Role]:
        role = access.roles[n % len(access.roles)] if access.roles else Role.AGENT
        if role is not Role.AGENT:
            return f"{role.value}-fuzz", role
        owner = (case.path_parameters or {}).get("agent_id")
        if n % 5 == 4:
            return "A-someone-else", role
        return (owner if isinstance(owner, str) else target.agent_id), role

    def run(case: FuzzCase, mode: GenerationMode, form: str | bytes | None) -> None:
        n = next(counter)
        if n % 4 in (1, 2):
            seeds = target.seeds_for(label)
            with_seeds(case, seeds)
            form = None if form is None else form_with_seeds(form, seeds)
        if n % 3 == 2:
            with_hostile(case, n // 3, instants)
        sub, role = principal(case, n)
        request = to_httpx(case, auth(sub, role), form)
        response = target.send(request)
        target.tally.add(label, response.status_code, bad_auth=False)
        if n % 4 in (1, 2) and response.status_code >= 400:
            target.tally.refused(label, request, response)
        judge(target, case, access, request, response, None)
        if n % 4:
            return
        wrong = next((r for r in Role if r not in access.roles), None) if access.roles else None
        ways = bad_credentials(sub, role, wrong)
        what, headers = ways[next(bad_way) % len(ways)]
        expected: int | None = None
        # an invalid request may be refused before its token is read (400: unparsable body)
        if mode is GenerationMode.POSITIVE and access.roles:
            if not access.optional:
                expected = 403 if what == "wrong role" else 401
            elif what in REFUSED_WHEN_OPTIONAL:
                expected = 401
        request = to_httpx(case, headers, form)
        response = target.send(request)
        target.tally.add(label, response.status_code, bad_auth=True)
        judge(target, case, access, request, response, expected)

    failures: list[AssertionError] = []

    def recorded(case: FuzzCase, mode: GenerationMode, form: str | bytes | None) -> None:
        try:
            run(case, mode, form)
        except AssertionError as failure:
            failures.append(failure)
            raise

    parameters = [p for p in operation.iter_parameters() if p.name != "Authorization"]
    modes = [GenerationMode.POSITIVE]
    if parameters or operation.body:  # otherwise there is nothing to make invalid
        modes.append(GenerationMode.NEGATIVE)
    forms = FORMS.get(label, st.none())

    def fuzzer(mode: GenerationMode) -> Callable[[], None]:
        @hypothesis_settings(
            max_examples=examples[mode],
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode), form=forms)
        def fuzz(case: FuzzCase, form: str | bytes | None) -> None:
            recorded(case, mode, form)

        if label in PAGE_FORMS and mode is GenerationMode.POSITIVE:
            for form in TRICKY_FORMS:
                fuzz = example(case=operation.Case(), form=form)(fuzz)
        return fuzz

    for mode in modes:
        try:
            fuzzer(mode)()
        except Exception:
            if failures:
                raise failures[0] from None
            raise


async def fuzz_service(
    name: str,
    examples: dict[GenerationMode, int],
    kafka_bootstrap: str,
    database_url: str,
    mail: MailSink,
    producer: AIOKafkaProducer,
) -> str:
    """Every operation of the service's document, fuzzed; a summary of what was sent."""
    started = time.monotonic()
    async with serve(name, kafka_bootstrap, database_url, mail) as target:
        await SEED[name](target, producer)
        schema = schemathesis.openapi.from_dict(target.app.openapi())
        found = {}
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result
            operation = result.ok()
            found[f"{operation.method.upper()} {operation.path}"] = operation
        assert set(found) == set(ACCESS[name]), "ACCESS must list every operation"
        for label in sorted(found):
            await asyncio.to_thread(fuzz_operation, target, found[label], examples)
        tally = target.tally
    summary = tally.summary(name, time.monotonic() - started)
    for label in ACCESS[name]:
        assert tally.requests.get(label, 0) >= 5, (label, summary)
        assert tally.bad_auth.get(label, 0) >= 1, (label, summary)
        # the seeds took the request past the checks at least once (the forms: the PIN page)
        if label not in PAGE_FORMS:
            refusals = "\n".join(tally.refusals.get(label, []))
            # a string, which pytest shows whole (a tuple's repr is cut short)
            assert tally.statuses[label] & {200, 201}, (
                f"{label} never succeeded\n{summary}\nrefused:\n{refusals}"
            )
    return summary


@pytest.fixture
def producer(_producer: AIOKafkaProducer) -> AIOKafkaProducer:
    return _producer


@pytest.mark.parametrize("name", sorted(ACCESS))
async def test_no_server_errors_and_problem_json(
    name: str,
    kafka_bootstrap: str,
    database_url: str,
    smtp_sink: MailSink,
    producer: AIOKafkaProducer,
) -> None:
    summary = await fuzz_service(name, FUZZ, kafka_bootstrap, database_url, smtp_sink, producer)
    print(summary)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ACCESS))
async def test_no_server_errors_long_run(
    name: str,
    kafka_bootstrap: str,
    database_url: str,
    smtp_sink: MailSink,
    producer: AIOKafkaProducer,
) -> None:
    summary = await fuzz_service(
        name, SLOW_FUZZ, kafka_bootstrap, database_url, smtp_sink, producer
    )
    print(summary)
