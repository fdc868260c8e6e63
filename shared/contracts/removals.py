"""Removal of client relationships (leads): internal events between removals and invitations."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from shared.contracts.base import Contract, UtcDatetime


class RemovalReason(StrEnum):
    """The eleven reasons an agent may give (docs/design.md §1.6, Redfin partner-agent rules)."""

    NO_CONTACT = "no_contact"
    LOST_TOUCH = "lost_touch"
    CHANGED_MIND = "changed_mind"
    OUT_OF_AREA = "out_of_area"
    ACTIVE_HANDOFF = "active_handoff"
    BAD_FIT = "bad_fit"
    CANT_QUALIFY = "cant_qualify"
    WORKING_WITH_OTHER_AGENT = "working_with_other_agent"
    LEASE_OR_RENTAL = "lease_or_rental"
    PRIOR_CLIENT = "prior_client"
    SEEKING_LISTING_AGENT = "seeking_listing_agent"


class RemovalRequested(Contract):
    """`removal.requested.v1` on `removals.events` (key lead_id)."""

    removal_id: str = Field(max_length=64, description="Removal request id.")
    lead_id: str = Field(max_length=64, description="The lead to remove.")
    agent_id: str = Field(max_length=64, description="Requesting agent.")
    reason: RemovalReason = Field(description="Stated reason.")
    needs_approval: bool = Field(description="True when a coordinator must decide.")
    requested_at: UtcDatetime = Field(description="When requested.")


class RemovalDecided(Contract):
    """`removal.approved.v1` / `removal.denied.v1` on `removals.events` (key lead_id)."""

    removal_id: str = Field(max_length=64, description="Removal request id.")
    lead_id: str = Field(max_length=64, description="The lead.")
    agent_id: str = Field(max_length=64, description="Requesting agent.")
    reason: RemovalReason = Field(description="Stated reason.")
    decided_by: str = Field(max_length=200, description="Coordinator id.")
    note: str = Field(max_length=2000, description="Coordinator's note.")
    decided_at: UtcDatetime = Field(description="When decided.")


class RemovalCompleted(Contract):
    """`removal.completed.v1` on `removals.events` (key lead_id): the client gets the survey."""

    removal_id: str = Field(max_length=64, description="Removal request id.")
    lead_id: str = Field(
        max_length=64, description="The removed lead; contact data stays in the services."
    )
    agent_id: str = Field(max_length=64, description="The agent the client leaves.")
    reason: RemovalReason = Field(description="Chooses the survey template.")
    referral_fee_owed: bool = Field(description="False for lease_or_rental.")
    completed_at: UtcDatetime = Field(description="When completed.")
    handed_to_agent_id: str | None = Field(
        default=None,
        max_length=64,
        description="For an approved active_handoff or bad_fit: the agent who takes the client "
        "over (the survey tells the client so). Null for every other removal.",
        examples=["A-2"],
    )


class HandoffRequested(Contract):
    """`lead.handoff.requested.v1` on `removals.events` (key lead_id): reassign to another agent."""

    removal_id: str = Field(max_length=64, description="Removal request id.")
    lead_id: str = Field(max_length=64, description="The lead to reassign.")
    from_agent_id: str = Field(max_length=64, description="The agent giving the lead up.")
    to_agent_id: str | None = Field(
        default=None,
        max_length=64,
        description="The agent the coordinator named to take the client over; the lead is "
        "theirs (open) from the same instant. Null only in events from before it was named.",
        examples=["A-2"],
    )
    reason: RemovalReason = Field(description="active_handoff or bad_fit.")
    requested_at: UtcDatetime = Field(description="When approved.")
