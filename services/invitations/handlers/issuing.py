"""What events, commands and timers do alike to invitations: plan a closing's, issue them (with
their mails and events), add phone tasks, close them, and announce a participation change."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from services.invitations.domain.corrections import Origin
from services.invitations.domain.model import (
    Agent,
    ClientContact,
    ClientRoll,
    InvitationStatus,
    ModeChange,
    PhoneOffer,
    Representation,
    SurveyOffer,
    contact_request,
    expires_at,
    may_mail,
    phone_offer,
    plan_representation,
    removal_offer,
    still_missing,
    survey_offer,
)
from services.invitations.handlers.context import Context
from services.invitations.handlers.mails import Draft, invitation_mail, mail_agent
from services.invitations.repository import (
    InvitationsRepository,
    NewInvitation,
    StoredInvitation,
)
from shared.contracts import (
    INVITATION_CANCELLED,
    INVITATION_EXPIRED,
    INVITATION_ISSUED,
    PARTICIPATION_CHANGED,
)
from shared.contracts.invitations import InvitationClosed, InvitationIssued
from shared.contracts.participation import (
    ParticipationChanged,
    ParticipationMode,
    ParticipationReason,
)
from shared.contracts.removals import RemovalReason
from shared.contracts.reviews import Channel, SurveyKind
from shared.crypto import new_pin, new_token
from shared.uow import UnitOfWork


async def plan(
    uow: UnitOfWork,
    ctx: Context,
    repo: InvitationsRepository,
    waiting: Sequence[tuple[Representation, Agent]],
) -> None:
    """Invitations, phone tasks and contact requests for representations of rostered agents,
    set-based: a batch of closings costs a handful of statements, not a dozen per closing."""
    planned = [
        (r, agent, plan_representation(agent.mode, r.clients, active=agent.active))
        for r, agent in waiting
    ]
    await issue(
        uow,
        ctx,
        repo,
        [survey_offer(r, agent, c) for r, agent, plan in planned for c in plan.email_invitations],
    )
    await add_phones(
        uow, ctx, repo, [phone_offer(r, c) for r, _, plan in planned for c in plan.phone_tasks]
    )
    for representation, agent, plan in planned:
        if plan.needs_contact:
            transaction = representation.transaction
            request = contact_request(
                transaction.transaction_id,
                agent.agent_id,
                transaction.closed_at,
                ctx.policy,
                now=uow.now,
                clients=representation.clients,
            )
            if await repo.add_contact_request(request):
                missing = still_missing(request, ClientRoll.of(representation.clients))
                await mail_agent(
                    uow, ctx, "agent_contact_request", agent, transaction, request, missing
                )
    await repo.mark_planned(
        [(r.transaction.transaction_id, r.agent_id) for r, _, _ in planned], uow.now
    )


async def removal_survey(
    uow: UnitOfWork,
    ctx: Context,
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
    new_agent = await repo.agent(handed_to) if handed_to else None
    offer = removal_offer(agent, client, lead_id, reason, new_agent.name if new_agent else None)
    if isinstance(offer, SurveyOffer):
        await issue(uow, ctx, repo, [offer])
    elif isinstance(offer, PhoneOffer):
        await add_phones(uow, ctx, repo, [offer])


async def issue(
    uow: UnitOfWork, ctx: Context, repo: InvitationsRepository, offers: Sequence[SurveyOffer]
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
        _draft(uow, ctx, offer, index) if may_mail(index, suppressed) else None
        for offer, index in zip(offers, indexes, strict=True)
    ]
    inserted = await repo.add_invitations([d.invitation for d in drafts if d is not None])
    issued = [d for d in drafts if d is not None and d.invitation.invitation_id in inserted]
    await _publish_issued(uow, [draft.invitation for draft in issued])
    await uow.send_mails([invitation_mail(ctx, draft) for draft in issued])
    return [d is not None and d.invitation.invitation_id in inserted for d in drafts]


async def add_phones(
    uow: UnitOfWork, ctx: Context, repo: InvitationsRepository, offers: Sequence[PhoneOffer]
) -> list[bool]:
    """Phone-survey tasks, one statement for the lot; per offer, whether it was added."""
    if not offers:
        return []
    invitations = [
        _new_invitation(
            uow,
            ctx,
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


async def close(
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


async def change_mode(
    uow: UnitOfWork, repo: InvitationsRepository, agent_id: str, change: ModeChange
) -> None:
    """Record and announce the agent's new participation, and what follows it."""
    await repo.set_mode(agent_id, change.mode, change.reason, uow.now)
    await announce(uow, agent_id, change.mode, change.reason)
    if change.waives_requests:
        await repo.waive_requests_of(agent_id, uow.now)


async def announce(
    uow: UnitOfWork, agent_id: str, mode: ParticipationMode, reason: ParticipationReason
) -> None:
    await uow.publish(
        PARTICIPATION_CHANGED,
        ParticipationChanged(agent_id=agent_id, mode=mode, reason=reason, changed_at=uow.now),
    )


def _draft(uow: UnitOfWork, ctx: Context, offer: SurveyOffer, client_index: str) -> Draft:
    hasher = ctx.hasher
    invitation_id = offer.invitation_id or str(uuid.uuid4())
    # the link names its invitation under a MAC, so reviews can answer "being prepared" to a
    # client faster than the invitation event
    pin, token, unsubscribe_token = new_pin(), hasher.link_token(invitation_id), new_token()
    invitation = _new_invitation(
        uow,
        ctx,
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
        origin=offer.origin,
        replaces=offer.replaces,
        corrections=offer.corrections,
    )
    return Draft(offer, invitation, pin, token, unsubscribe_token)


def _new_invitation(
    uow: UnitOfWork,
    ctx: Context,
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
    origin: Origin | None = None,
    replaces: str | None = None,
    corrections: int = 0,
) -> NewInvitation:
    supplied = supplied_flags is not None
    origin = origin or (Origin.AGENT if supplied else Origin.MLS)
    return NewInvitation(
        invitation_id=invitation_id or str(uuid.uuid4()),
        agent_id=agent_id,
        survey=(SurveyKind.REMOVAL if reason else SurveyKind.TRANSACTION).value,
        channel=channel.value,
        client=client,
        client_index=client_index,
        issued_at=uow.now,
        expires_at=expires_at(uow.now, ctx.policy),
        transaction_id=transaction_id,
        lead_id=lead_id,
        removal_reason=reason.value if reason else None,
        pin_hash=pin_hash,
        token_hash=token_hash,
        unsubscribe_hash=unsubscribe_hash,
        supplied_by_agent=supplied,
        trust_flags=supplied_flags or (),
        origin=origin.value,
        replaces=replaces,
        corrections=corrections,
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
