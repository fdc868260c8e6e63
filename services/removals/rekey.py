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


SEALED = (SealedColumn("leads", ("lead_id", "agent_id"), "client_sealed", _lead),)
