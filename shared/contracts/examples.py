"""One example event per CloudEvents type: the AsyncAPI document's message examples.

Built as contract instances, so an example that stops matching its contract fails at import
(and `tests/unit/shared/test_asyncapi.py` checks there is one for every type).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from pydantic import BaseModel

from shared.contracts.erasures import ErasureRequested
from shared.contracts.invitations import InvitationClosed, InvitationIssued
from shared.contracts.leads import LeadAssigned, LeadClient, PreferredContact
from shared.contracts.mls import (
    AgentUpserted,
    Client,
    Property,
    Representation,
    Side,
    TransactionClosed,
    TransactionKind,
)
from shared.contracts.participation import (
    ParticipationChanged,
    ParticipationMode,
    ParticipationReason,
)
from shared.contracts.ratings import RatingUpdated, Status, Visibility
from shared.contracts.removals import (
    HandoffRequested,
    RemovalCompleted,
    RemovalDecided,
    RemovalReason,
    RemovalRequested,
)
from shared.contracts.reviews import (
    Channel,
    ReviewPublished,
    ReviewWithdrawn,
    Scores,
    SurveyAnswered,
    SurveyKind,
)

_CLOSED = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
_SUBMITTED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)

EXAMPLES: dict[str, BaseModel] = {
    "mls.agent.upserted.v1": AgentUpserted(
        agent_id="A-1",
        name="Jo Agent",
        email="jo@realty.example",
        office_id="O-1",
        member_since=date(2025, 1, 15),
        active=True,
    ),
    "mls.transaction.closed.v1": TransactionClosed(
        transaction_id="T-1",
        mls_number="MLS123",
        kind=TransactionKind.SALE,
        closed_at=_CLOSED,
        property=Property(street="12 Elm Rd", city="Houston", postcode="77002"),
        representations=[
            Representation(
                agent_id="A-1",
                side=Side.SELLER,
                clients=[Client(name="Pat Doe", email="pat@example.com", phone=None)],
            )
        ],
    ),
    "lead.assigned.v1": LeadAssigned(
        lead_id="L-1",
        agent_id="A-1",
        client=LeadClient(
            name="Sam Lee",
            email="sam@example.com",
            phone="+1 713 555 0100",
            preferred_contact=PreferredContact.EMAIL,
        ),
        assigned_at=datetime(2026, 10, 2, 14, 0, tzinfo=UTC),
    ),
    "agent.participation.changed.v1": ParticipationChanged(
        agent_id="A-1",
        mode=ParticipationMode.OPT_IN_PUBLIC,
        reason=ParticipationReason.AGENT_CHOICE,
        changed_at=datetime(2026, 11, 1, 8, 0, tzinfo=UTC),
    ),
    "review.published.v1": ReviewPublished(
        review_id="R-1",
        agent_id="A-1",
        transaction_id="T-1",
        survey=SurveyKind.TRANSACTION,
        removal_reason=None,
        channel=Channel.EMAIL,
        submitted_at=_SUBMITTED,
        published_at=_SUBMITTED,
        scores=Scores(
            communication=5, friendliness=4, professionalism=5, area_knowledge=3, overall=4
        ),
        positive=True,
        comment="Jo kept us informed at every step.",
        display_name=None,
        agent_response=None,
    ),
    "review.withdrawn.v1": ReviewWithdrawn(
        review_id="R-1",
        agent_id="A-1",
        withdrawn_at=datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
        reason="agent_not_public",
    ),
    "survey.answered.v1": SurveyAnswered(
        invitation_id="I-1",
        agent_id="A-1",
        review_id="R-1",
        channel=Channel.EMAIL,
        answered_at=_SUBMITTED,
    ),
    "rating.updated.v1": RatingUpdated(
        agent_id="A-1",
        as_of=_SUBMITTED,
        visibility=Visibility.PUBLIC,
        policy_version="2026-11.1",
        stars=3,
        status=Status.SILVER,
        status_since=datetime(2026, 10, 5, 12, 0, tzinfo=UTC),
        next_review_at=datetime(2027, 1, 5, 12, 0, tzinfo=UTC),
        positive_reviews_3m=5,
        positive_reviews_6m=7,
        reviews_total=9,
        category_averages={
            "communication": 4.5,
            "friendliness": 4.2,
            "professionalism": 4.6,
            "area_knowledge": 3.9,
            "overall": 4.3,
        },
    ),
    "invitation.issued.v1": InvitationIssued(
        invitation_id="I-1",
        agent_id="A-1",
        transaction_id="T-1",
        survey=SurveyKind.TRANSACTION,
        channel=Channel.EMAIL,
        pin_hash="4f0c…",
        token_hash="9b1e…",  # noqa: S106 (an example hash, not a secret)
        issued_at=_CLOSED,
        expires_at=datetime(2026, 12, 20, 15, 0, tzinfo=UTC),
    ),
    "invitation.expired.v1": InvitationClosed(
        invitation_id="I-2",
        agent_id="A-1",
        at=datetime(2026, 12, 20, 15, 0, tzinfo=UTC),
        reason="expired",
    ),
    "invitation.cancelled.v1": InvitationClosed(
        invitation_id="I-3",
        agent_id="A-1",
        at=datetime(2026, 11, 21, 9, 0, tzinfo=UTC),
        reason="unsubscribed",
    ),
    "removal.requested.v1": RemovalRequested(
        removal_id="RM-1",
        lead_id="L-1",
        agent_id="A-1",
        reason=RemovalReason.ACTIVE_HANDOFF,
        needs_approval=True,
        requested_at=datetime(2026, 10, 20, 11, 0, tzinfo=UTC),
    ),
    "removal.approved.v1": RemovalDecided(
        removal_id="RM-1",
        lead_id="L-1",
        agent_id="A-1",
        reason=RemovalReason.ACTIVE_HANDOFF,
        decided_by="C-1",
        note="Agent A-2 covers the client's area.",
        decided_at=datetime(2026, 10, 21, 9, 0, tzinfo=UTC),
    ),
    "removal.denied.v1": RemovalDecided(
        removal_id="RM-2",
        lead_id="L-2",
        agent_id="A-1",
        reason=RemovalReason.PRIOR_CLIENT,
        decided_by="C-1",
        note="The proof does not name the client.",
        decided_at=datetime(2026, 10, 21, 9, 5, tzinfo=UTC),
    ),
    "removal.completed.v1": RemovalCompleted(
        removal_id="RM-1",
        lead_id="L-1",
        agent_id="A-1",
        reason=RemovalReason.ACTIVE_HANDOFF,
        referral_fee_owed=True,
        completed_at=datetime(2026, 10, 21, 9, 0, tzinfo=UTC),
        handed_to_agent_id="A-2",
    ),
    "lead.handoff.requested.v1": HandoffRequested(
        removal_id="RM-1",
        lead_id="L-1",
        from_agent_id="A-1",
        to_agent_id="A-2",
        reason=RemovalReason.ACTIVE_HANDOFF,
        requested_at=datetime(2026, 10, 21, 9, 0, tzinfo=UTC),
    ),
    "client.erasure.requested.v1": ErasureRequested(
        erasure_id="E-1",
        requested_at=datetime(2026, 12, 2, 16, 0, tzinfo=UTC),
        client_indexes=["hmac-sha256:3c9a…"],
        invitation_ids=["I-1"],
    ),
}
"""CloudEvents type -> an example of its data (the same instance wherever the type travels)."""
