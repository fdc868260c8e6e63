"""HTTP routes: agents (participation, client contacts, contact requests, codes), clients
(unsubscribe), phone surveyors (tasks) and operations (erasure)."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from services.invitations import handlers
from services.invitations.domain.model import (
    ClientContact,
    MissingClient,
    SuppliedClient,
)
from services.invitations.repository import InvitationsRepository
from shared.auth import Principal, Role, require_roles
from shared.contracts.base import UtcDatetime
from shared.contracts.participation import ParticipationMode
from shared.http import ProblemError, domain_problems
from shared.period import PeriodQuery
from shared.runtime import ServiceRuntime, context_of, runtime_of
from shared.uow import UnitOfWork

router = APIRouter(prefix="/api/v1", tags=["invitations"])
public = APIRouter(tags=["unsubscribe"])

Agent = Annotated[Principal, Depends(require_roles(Role.AGENT))]
Surveyor = Annotated[Principal, Depends(require_roles(Role.SURVEYOR))]
Ops = Annotated[Principal, Depends(require_roles(Role.OPS))]
Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]


Context = Annotated[handlers.Context, Depends(context_of)]

T = TypeVar("T")

STATUSES = {
    **dict.fromkeys(
        (
            "opted_out",
            "inactive",
            "already_invited",
            "task_claimed",
            "task_closed",
            "not_a_closing",
            "not_email",
            "already_answered",
            "not_open",
            "too_many_resends",
            "not_sent",
        ),
        409,
    ),
    "not_your_task": 403,
}
"""The HTTP status of each refusal that is not a plain 422."""


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParticipationBody(Body):
    mode: ParticipationMode = Field(examples=["opt_in_public"])


class ParticipationView(BaseModel):
    agent_id: str
    mode: ParticipationMode


CLIENT_NUMBER = (
    "Which client of the closing this is for: its number (1-based position) in the MLS "
    "closing's `clients` list, as `clients_missing` of your contact requests gives it. "
    "Optional: without it, the client the MLS listed under the same name (ignoring case and "
    "punctuation) is meant, else the only client still missing when this is the only contact "
    "left unmatched. A number the closing does not have is refused (422, code `unknown_client`)."
)


class ClientBody(Body):
    client: int | None = Field(default=None, ge=1, le=1000, description=CLIENT_NUMBER, examples=[2])
    name: str = Field(min_length=1, max_length=200, examples=["Pat Doe"])
    email: EmailStr | None = Field(
        default=None,
        description="The client gets the survey by email.",
        examples=["pat@example.com"],
    )
    phone: str | None = Field(
        default=None,
        max_length=40,
        description="Without an email: the client gets a phone survey.",
        examples=[None],
    )


class ClientsBody(Body):
    clients: list[ClientBody] = Field(min_length=1, max_length=20)


class MissingClientView(BaseModel):
    client: int | None = Field(
        description="Its number in the closing's `clients` list; null when the MLS listed no "
        "client for you (then any one contact you give answers the request).",
        examples=[2],
    )
    name: str | None = Field(
        description="The client's name as the MLS gave it; null once erased.", examples=["Kim Lee"]
    )
    label: str = Field(
        description="How the mails name the client: the name, or `client 2 of 3`.",
        examples=["Kim Lee"],
    )


CLIENTS_MISSING = (
    "HAR compliance is per client: the clients of this closing you still owe an email or a "
    "phone for by the deadline (empty when none). Each contact given by any route (this one, a "
    "phone survey, an agent code) answers its client only."
)


class ClientsResult(BaseModel):
    transaction_id: str
    invitations_sent: int = Field(description="Clients emailed a PIN (new ones only).")
    phone_tasks: int = Field(description="Phone surveys created for clients without email.")
    clients_missing: list[MissingClientView] = Field(description=CLIENTS_MISSING)


class ContactRequestView(BaseModel):
    transaction_id: str
    closed_at: UtcDatetime
    deadline: UtcDatetime
    clients_missing: list[MissingClientView] = Field(description=CLIENTS_MISSING)
    paused: bool = Field(
        default=False,
        description="The MLS roster marks you inactive: the clock stands still until you are "
        "active again, then the deadline moves by the time away.",
    )


class ContactRequestList(BaseModel):
    items: list[ContactRequestView]


class CodeBody(Body):
    client_email: EmailStr
    street: str = Field(min_length=1, max_length=200, examples=["12 Elm Rd"])
    postcode: str = Field(min_length=1, max_length=20, examples=["77002"])
    client: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Which client of the closing the code is for (the code then answers that "
        "client's contact request): its number in the MLS closing's `clients` list. Optional: "
        "without it, the code answers the only client still missing, if only one is.",
        examples=[2],
    )


class CodeResult(BaseModel):
    transaction_id: str
    status: str = Field(description="`sent`: the client was emailed the PIN and link.")
    clients_missing: list[MissingClientView] = Field(description=CLIENTS_MISSING)


class ResendBody(Body):
    email: EmailStr = Field(
        description="The client's right address: a new PIN and link go there.",
        examples=["pat.doe@example.com"],
    )


class ResentView(BaseModel):
    cancelled_invitation_id: str = Field(
        description="The invitation sent to the wrong address: cancelled, its PIN and link no "
        "longer work."
    )
    invitation_id: str = Field(description="The new invitation, sent to the corrected address.")
    transaction_id: str
    expires_at: UtcDatetime = Field(description="When the new PIN expires.")
    status: str = Field(default="sent", description="`sent`: the client was emailed.")


class AgentInvitationView(BaseModel):
    invitation_id: str
    transaction_id: str | None
    channel: str = Field(description="`email` (PIN and link) or `phone` (a phone survey).")
    origin: str = Field(
        description="How the contact came: `mls` (the MLS listed it), `agent` (you supplied "
        "it) or `code` (an agent code)."
    )
    client_name: str | None = Field(description="Null once the client was erased.")
    email: str | None = Field(
        description="The address it went to: in full when you entered it, otherwise masked "
        "(`p…@example.com`): client contacts are shown only to the agent who supplied them."
    )
    status: str = Field(
        description="`open`, `done` (answered, or a phone survey made), `expired` or `cancelled`."
    )
    issued_at: UtcDatetime
    expires_at: UtcDatetime
    replaces: str | None = Field(description="The invitation this one corrected.")
    replaced_by: str | None = Field(description="The invitation that corrected this one.")
    resendable: bool = Field(
        description="Whether `POST /invitations/{invitation_id}/resend` would take it now."
    )


class AgentInvitationList(BaseModel):
    items: list[AgentInvitationView]


class InvitedCounts(BaseModel):
    email: int = Field(description="Clients invited by email (from the MLS or from you).")
    phone: int = Field(description="Clients given a phone survey.")
    code: int = Field(description="Clients invited with an agent code.")
    total: int


class InvitedFunnelView(BaseModel):
    """The invitations part of the agent's funnel. A client whose invitation was re-sent to a
    corrected email counts once."""

    model_config = ConfigDict(populate_by_name=True)

    agent_id: str
    from_: UtcDatetime = Field(alias="from", description="Start of the period (inclusive).")
    to: UtcDatetime = Field(description="End of the period (exclusive).")
    closings: int = Field(description="Your sides of closings whose `closed_at` is in the period.")
    clients: int = Field(
        description="Their clients: those the MLS listed, or as many as were invited if more."
    )
    invited: InvitedCounts
    not_invited: int = Field(description="Clients of these closings not invited (yet).")


class PhoneTaskView(BaseModel):
    invitation_id: str
    agent_id: str
    transaction_id: str | None
    lead_id: str | None
    survey: str
    removal_reason: str | None
    issued_at: UtcDatetime
    expires_at: UtcDatetime
    claimed_by: str | None


class PhoneTaskList(BaseModel):
    items: list[PhoneTaskView]


class ClaimedTask(BaseModel):
    invitation_id: str
    state: str
    client_name: str | None = Field(description="Shown to the claiming surveyor only.")
    client_phone: str | None


class ErasureBody(Body):
    email: EmailStr | None = Field(default=None, examples=["pat@example.com"])
    phone: str | None = Field(
        default=None,
        max_length=40,
        description="As the MLS or the agent gave it: records are found by exact (keyed) value.",
        examples=["+1 713 555 0100"],
    )


class ErasureResult(BaseModel):
    erasure_id: str = Field(description="Id of the `client.erasure.requested.v1` event.")
    cancelled: int = Field(description="Open invitations and phone surveys cancelled.")
    invitations: int = Field(description="Invitations whose contact data was erased now.")
    leads: int = Field(description="Leads whose client was erased now.")
    representations: int = Field(description="Closed transactions the client was taken out of.")
    mails_dropped: int = Field(description="Mails to the client not sent yet, dropped.")


@router.put("/agents/{agent_id}/participation", response_model=ParticipationView)
async def set_participation(
    agent_id: str, body: ParticipationBody, agent: Agent, runtime: Runtime
) -> ParticipationView:
    """Choose opt_in_hidden (default), opt_in_public or opt_out: all ratings or none."""
    _own(agent, agent_id)
    mode = await _run(runtime, lambda uow: handlers.change_participation(uow, agent_id, body.mode))
    return ParticipationView(agent_id=agent_id, mode=mode)


@router.post("/transactions/{transaction_id}/clients", response_model=ClientsResult)
async def supply_clients(
    transaction_id: str, body: ClientsBody, agent: Agent, runtime: Runtime, context: Context
) -> ClientsResult:
    """Give each client's email (they get the survey) or phone (a phone survey). Each contact
    answers one client of the closing (see `client`); the answer lists who is still missing."""
    clients = [
        SuppliedClient(ClientContact(c.name, c.email and str(c.email), c.phone), c.client)
        for c in body.clients
    ]
    supplied = await _run(
        runtime,
        lambda uow: handlers.supply_clients(uow, context, agent.sub, transaction_id, clients),
    )
    return ClientsResult(
        transaction_id=transaction_id,
        invitations_sent=supplied.emailed,
        phone_tasks=supplied.phoned,
        clients_missing=_missing(supplied.still_missing),
    )


@router.get("/agents/{agent_id}/contact-requests", response_model=ContactRequestList)
async def contact_requests(agent_id: str, agent: Agent, runtime: Runtime) -> ContactRequestList:
    """Your closed transactions still waiting for a client contact, soonest deadline first,
    each with the clients still missing."""
    _own(agent, agent_id)
    async with runtime.unit_of_work() as uow:
        found = await handlers.open_requests(uow, agent_id)
    return ContactRequestList(
        items=[
            ContactRequestView(
                transaction_id=r.transaction_id,
                closed_at=r.closed_at,
                deadline=r.deadline,
                clients_missing=_missing(missing),
                paused=r.paused_at is not None,
            )
            for r, missing in found
        ]
    )


@router.post("/agents/{agent_id}/codes", status_code=201, response_model=CodeResult)
async def generate_code(
    agent_id: str, body: CodeBody, agent: Agent, runtime: Runtime, context: Context
) -> CodeResult:
    """Invite a client of one of your closed transactions (road name and postcode must match).
    The PIN goes to the client only. Like a supplied email, the code answers that client's
    contact request (see `client`)."""
    _own(agent, agent_id)
    sent = await _run(
        runtime,
        lambda uow: handlers.agent_code(
            uow, context, agent_id, str(body.client_email), body.street, body.postcode, body.client
        ),
    )
    return CodeResult(
        transaction_id=sent.transaction_id,
        status="sent",
        clients_missing=_missing(sent.still_missing),
    )


@router.get("/agents/{agent_id}/invitations", response_model=AgentInvitationList)
async def agent_invitations(
    agent_id: str,
    agent: Agent,
    runtime: Runtime,
    transaction_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AgentInvitationList:
    """Your clients' survey invitations for closings, newest first (of one closing with
    `transaction_id`), with the address each went to and whether it can be re-sent."""
    _own(agent, agent_id)
    async with runtime.unit_of_work() as uow:
        found = await handlers.agent_invitations(uow, agent_id, transaction_id, limit)
    return AgentInvitationList(
        items=[AgentInvitationView(**vars(invitation)) for invitation in found]
    )


@router.post("/invitations/{invitation_id}/resend", status_code=201, response_model=ResentView)
async def resend_invitation(
    invitation_id: str, body: ResendBody, agent: Agent, runtime: Runtime, ctx: Context
) -> ResentView:
    """Cancel one client's invitation sent to a wrong email and send a new one (new PIN and
    link) to the corrected address; the old PIN and link stop working. 404 for an invitation
    not yours; 409 `already_answered`, `not_open`, `not_email`, `not_a_closing`,
    `too_many_resends` (twice per client at most) or `not_sent` (the address unsubscribed or
    was invited before); 422 `same_email`, or the checks on an address you enter
    (`own_mail_domain`, `disposable_address`)."""
    resent = await _run(
        runtime,
        lambda uow: handlers.resend_invitation(uow, ctx, agent.sub, invitation_id, str(body.email)),
    )
    return ResentView(
        cancelled_invitation_id=resent.cancelled_invitation_id,
        invitation_id=resent.invitation_id,
        transaction_id=resent.transaction_id,
        expires_at=resent.expires_at,
    )


@router.get("/agents/{agent_id}/funnel", response_model=InvitedFunnelView)
async def agent_funnel(
    agent_id: str, agent: Agent, runtime: Runtime, asked: PeriodQuery
) -> InvitedFunnelView:
    """Your funnel's first part over a period of closings (default: the 90 days up to now):
    closings -> clients -> invited by email, by phone, by agent code. The rest of the funnel
    (answered, negative, shown publicly) is `GET /api/v1/agents/{agent_id}/funnel` of the
    reviews service, over the same period."""
    _own(agent, agent_id)
    async with runtime.unit_of_work() as uow, domain_problems({}):
        chosen = asked.at(uow.now)
        counted = await handlers.funnel(uow, agent_id, chosen)
    return InvitedFunnelView(
        agent_id=agent_id,
        from_=chosen.start,
        to=chosen.end,
        closings=counted.closings,
        clients=counted.clients,
        invited=InvitedCounts(
            email=counted.email,
            phone=counted.phone,
            code=counted.code,
            total=counted.invited,
        ),
        not_invited=counted.not_invited,
    )


@router.get("/phone-tasks", response_model=PhoneTaskList)
async def phone_tasks(
    surveyor: Surveyor,
    runtime: Runtime,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> PhoneTaskList:
    """Open phone surveys, oldest first (no contact data until claimed)."""
    async with runtime.unit_of_work() as uow:
        rows = await InvitationsRepository(uow.conn, uow.cipher).phone_tasks(limit)
    return PhoneTaskList(
        items=[
            PhoneTaskView(**{name: row[name] for name in PhoneTaskView.model_fields})
            for row in rows
        ]
    )


@router.post("/phone-tasks/{invitation_id}/claim", response_model=ClaimedTask)
async def claim_task(invitation_id: str, surveyor: Surveyor, runtime: Runtime) -> ClaimedTask:
    return await _run(runtime, lambda uow: _task_step(uow, invitation_id, surveyor.sub, done=False))


@router.post("/phone-tasks/{invitation_id}/done", response_model=ClaimedTask)
async def finish_task(invitation_id: str, surveyor: Surveyor, runtime: Runtime) -> ClaimedTask:
    """Mark the call made (the answers are entered in the reviews service)."""
    return await _run(runtime, lambda uow: _task_step(uow, invitation_id, surveyor.sub, done=True))


@router.post("/erasures", response_model=ErasureResult)
async def erase(body: ErasureBody, ops: Ops, runtime: Runtime) -> ErasureResult:
    """Erase a client's contact data and name on request (give every email and phone the client
    had); open invitations to them are cancelled, and every other service is told to erase its
    copy. Erasing again is harmless."""
    if not body.email and not body.phone:
        raise ProblemError(422, "Unprocessable Content", "give the client's email or phone")
    erasure = await _run(
        runtime,
        lambda uow: handlers.erase_client(uow, str(body.email) if body.email else None, body.phone),
    )
    return ErasureResult(
        erasure_id=erasure.erasure_id,
        cancelled=erasure.cancelled,
        invitations=erasure.erased.invitations,
        leads=erasure.erased.leads,
        representations=erasure.erased.representations,
        mails_dropped=erasure.mails_dropped,
    )


@public.get("/unsubscribe", response_class=HTMLResponse)
async def unsubscribe_page(token: Annotated[str, Query(max_length=100)]) -> HTMLResponse:
    """A confirmation page (link scanners follow GETs; only the POST unsubscribes)."""
    return HTMLResponse(
        "<!doctype html><title>Unsubscribe</title><h1>Stop survey emails?</h1>"
        '<form method="post" action="/unsubscribe">'
        f'<input type="hidden" name="token" value="{html.escape(token)}">'
        "<button>Unsubscribe</button></form>"
    )


@public.post("/unsubscribe", response_class=HTMLResponse)
async def unsubscribe(
    request: Request,
    runtime: Runtime,
    context: Context,
    token: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    """One click (RFC 8058, or the confirmation form): the address is never mailed again."""
    if token is None:
        form = parse_qs((await request.body()).decode(errors="replace")[:1000])
        token = next(iter(form.get("token", [])), None)
    if not token:
        raise ProblemError(422, "Unprocessable Content", "token is required")
    async with runtime.unit_of_work() as uow:
        done = await handlers.unsubscribe(uow, context, token)
    if not done:
        raise ProblemError(404, "Not Found", "unknown unsubscribe link")
    return HTMLResponse("<!doctype html><title>Unsubscribed</title><h1>You are unsubscribed.</h1>")


async def _task_step(
    uow: UnitOfWork, invitation_id: str, surveyor_id: str, *, done: bool
) -> ClaimedTask:
    task, client = await handlers.phone_task_step(uow, invitation_id, surveyor_id, done=done)
    return ClaimedTask(
        invitation_id=invitation_id,
        state=task.state.value,
        client_name=client.name if client else None,
        client_phone=client.phone if client else None,
    )


def _missing(clients: list[MissingClient]) -> list[MissingClientView]:
    return [MissingClientView(client=c.number, name=c.name, label=c.label) for c in clients]


def _own(principal: Principal, agent_id: str) -> None:
    if principal.sub != agent_id:
        raise ProblemError(403, "Forbidden", "agents see and change only their own data")


async def _run(runtime: ServiceRuntime, command: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run a command in one transaction; a refused command rolls back and answers a problem."""
    async with domain_problems(STATUSES), runtime.unit_of_work() as uow:
        return await command(uow)
