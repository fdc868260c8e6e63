"""The commands the invitations API runs: an agent's participation, client contacts and agent
codes, contact requests, phone-survey tasks, unsubscribing and erasure."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg

from services.invitations.domain.corrections import (
    WRONG_EMAIL,
    Correctable,
    Origin,
    check_resend,
    masked,
)
from services.invitations.domain.funnel import InvitedFunnel, invited_funnel
from services.invitations.domain.model import (
    AddressedProperty,
    Agent,
    ClientContact,
    ClientRoll,
    ContactRequest,
    InvitationStatus,
    MissingClient,
    PhoneTask,
    RefusedError,
    Representation,
    SuppliedClient,
    answer_request,
    check_may_invite,
    claim,
    clients_reached,
    complete,
    expires_at,
    mode_change,
    phone_offer,
    plan_representation,
    same_property,
    satisfies_request,
    still_missing,
    survey_offer,
)
from services.invitations.domain.trust import check_contact, check_supplied_count, contact_flags
from services.invitations.handlers.context import Context, NotFoundError, repository
from services.invitations.handlers.issuing import add_phones, change_mode, close, issue
from services.invitations.repository import Erased, InvitationsRepository, StoredInvitation
from shared.contracts import ERASURE_REQUESTED
from shared.contracts.erasures import ErasureRequested
from shared.contracts.participation import ParticipationMode, ParticipationReason
from shared.mailer import forget_mail_to
from shared.metrics import TRUST_SIGNALS
from shared.period import Period
from shared.uow import UnitOfWork

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Supplied:
    """What the agent's contacts did: invitations and phone tasks made, clients still owed."""

    transaction_id: str
    emailed: int
    phoned: int
    still_missing: list[MissingClient]


@dataclass(frozen=True)
class Erasure:
    """What an erasure did here; the other services act on `erasure_id`'s event."""

    erasure_id: str
    cancelled: int
    erased: Erased
    mails_dropped: int


async def change_participation(
    uow: UnitOfWork, agent_id: str, mode: ParticipationMode
) -> ParticipationMode:
    repo = repository(uow)
    agent = await repo.agent(agent_id, for_update=True)
    if agent is None:
        raise NotFoundError(f"agent {agent_id} is not on the roster")
    change = mode_change(agent.mode, mode, ParticipationReason.AGENT_CHOICE)
    if change is not None:
        await change_mode(uow, repo, agent_id, change)
    return mode


async def supply_clients(
    uow: UnitOfWork,
    ctx: Context,
    agent_id: str,
    transaction_id: str,
    supplied: list[SuppliedClient],
) -> Supplied:
    """The agent gives the contacts the MLS lacked; each answers the client it is for."""
    repo = repository(uow)
    transaction = await repo.transaction(transaction_id)
    side = await repo.representation_side(transaction_id, agent_id)
    if transaction is None or side is None:
        raise NotFoundError(f"no closed transaction {transaction_id} of yours")
    agent = await repo.agent(agent_id, for_update=True)
    if agent is None:
        raise NotFoundError(f"agent {agent_id} is not on the roster")
    clients = [s.contact for s in supplied]
    if not satisfies_request(clients):
        raise RefusedError("contact_missing", "give an email or a phone for every client")
    check_may_invite(agent.mode, active=agent.active)
    plan = plan_representation(agent.mode, clients, active=agent.active)
    request, roll = await _request_and_roll(repo, transaction_id, agent_id)
    reached = clients_reached(supplied, roll, request.missing if request else ())
    flags = await _checked_contacts(
        ctx, repo, agent, transaction_id, clients, listed=len(roll.names)
    )
    representation = Representation(transaction, agent_id, side, clients)
    emails = await issue(
        uow,
        ctx,
        repo,
        [survey_offer(representation, agent, c, flags[c]) for c in plan.email_invitations],
    )
    phones = await add_phones(
        uow, ctx, repo, [phone_offer(representation, c, flags[c]) for c in plan.phone_tasks]
    )
    request = await _answer(uow, repo, request, reached)
    return Supplied(transaction_id, sum(emails), sum(phones), still_missing(request, roll))


async def agent_code(
    uow: UnitOfWork,
    ctx: Context,
    agent_id: str,
    client_email: str,
    street: str,
    postcode: str,
    client_number: int | None = None,
) -> Supplied:
    """An invitation the agent asks for, for a client of one of their closed transactions; it
    answers that client's contact request like a supplied email."""
    repo = repository(uow)
    agent = await repo.agent(agent_id, for_update=True)  # serialises the agent's contact count
    if agent is None:
        raise NotFoundError(f"agent {agent_id} is not on the roster")
    check_may_invite(agent.mode, active=agent.active)
    wanted = AddressedProperty(street, postcode)
    for transaction, side in await repo.transactions_of_agent_at(agent_id, postcode):
        if same_property(AddressedProperty(transaction.street, transaction.postcode), wanted):
            transaction_id = transaction.transaction_id
            request, roll = await _request_and_roll(repo, transaction_id, agent_id)
            name = (client_number and roll.name(client_number)) or client_email.split("@")[0]
            client = ClientContact(name, client_email, None)
            reached = clients_reached(
                [SuppliedClient(client, client_number)], roll, request.missing if request else ()
            )
            flags = await _checked_contacts(
                ctx, repo, agent, transaction_id, [client], listed=len(roll.names)
            )
            representation = Representation(transaction, agent_id, side, [client])
            offer = replace(
                survey_offer(representation, agent, client, flags[client]), origin=Origin.CODE
            )
            if not (await issue(uow, ctx, repo, [offer]))[0]:
                raise RefusedError(
                    "already_invited", "this client was already invited for that transaction"
                )
            request = await _answer(uow, repo, request, reached)
            return Supplied(transaction_id, 1, 0, still_missing(request, roll))
    raise NotFoundError("no closed transaction of yours at that road name and postcode")


@dataclass(frozen=True)
class Resent:
    """A correction: the invitation cancelled and the one sent in its place."""

    cancelled_invitation_id: str
    invitation_id: str
    transaction_id: str
    expires_at: datetime


async def resend_invitation(
    uow: UnitOfWork, ctx: Context, agent_id: str, invitation_id: str, email: str
) -> Resent:
    """Cancel one client's invitation sent to a wrong email and send a new one (new PIN and
    link) to the corrected address: the cancellation reaches reviews as
    `invitation.cancelled.v1` (reason `wrong_email`), so the old PIN and link stop working
    there. The corrected address is checked like any contact the agent enters."""
    repo = repository(uow)
    agent = await repo.agent(agent_id, for_update=True)  # serialises the agent's contacts
    found = await repo.agent_invitation(invitation_id, agent_id, for_update=True)
    if agent is None or found is None:
        raise NotFoundError(f"no invitation {invitation_id} of yours")
    stored, row = found
    check_may_invite(agent.mode, active=agent.active)
    check_resend(_correctable(stored, row), repo.indexes(email))
    transaction = await repo.transaction(stored.transaction_id or "")
    if transaction is None:
        raise NotFoundError(f"no closed transaction of yours for invitation {invitation_id}")
    transaction_id = transaction.transaction_id
    side = await repo.representation_side(transaction_id, agent_id)
    if side is None:  # the agent's invitation for a closing comes from their side of it
        raise NotFoundError(f"no closed transaction of yours for invitation {invitation_id}")
    new_id = str(uuid.uuid4())
    await repo.mark_replaced(invitation_id, new_id)
    await close(uow, repo, stored, InvitationStatus.CANCELLED, WRONG_EMAIL)
    name = stored.client.name if stored.client else email.split("@")[0]
    client = ClientContact(name, email, None)
    _, roll = await _request_and_roll(repo, transaction_id, agent_id)
    flags = await _checked_contacts(
        ctx, repo, agent, transaction_id, [client], listed=len(roll.names)
    )
    offer = replace(
        survey_offer(Representation(transaction, agent_id, side, [client]), agent, client),
        supplied_flags=flags[client],
        origin=Origin(row["origin"]) if row["origin"] else None,
        replaces=invitation_id,
        corrections=row["corrections"] + 1,
        invitation_id=new_id,
    )
    if not (await issue(uow, ctx, repo, [offer]))[0]:
        raise RefusedError(
            "not_sent",
            "this address unsubscribed from survey emails, or this client was invited at it before",
        )
    logger.info("invitation %s re-sent as %s", invitation_id, new_id)
    return Resent(invitation_id, new_id, transaction_id, expires_at(uow.now, ctx.policy))


@dataclass(frozen=True)
class AgentInvitation:
    """One of the agent's invitations as the agent may see it."""

    invitation_id: str
    transaction_id: str | None
    channel: str
    origin: str
    client_name: str | None
    email: str | None
    status: str
    issued_at: datetime
    expires_at: datetime
    replaces: str | None
    replaced_by: str | None
    resendable: bool


async def agent_invitations(
    uow: UnitOfWork, agent_id: str, transaction_id: str | None, limit: int
) -> list[AgentInvitation]:
    """The agent's invitations for closings; an address is shown in full only to the agent who
    entered it (docs/design.md 1.10: client contact never shown to anyone but the agent who supplied it)."""
    found = []
    for stored, row in await repository(uow).invitations_of_agent(agent_id, transaction_id, limit):
        origin = row["origin"] or (Origin.AGENT if row["supplied_by_agent"] else Origin.MLS)
        email = stored.client.email if stored.client else None
        try:
            check_resend(_correctable(stored, row), [])
            resendable = True
        except RefusedError:
            resendable = False
        found.append(
            AgentInvitation(
                invitation_id=stored.invitation.invitation_id,
                transaction_id=stored.transaction_id,
                channel=stored.invitation.channel,
                origin=str(origin),
                client_name=stored.client.name if stored.client else None,
                email=email if row["supplied_by_agent"] or email is None else masked(email),
                status=stored.invitation.status.value,
                issued_at=stored.invitation.issued_at,
                expires_at=stored.invitation.expires_at,
                replaces=row["replaces"],
                replaced_by=row["replaced_by"],
                resendable=resendable,
            )
        )
    return found


async def funnel(uow: UnitOfWork, agent_id: str, period: Period) -> InvitedFunnel:
    """The invitations part of the agent's funnel: closings in the period, their clients,
    and how many were invited by each route (docs/design.md 1.10)."""
    closings = await repository(uow).funnel_closings(agent_id, period.start, period.end)
    return invited_funnel(closings)


async def open_requests(
    uow: UnitOfWork, agent_id: str
) -> list[tuple[ContactRequest, list[MissingClient]]]:
    """The agent's open contact requests, soonest deadline first, with the clients missing."""
    repo = repository(uow)
    found = []
    for request in await repo.open_requests_of(agent_id):
        clients = await repo.representation_clients(request.transaction_id, agent_id)
        roll = ClientRoll.of(clients, request.clients_listed)
        found.append((request, still_missing(request, roll)))
    return found


async def phone_task_step(
    uow: UnitOfWork, invitation_id: str, surveyor_id: str, *, done: bool
) -> tuple[PhoneTask, ClientContact | None]:
    """A surveyor claims a phone survey, or marks the call made: the task as it is now, and
    the client to call."""
    repo = repository(uow)
    found = await repo.phone_task(invitation_id)
    if found is None:
        raise NotFoundError(f"no phone survey {invitation_id}")
    task, client = found
    task = complete(task, surveyor_id) if done else claim(task, surveyor_id)
    await repo.save_phone_task(task, uow.now)
    return task, client


async def unsubscribe(uow: UnitOfWork, ctx: Context, token: str) -> bool:
    repo = repository(uow)
    stored = await repo.invitation_by_unsubscribe(ctx.hasher.token_hashes(token))
    if stored is None:
        return False
    email = stored.client.email if stored.client else None
    # during a key rotation the address's other rows may be indexed under either key
    indexes = sorted({stored.client_index, *(repo.indexes(email) if email else [])})
    for index in indexes:
        await repo.suppress(index, uow.now)
    for invitation in await repo.open_invitations_of_clients(indexes):
        await close(uow, repo, invitation, InvitationStatus.CANCELLED, "unsubscribed")
    return True


async def erase_client(uow: UnitOfWork, email: str | None, phone: str | None) -> Erasure:
    """Erase a client's contact data and name here, cancel their open invitations and queued
    mail, and tell every other service (`clients.erasures`) by blind indexes and invitation ids:
    all in this transaction. Erasing again finds the same invitations and erases nothing more."""
    repo = repository(uow)
    # under every key (design.md 3.5): rows written before a rotation are erased too
    indexes = sorted({index for value in (email, phone) if value for index in repo.indexes(value)})
    await repo.serialise("erasures")  # rare: one at a time, so two never deadlock on rows
    erased = await repo.erase_clients(indexes, uow.now)
    open_ones = await repo.open_invitations_of_clients(indexes)
    for invitation in open_ones:
        await close(uow, repo, invitation, InvitationStatus.CANCELLED, "erased")
    invitation_ids = await repo.invitation_ids_of_clients(indexes)
    mails = await forget_mail_to(uow.conn, indexes)
    erasure = ErasureRequested(
        erasure_id=str(uuid.uuid4()),
        requested_at=uow.now,
        client_indexes=indexes,
        invitation_ids=invitation_ids,
    )
    await uow.publish(ERASURE_REQUESTED, erasure, ce_id=f"erasure:{erasure.erasure_id}")
    return Erasure(erasure.erasure_id, len(open_ones), erased, mails)


async def _checked_contacts(
    ctx: Context,
    repo: InvitationsRepository,
    agent: Agent,
    transaction_id: str,
    clients: Sequence[ClientContact],
    *,
    listed: int,
) -> dict[ClientContact, tuple[str, ...]]:
    """Contacts the agent entered, checked (docs/design.md §3.3): refuses the lot if one is on
    the agent's own mail domain or disposable, or if they are more than the closing's clients;
    otherwise each one's flags (reused for other agents' clients)."""
    rules = ctx.contact_rules
    indexes = {client: repo.index(client.email or client.phone or "") for client in clients}
    try:
        for client in clients:
            check_contact(client, agent.email)
        already = await repo.supplied_indexes(transaction_id, agent.agent_id)
        adding = len(set(indexes.values()) - already)
        check_supplied_count(already=len(already), adding=adding, listed=listed, rules=rules)
    except RefusedError as refused:
        TRUST_SIGNALS.labels("invitations", refused.code, "refused").inc()
        raise
    others = await repo.agents_supplying(sorted(set(indexes.values())), agent.agent_id)
    flagged = {
        client: tuple(f.value for f in contact_flags(others.get(index, 0), rules))
        for client, index in indexes.items()
    }
    for flags in flagged.values():
        for flag in flags:
            TRUST_SIGNALS.labels("invitations", flag, "flagged").inc()
    return flagged


async def _request_and_roll(
    repo: InvitationsRepository, transaction_id: str, agent_id: str
) -> tuple[ContactRequest | None, ClientRoll]:
    """The agent's contact request for the closing (locked), and its clients as listed."""
    request = await repo.contact_request(transaction_id, agent_id)
    clients = await repo.representation_clients(transaction_id, agent_id)
    return request, ClientRoll.of(clients, request.clients_listed if request else 0)


async def _answer(
    uow: UnitOfWork,
    repo: InvitationsRepository,
    request: ContactRequest | None,
    reached: Sequence[int | None],
) -> ContactRequest | None:
    if request is None:
        return None
    answered = answer_request(request, reached)
    if answered != request:
        await repo.save_request(answered, uow.now)
    return answered


def _correctable(stored: StoredInvitation, row: asyncpg.Record) -> Correctable:
    """What the re-send rule reads of a stored invitation and its row."""
    return Correctable(
        stored.survey,
        stored.invitation.channel,
        stored.invitation.status,
        row["corrections"],
        stored.client_index,
    )
