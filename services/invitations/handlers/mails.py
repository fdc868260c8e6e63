"""The mails the invitations service sends: the client's invitation and reminder (with RFC 8058
one-click unsubscribe), the client's thank-you with the link to their review's state, and the agent's contact request, reminder and opt-out notice."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from services.invitations.domain.model import (
    Agent,
    ContactRequest,
    MissingClient,
    SurveyOffer,
    Transaction,
    may_mail,
)
from services.invitations.handlers.context import Context
from services.invitations.repository import (
    InvitationsRepository,
    NewInvitation,
    StoredInvitation,
)
from shared.contracts.reviews import SurveyAnswered
from shared.crypto import new_token
from shared.mailer import QueuedMail, RenderedMail
from shared.portal import clients_page, participation_page
from shared.uow import UnitOfWork

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Draft:
    """An invitation about to be inserted, with the secrets only its mail will carry."""

    offer: SurveyOffer
    invitation: NewInvitation
    pin: str
    token: str
    unsubscribe_token: str


def invitation_mail(ctx: Context, draft: Draft) -> QueuedMail:
    offer, transaction = draft.offer, draft.offer.transaction
    mail = ctx.templates.render(
        offer.template,
        client_name=offer.client.name,
        agent_name=offer.agent.name,
        street=transaction.street if transaction else "",
        city=transaction.city if transaction else "",
        pin=draft.pin,
        survey_url=f"{ctx.survey_base_url}/survey?token={draft.token}",
        unsubscribe_url=_unsubscribe_url(ctx, draft.unsubscribe_token),
        expires_on=_day(draft.invitation.expires_at),
        new_agent_name=offer.new_agent_name,
    )
    return QueuedMail(
        to=offer.client.email or "",
        mail=_with_unsubscribe(ctx, mail, draft.unsubscribe_token),
        dedupe_key=f"invitation:{draft.invitation.invitation_id}",
    )


async def remind_client(
    uow: UnitOfWork, ctx: Context, repo: InvitationsRepository, stored: StoredInvitation
) -> None:
    """The PIN is not kept (only its hash), so the reminder points back to the first email."""
    client = stored.client
    if client is None or client.email is None:
        return
    if not may_mail(stored.client_index, await repo.suppressed_among([stored.client_index])):
        return
    agent = await repo.agent(stored.invitation.agent_id)
    if agent is None:
        raise LookupError(f"invitation {stored.invitation.invitation_id} names no stored agent")
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
        unsubscribe_url=_unsubscribe_url(ctx, unsubscribe_token),
    )
    await uow.send_mail(
        to=client.email,
        mail=_with_unsubscribe(ctx, mail, unsubscribe_token),
        dedupe_key=f"reminder:{stored.invitation.invitation_id}",
    )


async def mail_agent(
    uow: UnitOfWork,
    ctx: Context,
    template: str,
    agent: Agent,
    transaction: Transaction,
    request: ContactRequest,
    missing: Sequence[MissingClient],
) -> None:
    """The agent's own mail: it may name the agent's clients (never a client's contact)."""
    mail = ctx.templates.render(
        template,
        agent_name=agent.name,
        missing_clients=[client.label for client in missing],
        transaction_id=transaction.transaction_id,
        street=transaction.street,
        city=transaction.city,
        closed_on=_day(transaction.closed_at),
        deadline_on=_day(request.deadline),
        portal_url=clients_page(ctx.portal_url),
        participation_url=participation_page(ctx.portal_url),
    )
    await uow.send_mail(
        to=agent.email,
        mail=mail,
        dedupe_key=f"{template}:{transaction.transaction_id}:{agent.agent_id}",
    )


async def thank_client(
    uow: UnitOfWork, ctx: Context, repo: InvitationsRepository, event: SurveyAnswered
) -> None:
    """The thank-you mail carries the client's lasting link to their review's state
    (docs/design.md 1.10): reviews shows it, this service alone knows the address."""
    found = await repo.agent_invitation(event.invitation_id, event.agent_id)
    if found is None:
        return
    stored, _ = found
    client = stored.client
    if client is None or client.email is None:
        return  # erased
    if not may_mail(stored.client_index, await repo.suppressed_among([stored.client_index])):
        return
    try:
        token = ctx.hasher.status_token(event.review_id)
    except ValueError:
        logger.warning("survey.answered names review %r: no status link", event.review_id)
        return
    agent = await repo.agent(event.agent_id)
    mail = ctx.templates.render(
        "client_thanks",
        client_name=client.name,
        agent_name=agent.name if agent else "your agent",
        status_url=f"{ctx.survey_base_url}/review-status?token={token}",
    )
    await uow.send_mail(to=client.email, mail=mail, dedupe_key=f"thanks:{event.invitation_id}")


def _unsubscribe_url(ctx: Context, token: str) -> str:
    return f"{ctx.service_base_url}/unsubscribe?token={token}"


def _with_unsubscribe(ctx: Context, mail: RenderedMail, token: str) -> RenderedMail:
    """RFC 8058 one-click unsubscribe headers, besides the link in the body."""
    return replace(
        mail,
        headers=(
            ("List-Unsubscribe", f"<{_unsubscribe_url(ctx, token)}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
    )


def _day(at: datetime) -> str:
    return at.strftime("%B %d, %Y").replace(" 0", " ")
