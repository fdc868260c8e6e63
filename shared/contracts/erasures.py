"""Erasure of a client's data in every service (internal topic `clients.erasures`)."""

from __future__ import annotations

from pydantic import Field

from shared.contracts.base import Contract, UtcDatetime


class ErasureRequested(Contract):
    """`client.erasure.requested.v1` on `clients.erasures` (internal, key erasure_id).

    Published by invitations when operations erase a client, after it erased its own copy. It
    names the client only by keyed hashes and ids, never by contact data: every service that
    holds client data finds its rows from these and erases them, idempotently."""

    erasure_id: str = Field(min_length=1, max_length=64, description="Erasure request id.")
    requested_at: UtcDatetime = Field(description="When operations asked for the erasure.")
    client_indexes: list[str] = Field(
        max_length=10,
        description="Blind indexes (keyed HMAC under PII_KEY) of the client's email and/or phone.",
    )
    invitation_ids: list[str] = Field(
        max_length=10_000,
        description="Every survey invitation the client had (transaction and removal surveys): "
        "their reviews lose display name and comment.",
    )
