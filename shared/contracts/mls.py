"""Events the MLS publishes: the agent roster and closed transactions."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import EmailStr, Field

from shared.contracts.base import Contract, UtcDatetime


class AgentUpserted(Contract):
    """`mls.agent.upserted.v1` on `mls.agents` (compacted, key agent_id): the roster entry."""

    agent_id: str = Field(
        min_length=1, max_length=64, description="MLS agent id.", examples=["A-1"]
    )
    name: str = Field(
        min_length=1, max_length=200, description="Display name.", examples=["Jo Agent"]
    )
    email: EmailStr = Field(
        description="Where the agent is emailed.", examples=["jo@realty.example"]
    )
    office_id: str = Field(
        min_length=1, max_length=64, description="Office/brokerage id.", examples=["O-1"]
    )
    member_since: date = Field(
        description="Membership start; gold needs 6 months.", examples=["2025-01-15"]
    )
    active: bool = Field(description="False when the agent has left the MLS.", examples=[True])


class TransactionKind(StrEnum):
    SALE = "sale"
    LEASE = "lease"


class Side(StrEnum):
    SELLER = "seller"
    BUYER = "buyer"
    LANDLORD = "landlord"
    TENANT = "tenant"


class Property(Contract):
    street: str = Field(
        min_length=1, max_length=200, description="Street address.", examples=["12 Elm Rd"]
    )
    city: str = Field(min_length=1, max_length=100, description="City.", examples=["Houston"])
    postcode: str = Field(
        min_length=1, max_length=20, description="Postal code.", examples=["77002"]
    )


class Client(Contract):
    name: str = Field(
        min_length=1, max_length=200, description="Client's name.", examples=["Pat Doe"]
    )
    email: EmailStr | None = Field(default=None, description="Survey address; may be missing.")
    phone: str | None = Field(
        default=None, max_length=40, description="Phone, for a phone survey.", examples=[None]
    )


class Representation(Contract):
    agent_id: str = Field(
        min_length=1, max_length=64, description="Representing agent.", examples=["A-1"]
    )
    side: Side = Field(description="Which party the agent represented.", examples=["seller"])
    clients: list[Client] = Field(
        default_factory=list,
        max_length=20,
        description="The agent's clients; may be empty: then the agent is asked for them.",
    )


class TransactionClosed(Contract):
    """`mls.transaction.closed.v1` on `mls.transactions` (key transaction_id)."""

    transaction_id: str = Field(
        min_length=1, max_length=64, description="MLS transaction id.", examples=["T-1"]
    )
    mls_number: str = Field(
        min_length=1, max_length=64, description="Listing number.", examples=["MLS123"]
    )
    kind: TransactionKind = Field(description="Sale or lease.", examples=["sale"])
    closed_at: UtcDatetime = Field(
        description="Closing instant.", examples=["2026-11-20T15:00:00Z"]
    )
    property: Property = Field(description="The property that changed hands.")
    representations: list[Representation] = Field(
        min_length=1, max_length=10, description="Each agent and the clients they represented."
    )
