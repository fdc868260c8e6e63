"""Events from the streams, commands from the API and timer steps: load, decide (domain), save,
publish and queue mail in the unit of work's one transaction.

Client contact data goes only to the sealed tables and the encrypted mail outbox: never into a
published event or a log record.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from services.invitations.domain.model import (
    AddressedProperty,
    ClientContact,
    ComplianceStep,
    ContactRequest,
    ContactRequestStatus,
    InvitationStatus,
    InvitationStep,
    Policy,
    RefusedError,
    client_template,
    compliance_step,
    contact_request,
    expires_at,
    invitation_step,
    may_mail,
    participation_for_new_agent,
    plan_representation,
    removal_template,
    same_property,
    satisfies_request,
)
from services.invitations.repository import (
    Agent,
    InvitationsRepository,
    NewInvitation,
    Representation,
    StoredInvitation,
    Transaction,
)
from shared.configured import Configured
from shared.contracts import (
    AGENT_UPSERTED,
    INVITATION_CANCELLED,
    INVITATION_EXPIRED,
    INVITATION_ISSUED,
    LEAD_ASSIGNED,
    PARTICIPATION_CHANGED,
    REMOVAL_COMPLETED,
    SURVEY_ANSWERED,
)
from shared.contracts.invitations import InvitationClosed, InvitationIssued
from shared.contracts.leads import LeadAssigned
from shared.contracts.mls import AgentUpserted, TransactionClosed
from shared.contracts.participation import (
    ParticipationChanged,
    ParticipationMode,
    ParticipationReason,
)
from shared.contracts.removals import RemovalCompleted, RemovalReason
from shared.contracts.reviews import Channel, SurveyAnswered, SurveyKind
from shared.crypto import SecretHasher, new_pin, new_token
from shared.mailer import RenderedMail, Templates
from shared.messaging import Delivery, EventDispatcher
from shared.topics import Topic
from shared.uow import UnitOfWork

logger = logging.getLogger(__name__)

dispatcher = EventDispatcher("invitations")

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Context:
    """What the handlers need beyond the unit of work; set once by the composition root."""

    policy: Policy
    hasher: SecretHasher
    templates: Templates
    survey_base_url: str
    service_base_url: str
    portal_url: str


_context: Configured[Context] = Configured("invitations handlers")


def configure(context: Context) -> None:
    _context.set(context)


def context() -> Context:
    return _context.get()


class NotFoundError(Exception):
    """No such agent, transaction or task."""


def repository(uow: UnitOfWork) -> InvitationsRepository:
    return InvitationsRepository(uow.conn, uow.cipher)


# events


@dispatcher.on(AGENT_UPSERTED)
async def agent_upserted(event: AgentUpserted, uow: UnitOfWork) -> None:
    repo = repository(uow)
    await repo.serialise(f"agent:{event.agent_id}")
    if await repo.upsert_agent(event, uow.now):
        mode, reason = participation_for_new_agent()
        await _announce(uow, event.agent_id, mode, reason)
    agent = await repo.agent(event.agent_id)
    assert agent is not None
    for representation in await repo.unplanned_representations(agent_id=event.agent_id):
        await _plan(uow, repo, representation, agent)


@dispatcher.on_batch(Topic.MLS_TRANSACTIONS)
async def transactions_closed(deliveries: Sequence[Delivery], uow: UnitOfWork) -> None:
    """A batch of closings in one transaction, every agent they name locked first in one sorted
    statement: a backlog costs a commit per batch instead of one per closing."""
    repo = repository(uow)
    events = [d.event for d in deliveries if isinstance(d.event, TransactionClosed)]
    await repo.serialise(*(f"agent:{r.agent_id}" for e in events for r in e.representations))
    for event in events:
        await _plan_transaction(uow, repo, event)


async def transaction_closed(event: TransactionClosed, uow: UnitOfWork) -> None:
    """One closing (the batch handler's unit, and how tests feed one)."""
    repo = repository(uow)
    await repo.serialise(*(f"agent:{r.agent_id}" for r in event.representations))
    await _plan_transaction(uow, repo, event)


async def _plan_transaction(
    uow: UnitOfWork, repo: InvitationsRepository, event: TransactionClosed
) -> None:
    """Replays (same or new ce_id) find the representations planned, or hit the unique index."""
    await repo.save_transaction(event)
    for representation in await repo.unplanned_representations(transaction_id=event.transaction_id):
        agent = await repo.agent(representation.agent_id)
        if agent is not None:  # unknown agents: planned when the roster names them
            await _plan(uow, repo, representation, agent)


@dispatcher.on(LEAD_ASSIGNED)
async def lead_assigned(event: LeadAssigned, uow: UnitOfWork) -> None:
    repo = repository(uow)
    client = ClientContact(
        event.client.name, event.client.email and str(event.client.email), event.client.phone
    )
    await repo.serialise(f"lead:{event.lead_id}:{event.agent_id}")
    await repo.save_lead(event.lead_id, event.agent_id, client)
    held = await repo.take_held_removal(event.lead_id, event.agent_id)
    if held is not None:
        await _removal_survey(uow, repo, event.lead_id, event.agent_id, RemovalReason(held[0]))


@dispatcher.on(REMOVAL_COMPLETED)
async def removal_completed(event: RemovalCompleted, uow: UnitOfWork) -> None:
    repo = repository(uow)
    await repo.serialise(f"lead:{event.lead_id}:{event.agent_id}")
    if not await repo.lead_known(event.lead_id, event.agent_id):
        await repo.hold_removal(
            event.lead_id, event.agent_id, event.reason.value, event.completed_at
        )
        return
    await _removal_survey(uow, repo, event.lead_id, event.agent_id, event.reason)


@dispatcher.on(SURVEY_ANSWERED)
async def survey_answered(event: SurveyAnswered, uow: UnitOfWork) -> None:
    if await repository(uow).mark_answered(event.invitation_id, event.answered_at):
        logger.info("invitation %s answered (%s)", event.invitation_id, event.channel.value)


# commands


async def change_participation(
    uow: UnitOfWork, agent_id: str, mode: ParticipationMode
) -> ParticipationMode:
    repo = repository(uow)
    agent = await repo.agent(agent_id, for_update=True)
    if agent is None:
        raise NotFoundError(f"agent {agent_id} is not on the roster")
    if agent.mode is not mode:
        await repo.set_mode(agent_id, mode, ParticipationReason.AGENT_CHOICE, uow.now)
        await _announce(uow, agent_id, mode, ParticipationReason.AGENT_CHOICE)
        if not mode.participating:
            await repo.waive_requests_of(agent_id, uow.now)
    return mode


async def supply_clients(
    uow: UnitOfWork, agent_id: str, transaction_id: str, clients: list[ClientContact]
) -> tuple[int, int]:
    """The agent gives the contacts the MLS lacked: (email invitations, phone tasks) created."""
    repo = repository(uow)
    transaction = await repo.transaction(transaction_id)
    side = await repo.representation_side(transaction_id, agent_id)
    if transaction is None or side is None:
        raise NotFoundError(f"no closed transaction {transaction_id} of yours")
    agent = await repo.agent(agent_id, for_update=True)
    if agent is None:
        raise NotFoundError(f"agent {agent_id} is not on the roster")
    if not satisfies_request(clients):
        raise RefusedError("contact_missing", "give an email or a phone for every client")
    plan = plan_representation(agent.mode, clients)
    if plan is None or not agent.mode.participating:
        raise RefusedError("opted_out", "you are opted out: no invitations are sent")
    representation = Representation(transaction, agent_id, side, clients)
    emails = [
        await _invite_client(uow, repo, representation, agent, c) for c in plan.email_invitations
    ]
    phones = [await _phone_task(uow, repo, representation, c) for c in plan.phone_tasks]
    for request in await repo.open_requests_of(agent_id):
        if request.transaction_id == transaction_id:
            await repo.resolve_request(request, ContactRequestStatus.SATISFIED, uow.now)
    return sum(emails), sum(phones)


async def agent_code(
    uow: UnitOfWork, agent_id: str, client_email: str, street: str, postcode: str
) -> str:
    """An invitation the agent asks for, for a client of one of their closed transactions."""
    repo = repository(uow)
    agent = await repo.agent(agent_id)
    if agent is None:
        raise NotFoundError(f"agent {agent_id} is not on the roster")
    if not agent.mode.participating:
        raise RefusedError("opted_out", "you are opted out: no invitations are sent")
    wanted = AddressedProperty(street, postcode)
    for transaction in await repo.transactions_of_agent_at(agent_id, postcode):
        if same_property(AddressedProperty(transaction.street, transaction.postcode), wanted):
            side = await repo.representation_side(transaction.transaction_id, agent_id)
            assert side is not None
            client = ClientContact(client_email.split("@")[0], client_email, None)
            representation = Representation(transaction, agent_id, side, [client])
            if not await _invite_client(uow, repo, representation, agent, client):
                raise RefusedError(
                    "already_invited", "this client was already invited for that transaction"
                )
            return transaction.transaction_id
    raise NotFoundError("no closed transaction of yours at that road name and postcode")


async def unsubscribe(uow: UnitOfWork, token: str) -> bool:
    repo = repository(uow)
    stored = await repo.invitation_by_unsubscribe(context().hasher.token_hash(token))
    if stored is None:
        return False
    await repo.suppress(stored.client_index, uow.now)
    for invitation in await repo.open_invitations_of_client(stored.client_index):
        await _close(uow, repo, invitation, InvitationStatus.CANCELLED, "unsubscribed")
    return True


async def erase_client(uow: UnitOfWork, email: str | None, phone: str | None) -> dict[str, int]:
    repo = repository(uow)
    counts = {"invitations": 0, "leads": 0, "representations": 0, "cancelled": 0}
    for value in (email, phone):
        if not value:
            continue
        index = repo.index(value)
        for invitation in await repo.open_invitations_of_client(index):
            await _close(uow, repo, invitation, InvitationStatus.CANCELLED, "erased")
            counts["cancelled"] += 1
        invitations, leads, representations = await repo.erase_client(index, uow.now)
        counts["invitations"] += invitations
        counts["leads"] += leads
        counts["representations"] += representations
    return counts


# timer steps


async def run_compliance(uow: UnitOfWork, limit: int = 100) -> int:
    """Remind agents at 7 days; at the deadline with nothing supplied, auto opt-out."""
    ctx, repo = context(), repository(uow)
    policy = ctx.policy
    remind_if_deadline_before = uow.now + policy.compliance_window - policy.agent_reminder_after
    due = await repo.due_requests(uow.now, remind_if_deadline_before, limit)
    for request in due:
        step = compliance_step(request, uow.now, ctx.policy)
        agent = await repo.agent(request.agent_id, for_update=True)
        transaction = await repo.transaction(request.transaction_id)
        assert agent is not None and transaction is not None
        if step is ComplianceStep.REMIND_AGENT:
            await repo.mark_request_reminded(request, uow.now)
            await _mail_agent(uow, "agent_reminder", agent, transaction, request)
        elif step is ComplianceStep.OPT_OUT:
            await repo.resolve_request(request, ContactRequestStatus.LAPSED, uow.now)
            if agent.mode.participating:
                await repo.set_mode(
                    agent.agent_id,
                    ParticipationMode.OPT_OUT,
                    ParticipationReason.NON_COMPLIANCE,
                    uow.now,
                )
                await repo.waive_requests_of(agent.agent_id, uow.now)
                await _announce(
                    uow,
                    agent.agent_id,
                    ParticipationMode.OPT_OUT,
                    ParticipationReason.NON_COMPLIANCE,
                )
                await _mail_agent(uow, "agent_opt_out", agent, transaction, request)
    return len(due)


async def run_invitation_timers(uow: UnitOfWork, limit: int = 100) -> int:
    """Expire at 30 days; one client reminder at 7 days (see `invitation_step`)."""
    ctx, repo = context(), repository(uow)
    due = await repo.due_invitations(uow.now, uow.now - ctx.policy.client_reminder_after, limit)
    for stored in due:
        step = invitation_step(stored.invitation, uow.now, ctx.policy)
        if step is InvitationStep.EXPIRE:
            await _close(uow, repo, stored, InvitationStatus.EXPIRED, "expired")
        elif step is InvitationStep.REMIND_CLIENT:
            await repo.mark_reminded(stored.invitation.invitation_id, uow.now)
            await _remind_client(uow, repo, stored)
    return len(due)


# the steps shared by the above


async def _plan(
    uow: UnitOfWork, repo: InvitationsRepository, representation: Representation, agent: Agent
) -> None:
    plan = plan_representation(agent.mode, representation.clients)
    assert plan is not None
    for client in plan.email_invitations:
        await _invite_client(uow, repo, representation, agent, client)
    for client in plan.phone_tasks:
        await _phone_task(uow, repo, representation, client)
    if plan.needs_contact:
        transaction = representation.transaction
        request = contact_request(
            transaction.transaction_id,
            agent.agent_id,
            transaction.closed_at,
            context().policy,
            now=uow.now,
        )
        if await repo.add_contact_request(request):
            await _mail_agent(uow, "agent_contact_request", agent, transaction, request)
    await repo.mark_planned(
        representation.transaction.transaction_id, representation.agent_id, uow.now
    )


async def _invite_client(
    uow: UnitOfWork,
    repo: InvitationsRepository,
    representation: Representation,
    agent: Agent,
    client: ClientContact,
) -> bool:
    assert client.email is not None
    index = repo.index(client.email)
    if not may_mail(index, await repo.suppressed_among([index])):
        return False
    transaction = representation.transaction
    return await _issue(
        uow,
        repo,
        agent,
        client,
        index,
        template=client_template(transaction.kind, representation.side),
        transaction=transaction,
    )


async def _removal_survey(
    uow: UnitOfWork,
    repo: InvitationsRepository,
    lead_id: str,
    agent_id: str,
    reason: RemovalReason,
) -> None:
    client = await repo.lead_client(lead_id, agent_id)
    agent = await repo.agent(agent_id)
    if client is None or agent is None:
        return  # erased, or an agent the roster never named: nobody to survey about
    if client.email:
        index = repo.index(client.email)
        if may_mail(index, await repo.suppressed_among([index])):
            await _issue(
                uow,
                repo,
                agent,
                client,
                index,
                template=removal_template(reason),
                lead_id=lead_id,
                reason=reason,
            )
    elif client.phone:
        await _add_phone(uow, repo, agent_id, client, lead_id=lead_id, reason=reason)


async def _issue(
    uow: UnitOfWork,
    repo: InvitationsRepository,
    agent: Agent,
    client: ClientContact,
    index: str,
    *,
    template: str,
    transaction: Transaction | None = None,
    lead_id: str | None = None,
    reason: RemovalReason | None = None,
) -> bool:
    ctx = context()
    pin, token, unsubscribe_token = new_pin(), new_token(), new_token()
    new = NewInvitation(
        invitation_id=str(uuid.uuid4()),
        agent_id=agent.agent_id,
        survey=(SurveyKind.REMOVAL if reason else SurveyKind.TRANSACTION).value,
        channel=Channel.EMAIL.value,
        client=client,
        client_index=index,
        issued_at=uow.now,
        expires_at=expires_at(uow.now, ctx.policy),
        transaction_id=transaction.transaction_id if transaction else None,
        lead_id=lead_id,
        removal_reason=reason.value if reason else None,
        pin_hash=ctx.hasher.pin_hash(pin),
        token_hash=ctx.hasher.token_hash(token),
        unsubscribe_hash=ctx.hasher.token_hash(unsubscribe_token),
    )
    if not await repo.add_invitation(new):
        return False
    await _publish_issued(uow, new)
    mail = ctx.templates.render(
        template,
        client_name=client.name,
        agent_name=agent.name,
        street=transaction.street if transaction else "",
        city=transaction.city if transaction else "",
        pin=pin,
        survey_url=f"{ctx.survey_base_url}/survey?token={token}",
        unsubscribe_url=_unsubscribe_url(unsubscribe_token),
        expires_on=_day(new.expires_at),
    )
    await uow.send_mail(
        to=client.email or "",
        mail=_with_unsubscribe(mail, unsubscribe_token),
        dedupe_key=f"invitation:{new.invitation_id}",
    )
    return True


async def _phone_task(
    uow: UnitOfWork,
    repo: InvitationsRepository,
    representation: Representation,
    client: ClientContact,
) -> bool:
    return await _add_phone(
        uow,
        repo,
        representation.agent_id,
        client,
        transaction_id=representation.transaction.transaction_id,
    )


async def _add_phone(
    uow: UnitOfWork,
    repo: InvitationsRepository,
    agent_id: str,
    client: ClientContact,
    *,
    transaction_id: str | None = None,
    lead_id: str | None = None,
    reason: RemovalReason | None = None,
) -> bool:
    assert client.phone is not None
    new = NewInvitation(
        invitation_id=str(uuid.uuid4()),
        agent_id=agent_id,
        survey=(SurveyKind.REMOVAL if reason else SurveyKind.TRANSACTION).value,
        channel=Channel.PHONE.value,
        client=client,
        client_index=repo.index(client.phone),
        issued_at=uow.now,
        expires_at=expires_at(uow.now, context().policy),
        transaction_id=transaction_id,
        lead_id=lead_id,
        removal_reason=reason.value if reason else None,
    )
    if not await repo.add_invitation(new):
        return False
    await _publish_issued(uow, new)
    return True


async def _publish_issued(uow: UnitOfWork, new: NewInvitation) -> None:
    await uow.publish(
        INVITATION_ISSUED,
        InvitationIssued(
            invitation_id=new.invitation_id,
            agent_id=new.agent_id,
            transaction_id=new.transaction_id,
            lead_id=new.lead_id,
            survey=SurveyKind(new.survey),
            removal_reason=RemovalReason(new.removal_reason) if new.removal_reason else None,
            channel=Channel(new.channel),
            pin_hash=new.pin_hash,
            token_hash=new.token_hash,
            issued_at=new.issued_at,
            expires_at=new.expires_at,
        ),
        ce_id=f"{new.invitation_id}:issued",
    )


async def _close(
    uow: UnitOfWork,
    repo: InvitationsRepository,
    stored: StoredInvitation,
    status: InvitationStatus,
    reason: str,
) -> None:
    invitation = stored.invitation
    await repo.close_invitation(invitation.invitation_id, status, uow.now)
    event_type = INVITATION_EXPIRED if status is InvitationStatus.EXPIRED else INVITATION_CANCELLED
    await uow.publish(
        event_type,
        InvitationClosed(
            invitation_id=invitation.invitation_id,
            agent_id=invitation.agent_id,
            at=uow.now,
            reason=reason,
        ),
        ce_id=f"{invitation.invitation_id}:{status.value}",
    )


async def _remind_client(
    uow: UnitOfWork, repo: InvitationsRepository, stored: StoredInvitation
) -> None:
    """The PIN is not kept (only its hash), so the reminder points back to the first email."""
    client = stored.client
    if client is None or client.email is None:
        return
    if not may_mail(stored.client_index, await repo.suppressed_among([stored.client_index])):
        return
    agent = await repo.agent(stored.invitation.agent_id)
    assert agent is not None
    ctx = context()
    unsubscribe_token = new_token()
    await repo.conn.execute(
        "UPDATE invitations SET unsubscribe_hash = $2 WHERE invitation_id = $1",
        stored.invitation.invitation_id,
        ctx.hasher.token_hash(unsubscribe_token),
    )
    mail = ctx.templates.render(
        "client_reminder",
        client_name=client.name,
        agent_name=agent.name,
        first_sent_on=_day(stored.invitation.issued_at),
        expires_on=_day(stored.invitation.expires_at),
        unsubscribe_url=_unsubscribe_url(unsubscribe_token),
    )
    await uow.send_mail(
        to=client.email,
        mail=_with_unsubscribe(mail, unsubscribe_token),
        dedupe_key=f"reminder:{stored.invitation.invitation_id}",
    )


async def _mail_agent(
    uow: UnitOfWork, template: str, agent: Agent, transaction: Transaction, request: ContactRequest
) -> None:
    ctx = context()
    mail = ctx.templates.render(
        template,
        agent_name=agent.name,
        transaction_id=transaction.transaction_id,
        street=transaction.street,
        city=transaction.city,
        closed_on=_day(transaction.closed_at),
        deadline_on=_day(request.deadline),
        portal_url=f"{ctx.portal_url}/api/v1/transactions/{transaction.transaction_id}/clients",
    )
    await uow.send_mail(
        to=agent.email,
        mail=mail,
        dedupe_key=f"{template}:{transaction.transaction_id}:{agent.agent_id}",
    )


async def _announce(
    uow: UnitOfWork, agent_id: str, mode: ParticipationMode, reason: ParticipationReason
) -> None:
    await uow.publish(
        PARTICIPATION_CHANGED,
        ParticipationChanged(agent_id=agent_id, mode=mode, reason=reason, changed_at=uow.now),
    )


def _unsubscribe_url(token: str) -> str:
    return f"{context().service_base_url}/unsubscribe?token={token}"


def _with_unsubscribe(mail: RenderedMail, token: str) -> RenderedMail:
    """RFC 8058 one-click unsubscribe headers, besides the link in the body."""
    return replace(
        mail,
        headers=(
            ("List-Unsubscribe", f"<{_unsubscribe_url(token)}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
    )


def _day(at: datetime) -> str:
    return at.strftime("%B %d, %Y").replace(" 0", " ")
