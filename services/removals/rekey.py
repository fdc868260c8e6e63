"""What `python -m services.removals rekey` seals again under the current PII key, and the
blind indexes it recomputes (docs/design.md 3.5)."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.contracts.leads import LeadClient
from shared.crypto import PiiCipher
from shared.rekey import SealedColumn


async def _lead(
    _conn: asyncpg.Connection, cipher: PiiCipher, plaintext: str, _row: asyncpg.Record
) -> dict[str, Any]:
    """As `RemovalsRepository.save_assignment`."""
    client = LeadClient.model_validate_json(plaintext)
    return {
        "email_index": cipher.blind_index(client.email) if client.email else None,
        "phone_index": cipher.blind_index(client.phone) if client.phone else None,
        "phone_indexed": True,
    }


async def _no_index(
    _conn: asyncpg.Connection, _cipher: PiiCipher, _plaintext: str, _row: asyncpg.Record
) -> dict[str, Any]:
    """A proof document has no index beside it."""
    return {}


SEALED = (
    SealedColumn("leads", ("lead_id", "agent_id"), "client_sealed", _lead),
    # up to 5 MiB each: a few per transaction, not the default 200
    SealedColumn("proof_documents", ("document_id",), "content_sealed", _no_index, batch=8),
)
