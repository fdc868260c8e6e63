"""The invitations service's clock-driven steps: agents' compliance (reminder, opt-out) and
invitations' reminder and expiry. Each takes a batch of due rows (SKIP LOCKED) per call."""

from __future__ import annotations

from services.invitations.domain.model import (
    ClientRoll,
    ComplianceStep,
    ContactRequestStatus,
    InvitationStatus,
    InvitationStep,
    compliance_step,
    invitation_step,
    non_compliance,
    still_missing,
)
from services.invitations.handlers.context import Context, repository
from services.invitations.handlers.issuing import change_mode, close
from services.invitations.handlers.mails import mail_agent, remind_client
from shared.uow import UnitOfWork


async def run_compliance(uow: UnitOfWork, ctx: Context, limit: int = 100) -> int:
    """Remind agents at 7 days; at the deadline with a client still missing, auto opt-out."""
    repo, policy = repository(uow), ctx.policy
    remind_if_deadline_before = uow.now + policy.compliance_window - policy.agent_reminder_after
    due = await repo.due_requests(uow.now, remind_if_deadline_before, limit)
    for request in due:
        step = compliance_step(request, uow.now, policy)
        agent = await repo.agent(request.agent_id, for_update=True)
        transaction = await repo.transaction(request.transaction_id)
        if agent is None or transaction is None:
            raise LookupError(
                f"{request.agent_id} owes {request.transaction_id} but one of them is not stored"
            )
        clients = await repo.representation_clients(request.transaction_id, request.agent_id)
        missing = still_missing(request, ClientRoll.of(clients, request.clients_listed))
        if step is ComplianceStep.REMIND_AGENT:
            await repo.mark_request_reminded(request, uow.now)
            await mail_agent(uow, ctx, "agent_reminder", agent, transaction, request, missing)
        elif step is ComplianceStep.OPT_OUT:
            await repo.resolve_request(request, ContactRequestStatus.LAPSED, uow.now)
            change = non_compliance(agent.mode)
            if change is not None:
                await change_mode(uow, repo, agent.agent_id, change)
                await mail_agent(uow, ctx, "agent_opt_out", agent, transaction, request, missing)
    return len(due)


async def run_invitation_timers(uow: UnitOfWork, ctx: Context, limit: int = 100) -> int:
    """Expire at 30 days; one client reminder at 7 days (see `invitation_step`)."""
    repo, policy = repository(uow), ctx.policy
    due = await repo.due_invitations(uow.now, uow.now - policy.client_reminder_after, limit)
    for stored in due:
        step = invitation_step(stored.invitation, uow.now, policy)
        if step is InvitationStep.EXPIRE:
            await close(uow, repo, stored, InvitationStatus.EXPIRED, "expired")
        elif step is InvitationStep.REMIND_CLIENT:
            await repo.mark_reminded(stored.invitation.invitation_id, uow.now)
            await remind_client(uow, ctx, repo, stored)
    return len(due)
