"""Events from the streams, commands from the API and timer steps: load, decide (domain), save,
publish and queue mail in the unit of work's one transaction.

Client contact data goes only to the sealed tables and the encrypted mail outbox: never into a
published event or a log record.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from services.invitations.domain.model import (
    AddressedProperty,
    ClientContact,
    ClientRoll,
    ComplianceStep,
    ContactRequest,
    ContactRequestStatus,
    InvitationStatus,
    InvitationStep,
    MissingClient,
    Policy,
    RefusedError,
    SuppliedClient,
    answer_request,
    check_may_invite,
    client_template,
    clients_reached,
    clock_for_roster,
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
    still_missing,
)
from services.invitations.domain.trust import (
    ContactRules,
    check_contact,
    check_supplied_count,
    contact_flags,
)
from services.invitations.repository import (
    Agent,
    Erased,
    InvitationsRepository,
    NewInvitation,
    Representation,
    StoredInvitation,
    Transaction,
)
from shared.configured import Configured
from shared.contracts import (
    AGENT_UPSERTED,
    ERASURE_REQUESTED,
    INVITATION_CANCELLED,
    INVITATION_EXPIRED,
    INVITATION_ISSUED,
    LEAD_ASSIGNED,
    PARTICIPATION_CHANGED,
    REMOVAL_COMPLETED,
    SURVEY_ANSWERED,
)
from shared.contracts.erasures import ErasureRequested
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
from shared.mailer import QueuedMail, RenderedMail, Templates, forget_mail_to
from shared.messaging import Delivery, EventDispatcher
from shared.metrics import TRUST_SIGNALS
from shared.topics import Topic
from shared.uow import UnitOfWork

logger = logging.getLogger(__name__)

dispatcher = EventDispatcher(
    "invitations",
    publishes=(
        PARTICIPATION_CHANGED,
        INVITATION_ISSUED,
        INVITATION_EXPIRED,
        INVITATION_CANCELLED,
        ERASURE_REQUESTED,
    ),
)

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
    contact_rules: ContactRules = field(default_factory=ContactRules)


_context: Configured[Context] = Configured("invitations handlers")


def configure(context: Context) -> None:
    _context.set(context)


def context() -> Context:
    return _context.get()


@dataclass(frozen=True)
class Erasure:
    """What an erasure did here; the other services act on `erasure_id`'s event."""

    erasure_id: str
    cancelled: int
    erased: Erased
    mails_dropped: int


class NotFoundError(Exception):
    """No such agent, transaction or task."""


def repository(uow: UnitOfWork) -> InvitationsRepository:
    return InvitationsRepository(uow.conn, uow.cipher)


# events


@dispatcher.on(AGENT_UPSERTED)
async def agent_upserted(event: AgentUpserted, uow: UnitOfWork) -> None:
    repo = repository(uow)
    await repo.serialise(f"agent:{event.agent_id}")
    # the agent's open compliance clocks stop while the roster marks them inactive and run on
    # when it marks them active again; requests are locked before the agent row, as the
    # compliance timer does (no deadlock between the two)
    requests = await repo.open_requests_of(event.agent_id, for_update=True)
    clocks = [clock_for_roster(r, active=event.active, now=uow.now) for r in requests]
    await repo.save_clocks([new for new, old in zip(clocks, requests, strict=True) if new != old])
    if await repo.upsert_agent(event, uow.now):
        mode, reason = participation_for_new_agent()
        await _announce(uow, event.agent_id, mode, reason)
    agent = await repo.agent(event.agent_id)
    assert agent is not None
    waiting = await repo.unplanned_representations_of_agent(event.agent_id)
    await _plan(uow, repo, [(representation, agent) for representation in waiting])
    for held in await repo.take_held_removals_of_agent(event.agent_id):
        await _removal_survey(
            uow, repo, held.lead_id, event.agent_id, held.reason, handed_to=held.handed_to
        )


@dispatcher.on_batch(Topic.MLS_TRANSACTIONS)
async def transactions_closed(deliveries: Sequence[Delivery], uow: UnitOfWork) -> None:
    """A batch of closings planned together: a constant number of statements per batch, every
    agent they name locked first in one sorted statement."""
    events = [d.event for d in deliveries if isinstance(d.event, TransactionClosed)]
    await _plan_transactions(uow, events)


async def transaction_closed(event: TransactionClosed, uow: UnitOfWork) -> None:
    """One closing (how tests feed one)."""
    await _plan_transactions(uow, [event])


async def _plan_transactions(uow: UnitOfWork, events: Sequence[TransactionClosed]) -> None:
    """Replays (same or new ce_id) find the representations planned, or hit the unique index.
    Agents the roster does not name yet are planned when it does (`agent_upserted`)."""
    repo = repository(uow)
    await repo.serialise(*(f"agent:{r.agent_id}" for e in events for r in e.representations))
    await repo.save_transactions(events)
    waiting = await repo.unplanned_representations_of([e.transaction_id for e in events])
    agents = await repo.agents(r.agent_id for r in waiting)
    await _plan(uow, repo, [(r, agents[r.agent_id]) for r in waiting if r.agent_id in agents])


@dispatcher.on(LEAD_ASSIGNED)
async def lead_assigned(event: LeadAssigned, uow: UnitOfWork) -> None:
    repo = repository(uow)
    client = ClientContact(
        event.client.name, event.client.email and str(event.client.email), event.client.phone
    )
    await repo.serialise(f"agent:{event.agent_id}", f"lead:{event.lead_id}:{event.agent_id}")
    await repo.save_lead(event.lead_id, event.agent_id, client)
    if await repo.agent(event.agent_id) is None:
        return  # a removal held for this lead waits for the roster to name the agent
    held = await repo.take_held_removal(event.lead_id, event.agent_id)
    if held is not None:
        await _removal_survey(
            uow, repo, event.lead_id, event.agent_id, held.reason, handed_to=held.handed_to
        )


@dispatcher.on(REMOVAL_COMPLETED)
async def removal_completed(event: RemovalCompleted, uow: UnitOfWork) -> None:
    repo = repository(uow)
    await repo.serialise(f"agent:{event.agent_id}", f"lead:{event.lead_id}:{event.agent_id}")
    # the lead, or the roster entry naming its agent, may come later (the topics are not
    # ordered together): hold the survey until both are known
    known = await repo.lead_known(event.lead_id, event.agent_id)
    if not known or await repo.agent(event.agent_id) is None:
        await repo.hold_removal(
            event.lead_id,
            event.agent_id,
            event.reason.value,
            event.completed_at,
            event.handed_to_agent_id,
        )
        return
    await _removal_survey(
        uow, repo, event.lead_id, event.agent_id, event.reason, handed_to=event.handed_to_agent_id
    )


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


@dataclass(frozen=True)
class Supplied:
    """What the agent's contacts did: invitations and phone tasks made, clients still owed."""

    transaction_id: str
    emailed: int
    phoned: int
    still_missing: list[MissingClient]


async def supply_clients(
    uow: UnitOfWork, agent_id: str, transaction_id: str, supplied: list[SuppliedClient]
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
    if plan is None:
        raise RefusedError("opted_out", "you are opted out: no invitations are sent")
    request, roll = await _request_and_roll(repo, transaction_id, agent_id)
    reached = clients_reached(supplied, roll, request.missing if request else ())
    flags = await _checked_contacts(repo, agent, transaction_id, clients, listed=len(roll.names))
    representation = Representation(transaction, agent_id, side, clients)
    emails = await _issue(
        uow,
        repo,
        [_survey_offer(representation, agent, c, flags[c]) for c in plan.email_invitations],
    )
    phones = await _add_phones(
        uow, repo, [_phone_offer(representation, c, flags[c]) for c in plan.phone_tasks]
    )
    request = await _answer(uow, repo, request, reached)
    return Supplied(transaction_id, sum(emails), sum(phones), still_missing(request, roll))


async def agent_code(
    uow: UnitOfWork,
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
    for transaction in await repo.transactions_of_agent_at(agent_id, postcode):
        if same_property(AddressedProperty(transaction.street, transaction.postcode), wanted):
            transaction_id = transaction.transaction_id
            side = await repo.representation_side(transaction_id, agent_id)
            assert side is not None
            request, roll = await _request_and_roll(repo, transaction_id, agent_id)
            name = (client_number and roll.name(client_number)) or client_email.split("@")[0]
            client = ClientContact(name, client_email, None)
            reached = clients_reached(
                [SuppliedClient(client, client_number)], roll, request.missing if request else ()
            )
            flags = await _checked_contacts(
                repo, agent, transaction_id, [client], listed=len(roll.names)
            )
            representation = Representation(transaction, agent_id, side, [client])
            offer = _survey_offer(representation, agent, client, flags[client])
            if not (await _issue(uow, repo, [offer]))[0]:
                raise RefusedError(
                    "already_invited", "this client was already invited for that transaction"
                )
            request = await _answer(uow, repo, request, reached)
            return Supplied(transaction_id, 1, 0, still_missing(request, roll))
    raise NotFoundError("no closed transaction of yours at that road name and postcode")


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


async def unsubscribe(uow: UnitOfWork, token: str) -> bool:
    repo = repository(uow)
    stored = await repo.invitation_by_unsubscribe(context().hasher.token_hashes(token))
    if stored is None:
        return False
    email = stored.client.email if stored.client else None
    # during a key rotation the address's other rows may be indexed under either key
    indexes = sorted({stored.client_index, *(repo.indexes(email) if email else [])})
    for index in indexes:
        await repo.suppress(index, uow.now)
    for invitation in await repo.open_invitations_of_clients(indexes):
        await _close(uow, repo, invitation, InvitationStatus.CANCELLED, "unsubscribed")
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
        await _close(uow, repo, invitation, InvitationStatus.CANCELLED, "erased")
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


# timer steps


async def run_compliance(uow: UnitOfWork, limit: int = 100) -> int:
    """Remind agents at 7 days; at the deadline with a client still missing, auto opt-out."""
    ctx, repo = context(), repository(uow)
    policy = ctx.policy
    remind_if_deadline_before = uow.now + policy.compliance_window - policy.agent_reminder_after
    due = await repo.due_requests(uow.now, remind_if_deadline_before, limit)
    for request in due:
        step = compliance_step(request, uow.now, ctx.policy)
        agent = await repo.agent(request.agent_id, for_update=True)
        transaction = await repo.transaction(request.transaction_id)
        assert agent is not None and transaction is not None
        clients = await repo.representation_clients(request.transaction_id, request.agent_id)
        missing = still_missing(request, ClientRoll.of(clients, request.clients_listed))
        if step is ComplianceStep.REMIND_AGENT:
            await repo.mark_request_reminded(request, uow.now)
            await _mail_agent(uow, "agent_reminder", agent, transaction, request, missing)
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
                await _mail_agent(uow, "agent_opt_out", agent, transaction, request, missing)
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


async def _checked_contacts(
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
    rules = context().contact_rules
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


@dataclass(frozen=True)
class SurveyOffer:
    """A client to invite by email, with what the invitation and its mail need."""

    agent: Agent
    client: ClientContact
    template: str
    transaction: Transaction | None = None
    lead_id: str | None = None
    reason: RemovalReason | None = None
    new_agent_name: str | None = None
    """A hand-off's new agent, when the roster names them (the survey says who)."""
    supplied_flags: tuple[str, ...] | None = None
    """Set when the agent entered the contact: what the checks flagged (maybe nothing)."""


@dataclass(frozen=True)
class PhoneOffer:
    """A client without email: a phone-survey task for the operations staff."""

    agent_id: str
    client: ClientContact
    transaction_id: str | None = None
    lead_id: str | None = None
    reason: RemovalReason | None = None
    supplied_flags: tuple[str, ...] | None = None


@dataclass(frozen=True)
class _Draft:
    """An invitation about to be inserted, with the secrets only its mail will carry."""

    offer: SurveyOffer
    invitation: NewInvitation
    pin: str
    token: str
    unsubscribe_token: str


async def _plan(
    uow: UnitOfWork, repo: InvitationsRepository, waiting: Sequence[tuple[Representation, Agent]]
) -> None:
    """Invitations, phone tasks and contact requests for representations of rostered agents,
    set-based: a batch of closings costs a handful of statements, not a dozen per closing."""
    planned = []
    for representation, agent in waiting:
        plan = plan_representation(agent.mode, representation.clients, active=agent.active)
        assert plan is not None
        planned.append((representation, agent, plan))
    await _issue(
        uow,
        repo,
        [_survey_offer(r, agent, c) for r, agent, plan in planned for c in plan.email_invitations],
    )
    await _add_phones(
        uow, repo, [_phone_offer(r, c) for r, _, plan in planned for c in plan.phone_tasks]
    )
    for representation, agent, plan in planned:
        if plan.needs_contact:
            transaction = representation.transaction
            request = contact_request(
                transaction.transaction_id,
                agent.agent_id,
                transaction.closed_at,
                context().policy,
                now=uow.now,
                clients=representation.clients,
            )
            if await repo.add_contact_request(request):
                missing = still_missing(request, ClientRoll.of(representation.clients))
                await _mail_agent(
                    uow, "agent_contact_request", agent, transaction, request, missing
                )
    await repo.mark_planned(
        [(r.transaction.transaction_id, r.agent_id) for r, _, _ in planned], uow.now
    )


def _survey_offer(
    representation: Representation,
    agent: Agent,
    client: ClientContact,
    supplied_flags: tuple[str, ...] | None = None,
) -> SurveyOffer:
    transaction = representation.transaction
    return SurveyOffer(
        agent,
        client,
        client_template(transaction.kind, representation.side),
        transaction=transaction,
        supplied_flags=supplied_flags,
    )


def _phone_offer(
    representation: Representation,
    client: ClientContact,
    supplied_flags: tuple[str, ...] | None = None,
) -> PhoneOffer:
    return PhoneOffer(
        representation.agent_id,
        client,
        transaction_id=representation.transaction.transaction_id,
        supplied_flags=supplied_flags,
    )


async def _removal_survey(
    uow: UnitOfWork,
    repo: InvitationsRepository,
    lead_id: str,
    agent_id: str,
    reason: RemovalReason,
    *,
    handed_to: str | None = None,
) -> None:
    client = await repo.lead_client(lead_id, agent_id)
    agent = await repo.agent(agent_id)
    if client is None or agent is None:
        return  # erased, or an agent the roster never named: nobody to survey about
    if handed_to:
        # the client is the new agent's lead now: should they remove it in turn, its survey
        # finds the client here (whatever the roster says of the agent who gave them up)
        await repo.save_lead(lead_id, handed_to, client)
    if not agent.active:
        return  # no invitations of any kind for an agent who left the MLS (design.md 1.7)
    new_agent = await repo.agent(handed_to) if handed_to else None
    if client.email:
        offer = SurveyOffer(
            agent,
            client,
            removal_template(reason),
            lead_id=lead_id,
            reason=reason,
            new_agent_name=new_agent.name if new_agent else None,
        )
        await _issue(uow, repo, [offer])
    elif client.phone:
        await _add_phones(uow, repo, [PhoneOffer(agent_id, client, lead_id=lead_id, reason=reason)])


async def _issue(
    uow: UnitOfWork, repo: InvitationsRepository, offers: Sequence[SurveyOffer]
) -> list[bool]:
    """Email invitations with their mails, one statement each for the lot; per offer, whether
    it was issued (not if the address unsubscribed or the client was invited before)."""
    if not offers:
        return []
    candidates = [repo.indexes(offer.client.email or "") for offer in offers]
    indexes = [current for current, *_ in candidates]
    # an address unsubscribed before a key rotation is suppressed under the retired key
    hits = await repo.suppressed_among(sorted({i for found in candidates for i in found}))
    suppressed = {found[0] for found in candidates if hits.intersection(found)}
    drafts = [
        _draft(uow, offer, index) if may_mail(index, suppressed) else None
        for offer, index in zip(offers, indexes, strict=True)
    ]
    inserted = await repo.add_invitations([d.invitation for d in drafts if d is not None])
    issued = [d for d in drafts if d is not None and d.invitation.invitation_id in inserted]
    await _publish_issued(uow, [draft.invitation for draft in issued])
    await uow.send_mails([_invitation_mail(draft) for draft in issued])
    return [d is not None and d.invitation.invitation_id in inserted for d in drafts]


def _draft(uow: UnitOfWork, offer: SurveyOffer, client_index: str) -> _Draft:
    hasher = context().hasher
    invitation_id = str(uuid.uuid4())
    # the link names its invitation under a MAC, so reviews can answer "being prepared" to a
    # client faster than the invitation event
    pin, token, unsubscribe_token = new_pin(), hasher.link_token(invitation_id), new_token()
    invitation = _new_invitation(
        uow,
        offer.agent.agent_id,
        offer.client,
        client_index,
        Channel.EMAIL,
        transaction_id=offer.transaction.transaction_id if offer.transaction else None,
        lead_id=offer.lead_id,
        reason=offer.reason,
        invitation_id=invitation_id,
        pin_hash=hasher.pin_hash(pin),
        token_hash=hasher.token_hash(token),
        unsubscribe_hash=hasher.token_hash(unsubscribe_token),
        supplied_flags=offer.supplied_flags,
    )
    return _Draft(offer, invitation, pin, token, unsubscribe_token)


def _invitation_mail(draft: _Draft) -> QueuedMail:
    ctx, offer, transaction = context(), draft.offer, draft.offer.transaction
    mail = ctx.templates.render(
        offer.template,
        client_name=offer.client.name,
        agent_name=offer.agent.name,
        street=transaction.street if transaction else "",
        city=transaction.city if transaction else "",
        pin=draft.pin,
        survey_url=f"{ctx.survey_base_url}/survey?token={draft.token}",
        unsubscribe_url=_unsubscribe_url(draft.unsubscribe_token),
        expires_on=_day(draft.invitation.expires_at),
        new_agent_name=offer.new_agent_name,
    )
    return QueuedMail(
        to=offer.client.email or "",
        mail=_with_unsubscribe(mail, draft.unsubscribe_token),
        dedupe_key=f"invitation:{draft.invitation.invitation_id}",
    )


async def _add_phones(
    uow: UnitOfWork, repo: InvitationsRepository, offers: Sequence[PhoneOffer]
) -> list[bool]:
    """Phone-survey tasks, one statement for the lot; per offer, whether it was added."""
    if not offers:
        return []
    invitations = [
        _new_invitation(
            uow,
            offer.agent_id,
            offer.client,
            repo.index(offer.client.phone or ""),
            Channel.PHONE,
            transaction_id=offer.transaction_id,
            lead_id=offer.lead_id,
            reason=offer.reason,
            supplied_flags=offer.supplied_flags,
        )
        for offer in offers
    ]
    inserted = await repo.add_invitations(invitations)
    await _publish_issued(uow, [i for i in invitations if i.invitation_id in inserted])
    return [invitation.invitation_id in inserted for invitation in invitations]


def _new_invitation(
    uow: UnitOfWork,
    agent_id: str,
    client: ClientContact,
    client_index: str,
    channel: Channel,
    *,
    transaction_id: str | None,
    lead_id: str | None,
    reason: RemovalReason | None,
    invitation_id: str | None = None,
    pin_hash: str | None = None,
    token_hash: str | None = None,
    unsubscribe_hash: str | None = None,
    supplied_flags: tuple[str, ...] | None = None,
) -> NewInvitation:
    return NewInvitation(
        invitation_id=invitation_id or str(uuid.uuid4()),
        agent_id=agent_id,
        survey=(SurveyKind.REMOVAL if reason else SurveyKind.TRANSACTION).value,
        channel=channel.value,
        client=client,
        client_index=client_index,
        issued_at=uow.now,
        expires_at=expires_at(uow.now, context().policy),
        transaction_id=transaction_id,
        lead_id=lead_id,
        removal_reason=reason.value if reason else None,
        pin_hash=pin_hash,
        token_hash=token_hash,
        unsubscribe_hash=unsubscribe_hash,
        supplied_by_agent=supplied_flags is not None,
        trust_flags=supplied_flags or (),
    )


async def _publish_issued(uow: UnitOfWork, invitations: Sequence[NewInvitation]) -> None:
    await uow.publish_many(
        INVITATION_ISSUED,
        [
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
                trust_flags=list(new.trust_flags),
            )
            for new in invitations
        ],
        ce_ids=[f"{new.invitation_id}:issued" for new in invitations],
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
    # every link ever mailed keeps working: the first mail's too (AgentTracker)
    await repo.add_unsubscribe_link(
        ctx.hasher.token_hash(unsubscribe_token), stored.invitation.invitation_id, uow.now
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
    uow: UnitOfWork,
    template: str,
    agent: Agent,
    transaction: Transaction,
    request: ContactRequest,
    missing: Sequence[MissingClient],
) -> None:
    """The agent's own mail: it may name the agent's clients (never a client's contact)."""
    ctx = context()
    mail = ctx.templates.render(
        template,
        agent_name=agent.name,
        missing_clients=[client.label for client in missing],
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
