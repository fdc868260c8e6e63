"""What `python -m services.invitations rekey` seals again under the current PII key, and the
blind indexes it recomputes (docs/design.md 3.5)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from shared.crypto import PiiCipher
from shared.rekey import SealedColumn


def _client_indexes(cipher: PiiCipher, clients: list[dict[str, Any]]) -> list[str]:
    """As `InvitationsRepository.client_indexes`: every email and phone, sorted."""
    return sorted({cipher.blind_index(v) for c in clients for v in (c["email"], c["phone"]) if v})


async def _representation(
    _conn: asyncpg.Connection, cipher: PiiCipher, plaintext: str, _row: asyncpg.Record
) -> dict[str, Any]:
    return {"client_indexes": _client_indexes(cipher, json.loads(plaintext))}


async def _lead(
    _conn: asyncpg.Connection, cipher: PiiCipher, plaintext: str, _row: asyncpg.Record
) -> dict[str, Any]:
    return {"client_indexes": _client_indexes(cipher, [json.loads(plaintext)])}


async def _invitation(
    conn: asyncpg.Connection, cipher: PiiCipher, plaintext: str, row: asyncpg.Record
) -> dict[str, Any]:
    """The index of the contact the invitation reaches (its email, or its phone for a phone
    survey); a suppression under the old index gets its twin under the new one, so that the
    address stays unsubscribed once the retired key is gone."""
    client = json.loads(plaintext)
    index = cipher.blind_index(client["email" if row["channel"] == "email" else "phone"] or "")
    await conn.execute(
        """INSERT INTO suppressions (email_index, suppressed_at)
           SELECT $2, suppressed_at FROM suppressions WHERE email_index = $1
           ON CONFLICT DO NOTHING""",
        row["client_index"],
        index,
    )
    return {"client_index": index}


SEALED = (
    SealedColumn(
        "representations", ("transaction_id", "agent_id"), "clients_sealed", _representation
    ),
    SealedColumn("leads", ("lead_id", "agent_id"), "client_sealed", _lead),
    SealedColumn(
        "invitations",
        ("invitation_id",),
        "contact_sealed",
        _invitation,
        extra=("channel", "client_index"),
    ),
)
