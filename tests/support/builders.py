"""The MLS, CRM, removals and participation events tests publish or hand to handlers, built in one place:
a test names only what it is about and takes the rest from the defaults here."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from shared.contracts.leads import LeadAssigned
from shared.contracts.mls import AgentUpserted, TransactionClosed
from shared.contracts.participation import (
    ParticipationChanged,
    ParticipationMode,
    ParticipationReason,
)
from shared.contracts.removals import RemovalCompleted, RemovalReason

START = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
"""The instant the integration tests' fixed clocks start at."""

Client = dict[str, str | None]


def client(name: str = "Pat Doe", email: str | None = None, phone: str | None = None) -> Client:
    """A client as an MLS closing lists them."""
    return {"name": name, "email": email, "phone": phone}


def agent_upserted(
    agent_id: str,
    *,
    name: str = "Jo Agent",
    email: str | None = None,
    office_id: str = "O-1",
    member_since: date = date(2025, 1, 15),
    active: bool = True,
) -> AgentUpserted:
    """The roster's entry for the agent (by default active, mailed at <agent id>@realty.example)."""
    return AgentUpserted(
        agent_id=agent_id,
        name=name,
        email=email or f"{agent_id.lower()}@realty.example",
        office_id=office_id,
        member_since=member_since,
        active=active,
    )


def transaction_closed(
    transaction_id: str,
    agent_id: str,
    clients: list[Client],
    *,
    closed_at: datetime = START,
    side: str = "buyer",
    kind: str = "sale",
    mls_number: str = "MLS123",
    street: str = "12 Elm Rd",
    city: str = "Houston",
    postcode: str = "77002",
) -> TransactionClosed:
    """A closing with one representation: the agent's side and its clients."""
    return TransactionClosed.model_validate(
        {
            "transaction_id": transaction_id,
            "mls_number": mls_number,
            "kind": kind,
            "closed_at": closed_at.isoformat(),
            "property": {"street": street, "city": city, "postcode": postcode},
            "representations": [{"agent_id": agent_id, "side": side, "clients": clients}],
        }
    )


def lead_assigned(
    lead_id: str,
    agent_id: str,
    email: str | None,
    *,
    assigned_at: datetime = START,
    phone: str | None = None,
    name: str = "Sam Lee",
) -> LeadAssigned:
    """Lead `lead_id` of `agent_id`, a client preferring email."""
    return LeadAssigned.model_validate(
        {
            "lead_id": lead_id,
            "agent_id": agent_id,
            "client": {"name": name, "email": email, "phone": phone, "preferred_contact": "email"},
            "assigned_at": assigned_at.isoformat(),
        }
    )


def participation_changed(
    agent_id: str,
    mode: ParticipationMode = ParticipationMode.OPT_IN_PUBLIC,
    *,
    changed_at: datetime = START,
    reason: ParticipationReason = ParticipationReason.AGENT_CHOICE,
) -> ParticipationChanged:
    """The agent's participation as the invitations service announces it (their choice)."""
    return ParticipationChanged(agent_id=agent_id, mode=mode, reason=reason, changed_at=changed_at)


def removal_completed(
    lead_id: str,
    agent_id: str,
    reason: RemovalReason,
    *,
    completed_at: datetime = START,
    handed_to_agent_id: str | None = None,
) -> RemovalCompleted:
    """The removals service ended the lead `lead_id` of `agent_id` for `reason` (a new removal)."""
    return RemovalCompleted(
        removal_id=str(uuid.uuid4()),
        lead_id=lead_id,
        agent_id=agent_id,
        reason=reason,
        referral_fee_owed=True,
        completed_at=completed_at,
        handed_to_agent_id=handed_to_agent_id,
    )
