"""The events each step of a removal request publishes on `removals.events`."""

from __future__ import annotations

from pydantic import BaseModel

from services.removals.domain.model import (
    RemovalRequest,
    Step,
    StepKind,
    written_by_a_person,
)
from shared.contracts import (
    HANDOFF_REQUESTED,
    REMOVAL_APPROVED,
    REMOVAL_COMPLETED,
    REMOVAL_DENIED,
    REMOVAL_REQUESTED,
    EventType,
)
from shared.contracts.removals import (
    HandoffRequested,
    RemovalCompleted,
    RemovalDecided,
    RemovalRequested,
)

PUBLISHED = (
    REMOVAL_REQUESTED,
    REMOVAL_APPROVED,
    REMOVAL_DENIED,
    REMOVAL_COMPLETED,
    HANDOFF_REQUESTED,
)
"""Every event type a removal's steps publish."""


def event_for(request: RemovalRequest, step: Step) -> tuple[EventType, BaseModel]:
    """The event announcing `step` of `request` (never carrying the client's contact data)."""
    if step.kind is StepKind.REQUESTED:
        return REMOVAL_REQUESTED, RemovalRequested(
            removal_id=request.removal_id,
            lead_id=request.lead_id,
            agent_id=request.agent_id,
            reason=request.reason,
            needs_approval=request.needs_approval,
            requested_at=step.at,
        )
    if step.kind in (StepKind.APPROVED, StepKind.DENIED):
        return (REMOVAL_APPROVED if step.kind is StepKind.APPROVED else REMOVAL_DENIED), (
            RemovalDecided(
                removal_id=request.removal_id,
                lead_id=request.lead_id,
                agent_id=request.agent_id,
                reason=request.reason,
                decided_by=step.actor,
                note=step.note,
                decided_at=step.at,
            )
        )
    if step.kind is StepKind.HANDOFF_REQUESTED:
        return HANDOFF_REQUESTED, HandoffRequested(
            removal_id=request.removal_id,
            lead_id=request.lead_id,
            from_agent_id=request.agent_id,
            to_agent_id=request.handed_to,
            reason=request.reason,
            requested_at=step.at,
        )
    return REMOVAL_COMPLETED, RemovalCompleted(
        removal_id=request.removal_id,
        lead_id=request.lead_id,
        agent_id=request.agent_id,
        reason=request.reason,
        referral_fee_owed=request.referral_fee_owed,
        completed_at=step.at,
        handed_to_agent_id=request.handed_to,
    )


def event_id(request: RemovalRequest, step: Step) -> str:
    """Deterministic `ce_id`: a retried transaction cannot publish a step twice."""
    return f"removal:{request.removal_id}:{step.kind.value}"


def events_with_a_person_s_note(request: RemovalRequest) -> list[str]:
    """The `ce_id`s of the request's decision events, which carry the coordinator's note."""
    return [
        event_id(request, step)
        for step in request.steps
        if step.kind in (StepKind.APPROVED, StepKind.DENIED) and written_by_a_person(step)
    ]
