"""Events from the streams and commands from the API: load, decide (domain), save and publish in
the unit of work's one transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

from services.removals.domain.events import (
    PUBLISHED,
    event_for,
    event_id,
    events_with_a_person_s_note,
)
from services.removals.domain.model import (
    ERASED_TEXT,
    Decision,
    Lead,
    LeadStatus,
    Outcome,
    Proof,
    RemovalRejected,
    RemovalRequest,
    close_by_transaction,
    completes_lead,
    decide,
    parse_reason,
    record_client_response,
    request_removal,
    without_client_text,
)
from services.removals.domain.proof import ProofDocument, accept_proof, check_attachable
from services.removals.repository import RemovalsRepository
from shared.contracts import ERASURE_REQUESTED, LEAD_ASSIGNED, TRANSACTION_CLOSED
from shared.contracts.erasures import ErasureRequested
from shared.contracts.leads import LeadAssigned
from shared.contracts.mls import TransactionClosed
from shared.errors import NotFoundError
from shared.messaging import EventDispatcher
from shared.uow import UnitOfWork

dispatcher = EventDispatcher("removals", publishes=PUBLISHED)


def repository(uow: UnitOfWork) -> RemovalsRepository:
    return RemovalsRepository(uow.conn, uow.cipher)


@dispatcher.on(LEAD_ASSIGNED)
async def lead_assigned(event: LeadAssigned, uow: UnitOfWork) -> None:
    repo = repository(uow)
    lead = await repo.save_assignment(
        event.lead_id, event.agent_id, event.client, event.assigned_at, uow.now
    )
    if event.client.email is None:
        return
    # the closing may have been consumed before the lead: the topics are not ordered together
    closing = await repo.closing_since(
        lead.agent_id, repo.email_indexes(event.client.email), lead.assigned_at
    )
    if closing is not None:
        transaction_id, closed_at = closing
        if completes_lead(lead, agent_id=lead.agent_id, closed_at=closed_at):
            await _complete_lead(uow, repo, lead, transaction_id)


@dispatcher.on(TRANSACTION_CLOSED)
async def transaction_closed(event: TransactionClosed, uow: UnitOfWork) -> None:
    repo = repository(uow)
    clients = sorted(
        {
            (representation.agent_id, repo.email_index(client.email))
            for representation in event.representations
            for client in representation.clients
            if client.email
        }
    )
    if not clients:
        return
    await repo.record_closing(event.transaction_id, event.closed_at, clients)
    # leads stored before a key rotation carry the index under the retired key (design.md 3.5)
    candidates = sorted(
        {
            (representation.agent_id, index)
            for representation in event.representations
            for client in representation.clients
            if client.email
            for index in repo.email_indexes(client.email)
        }
    )
    for lead in await repo.leads_of_clients_for_update(candidates):
        if completes_lead(lead, agent_id=lead.agent_id, closed_at=event.closed_at):
            await _complete_lead(uow, repo, lead, event.transaction_id)


@dispatcher.on(ERASURE_REQUESTED)
async def erasure_requested(event: ErasureRequested, uow: UnitOfWork) -> None:
    """Erase the client's contact from their leads, what people wrote about them from the
    leads' removal requests, and the proof documents uploaded for those leads (design.md 1.8);
    the leads and requests stay for the record."""
    repo = repository(uow)
    await repo.index_phones_of_older_leads()
    leads = await repo.erase_clients(event.client_indexes, uow.now)
    await repo.erase_proof_documents(leads, uow.now)
    for request in await repo.requests_of_leads(leads):
        redacted = without_client_text(request)
        if redacted != request:
            await repo.save_texts(redacted)
            await repo.rewrite_event_notes(events_with_a_person_s_note(request), ERASED_TEXT)


async def ask_for_removal(
    uow: UnitOfWork,
    *,
    agent_id: str,
    lead_id: str,
    reason: str,
    notes: str,
    client_ever_responded: bool | None,
    proof: Proof | None,
) -> RemovalRequest:
    chosen = parse_reason(reason)
    repo = repository(uow)
    lead = await _own_lead(repo, lead_id, agent_id)
    if proof is not None and proof.document_id is not None:
        document = await repo.proof_document(proof.document_id)
        check_attachable(document, lead_id=lead_id, agent_id=agent_id)
    outcome = request_removal(
        lead,
        removal_id=str(uuid.uuid4()),
        agent_id=agent_id,
        reason=chosen,
        notes=notes,
        now=uow.now,
        client_ever_responded=client_ever_responded,
        proof=proof,
    )
    await repo.add_request(outcome.request)
    await _record(uow, repo, lead, outcome)
    return outcome.request


async def upload_proof(
    uow: UnitOfWork,
    *,
    agent_id: str,
    lead_id: str,
    content: bytes,
    filename: str | None,
    max_bytes: int,
) -> ProofDocument:
    """Store a proof document for one of the agent's own leads; a removal request cites it."""
    repo = repository(uow)
    lead = await _own_lead(repo, lead_id, agent_id)
    accepted = accept_proof(content, filename, max_bytes=max_bytes)
    return await repo.add_proof_document(str(uuid.uuid4()), lead, accepted, uow.now)


async def decide_removal(
    uow: UnitOfWork,
    *,
    removal_id: str,
    coordinator_id: str,
    decision: Decision,
    note: str,
    handed_to: str | None = None,
) -> RemovalRequest:
    """A coordinator's decision. An approved hand-off makes the client the named agent's open
    lead in this same transaction (not by consuming our own `lead.handoff.requested.v1`): the
    client's contact is here, sealed, and may not travel on a topic, and the approval and the
    new lead commit together, so the client is never nobody's lead. The event still goes out
    (outbox) for everyone else."""
    repo = repository(uow)
    request = await repo.request(removal_id, for_update=True)
    if request is None:
        raise NotFoundError(f"no removal request {removal_id}")
    lead = await repo.lead_for_update(request.lead_id, request.agent_id)
    if lead is None:  # a foreign key ties every request to its lead
        raise LookupError(f"removal request {removal_id} has no lead")
    outcome = decide(
        request,
        decision=decision,
        coordinator_id=coordinator_id,
        note=note,
        now=uow.now,
        handed_to=handed_to,
    )
    await repo.update_request(outcome.request)
    await _record(uow, repo, lead, outcome)
    if outcome.handed_lead is not None:
        await repo.hand_over(outcome.handed_lead, uow.now)
    return outcome.request


async def note_client_response(
    uow: UnitOfWork, *, agent_id: str, lead_id: str, responded_at: datetime | None
) -> Lead:
    repo = repository(uow)
    lead = await _own_lead(repo, lead_id, agent_id)
    updated = record_client_response(lead, responded_at=responded_at or uow.now, now=uow.now)
    await repo.set_client_responded_at(updated, uow.now)
    return updated


async def _own_lead(repo: RemovalsRepository, lead_id: str, agent_id: str) -> Lead:
    lead = await repo.lead_for_update(lead_id, agent_id)
    if lead is not None:
        return lead
    if await repo.lead_exists(lead_id):
        raise RemovalRejected("not_your_lead", f"lead {lead_id} is not assigned to you")
    raise NotFoundError(f"no lead {lead_id}")


async def _complete_lead(
    uow: UnitOfWork, repo: RemovalsRepository, lead: Lead, transaction_id: str
) -> None:
    """The client closed with the agent: a success, so a pending removal is withdrawn."""
    if lead.status is LeadStatus.REMOVAL_PENDING:
        pending = await repo.pending_request_for(lead)
        if pending is not None:
            outcome = close_by_transaction(pending, transaction_id=transaction_id, now=uow.now)
            await repo.update_request(outcome.request)
            await _record(uow, repo, lead, outcome)
    await repo.set_lead_status(lead, LeadStatus.COMPLETED, uow.now, transaction_id=transaction_id)


async def _record(uow: UnitOfWork, repo: RemovalsRepository, lead: Lead, outcome: Outcome) -> None:
    """Save the steps taken and the lead's new status, and publish one event per step."""
    await repo.add_steps(outcome.request.removal_id, outcome.new_steps)
    await repo.set_lead_status(lead, outcome.lead_status, uow.now)
    for step in outcome.new_steps:
        event_type, event = event_for(outcome.request, step)
        await uow.publish(event_type, event, ce_id=event_id(outcome.request, step))
