"""The public event contracts (docs/design.md §2) and the internal events between services.

`EVENTS` maps each (topic, CloudEvents type) to its payload model and the field used as the key.
A type may travel on more than one topic: `review.published.v1` is on the internal moderated log
`reviews.published` and on the public stream `reviews.public`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from shared.contracts.erasures import ErasureRequested
from shared.contracts.invitations import InvitationClosed, InvitationIssued
from shared.contracts.leads import LeadAssigned
from shared.contracts.mls import AgentUpserted, TransactionClosed
from shared.contracts.participation import ParticipationChanged
from shared.contracts.ratings import RatingUpdated
from shared.contracts.removals import (
    HandoffRequested,
    RemovalCompleted,
    RemovalDecided,
    RemovalRequested,
)
from shared.contracts.reviews import ReviewPublished, ReviewWithdrawn, SurveyAnswered
from shared.topics import Topic


@dataclass(frozen=True)
class EventType:
    ce_type: str
    topic: str
    model: type[BaseModel]
    key_field: str


def event_type_of(topic: str, ce_type: str) -> EventType | None:
    """The contract of a record of `ce_type` read from `topic`; None when it is not one."""
    return EVENTS.get((topic, ce_type))


AGENT_UPSERTED = EventType("mls.agent.upserted.v1", Topic.MLS_AGENTS, AgentUpserted, "agent_id")
TRANSACTION_CLOSED = EventType(
    "mls.transaction.closed.v1", Topic.MLS_TRANSACTIONS, TransactionClosed, "transaction_id"
)
LEAD_ASSIGNED = EventType("lead.assigned.v1", Topic.LEADS_ASSIGNED, LeadAssigned, "lead_id")
PARTICIPATION_CHANGED = EventType(
    "agent.participation.changed.v1", Topic.AGENTS_PARTICIPATION, ParticipationChanged, "agent_id"
)
REVIEW_PUBLISHED = EventType(
    "review.published.v1", Topic.REVIEWS_PUBLISHED, ReviewPublished, "agent_id"
)
REVIEW_WITHDRAWN = EventType(
    "review.withdrawn.v1", Topic.REVIEWS_PUBLISHED, ReviewWithdrawn, "agent_id"
)
PUBLIC_REVIEW_PUBLISHED = EventType(
    "review.published.v1", Topic.REVIEWS_PUBLIC, ReviewPublished, "agent_id"
)
PUBLIC_REVIEW_WITHDRAWN = EventType(
    "review.withdrawn.v1", Topic.REVIEWS_PUBLIC, ReviewWithdrawn, "agent_id"
)
SURVEY_ANSWERED = EventType(
    "survey.answered.v1", Topic.REVIEWS_EVENTS, SurveyAnswered, "invitation_id"
)
RATING_UPDATED = EventType("rating.updated.v1", Topic.RATINGS, RatingUpdated, "agent_id")
INVITATION_ISSUED = EventType(
    "invitation.issued.v1", Topic.INVITATIONS_EVENTS, InvitationIssued, "invitation_id"
)
INVITATION_EXPIRED = EventType(
    "invitation.expired.v1", Topic.INVITATIONS_EVENTS, InvitationClosed, "invitation_id"
)
INVITATION_CANCELLED = EventType(
    "invitation.cancelled.v1", Topic.INVITATIONS_EVENTS, InvitationClosed, "invitation_id"
)
REMOVAL_REQUESTED = EventType(
    "removal.requested.v1", Topic.REMOVALS_EVENTS, RemovalRequested, "lead_id"
)
REMOVAL_APPROVED = EventType(
    "removal.approved.v1", Topic.REMOVALS_EVENTS, RemovalDecided, "lead_id"
)
REMOVAL_DENIED = EventType("removal.denied.v1", Topic.REMOVALS_EVENTS, RemovalDecided, "lead_id")
REMOVAL_COMPLETED = EventType(
    "removal.completed.v1", Topic.REMOVALS_EVENTS, RemovalCompleted, "lead_id"
)
HANDOFF_REQUESTED = EventType(
    "lead.handoff.requested.v1", Topic.REMOVALS_EVENTS, HandoffRequested, "lead_id"
)
ERASURE_REQUESTED = EventType(
    "client.erasure.requested.v1", Topic.CLIENT_ERASURES, ErasureRequested, "erasure_id"
)

EVENTS: dict[tuple[str, str], EventType] = {
    (event.topic, event.ce_type): event
    for event in (
        AGENT_UPSERTED,
        TRANSACTION_CLOSED,
        LEAD_ASSIGNED,
        PARTICIPATION_CHANGED,
        REVIEW_PUBLISHED,
        REVIEW_WITHDRAWN,
        PUBLIC_REVIEW_PUBLISHED,
        PUBLIC_REVIEW_WITHDRAWN,
        SURVEY_ANSWERED,
        RATING_UPDATED,
        INVITATION_ISSUED,
        INVITATION_EXPIRED,
        INVITATION_CANCELLED,
        REMOVAL_REQUESTED,
        REMOVAL_APPROVED,
        REMOVAL_DENIED,
        REMOVAL_COMPLETED,
        HANDOFF_REQUESTED,
        ERASURE_REQUESTED,
    )
}
