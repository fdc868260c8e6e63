"""Survey invitations: internal events from invitations to reviews.

Only hashes of the PIN and token travel; client contact data never does.
"""

from __future__ import annotations

from pydantic import Field

from shared.contracts.base import Contract, UtcDatetime
from shared.contracts.removals import RemovalReason
from shared.contracts.reviews import Channel, SurveyKind


class InvitationIssued(Contract):
    """`invitation.issued.v1` on `invitations.events` (key invitation_id)."""

    invitation_id: str = Field(max_length=64, description="Invitation id.")
    agent_id: str = Field(max_length=64, description="The agent to be rated.")
    transaction_id: str | None = Field(
        default=None, max_length=64, description="Transaction (transaction surveys)."
    )
    lead_id: str | None = Field(default=None, max_length=64, description="Lead (removal surveys).")
    survey: SurveyKind = Field(description="transaction or removal.")
    removal_reason: RemovalReason | None = Field(default=None, description="For removal surveys.")
    channel: Channel = Field(description="email (PIN + link) or phone (staff enter answers).")
    pin_hash: str | None = Field(
        default=None, max_length=128, description="Keyed hash of the PIN (email only)."
    )
    token_hash: str | None = Field(
        default=None, max_length=128, description="Keyed hash of the link token."
    )
    issued_at: UtcDatetime = Field(description="When issued.")
    expires_at: UtcDatetime = Field(description="After this the PIN is refused (410).")
    trust_flags: list[str] = Field(
        default_factory=list,
        max_length=8,
        description="Why a review on this invitation goes to a moderator before anything else: "
        "the agent entered a contact that agents already gave for other agents' clients "
        "(`contact_reused_across_agents`). Empty for most invitations; unknown values are "
        "read as flags too.",
        examples=[["contact_reused_across_agents"]],
    )


class InvitationClosed(Contract):
    """`invitation.expired.v1` / `invitation.cancelled.v1` on `invitations.events`."""

    invitation_id: str = Field(max_length=64, description="Invitation id.")
    agent_id: str = Field(max_length=64, description="The agent.")
    at: UtcDatetime = Field(description="When it expired or was cancelled.")
    reason: str = Field(max_length=200, description="expired, unsubscribed, erased, ...")
