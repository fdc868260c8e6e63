"""Leads assigned to agents by the lead/CRM system."""

from __future__ import annotations

from enum import StrEnum

from pydantic import EmailStr, Field

from shared.contracts.base import Contract, UtcDatetime


class PreferredContact(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    TEXT = "text"


class LeadClient(Contract):
    name: str = Field(
        min_length=1, max_length=200, description="Client's name.", examples=["Sam Lee"]
    )
    email: EmailStr | None = Field(default=None, description="Client email.")
    phone: str | None = Field(default=None, max_length=40, description="Client phone.")
    preferred_contact: PreferredContact = Field(description="How the client prefers to be reached.")


class LeadAssigned(Contract):
    """`lead.assigned.v1` on `leads.assigned` (key lead_id)."""

    lead_id: str = Field(min_length=1, max_length=64, description="Lead id.", examples=["L-1"])
    agent_id: str = Field(
        min_length=1, max_length=64, description="Agent given the lead.", examples=["A-1"]
    )
    client: LeadClient = Field(description="The client (PII: never republished).")
    assigned_at: UtcDatetime = Field(description="When the lead was assigned.")
