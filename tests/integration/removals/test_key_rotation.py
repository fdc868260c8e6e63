"""Keys can rotate (docs/design.md 3.5): leads and closings written under a retired PII key
still meet the ones written under the new key, and rekey moves the leads and proof documents
to the new key."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.removals import handlers
from services.removals.rekey import SEALED
from services.removals.repository import RemovalsRepository
from shared.crypto import PiiCipher, key_id
from shared.rekey import rekey
from shared.uow import UnitOfWorkFactory
from tests.integration.removals.conftest import lead_assigned, unique
from tests.integration.removals.test_removal_store import closed, lead_status

pytestmark = pytest.mark.integration

PROOF = b"%PDF-1.7\n%%EOF\n"


async def test_leads_and_closings_under_a_retired_key_still_complete_and_rekey_moves_them(
    units: UnitOfWorkFactory,
) -> None:
    old_key = "test-key"  # the `units` fixture's
    assert units.cipher.blind_index("x") == PiiCipher(old_key).blind_index("x")
    rotated = replace(units, cipher=PiiCipher("rotated-test-key", [old_key]))
    early, late = unique("L"), unique("L")
    early_email, late_email = f"{unique('sam')}@example.com", f"{unique('kim')}@example.com"
    async with units() as uow:  # before the rotation: a lead, and a closing seen before its lead
        await handlers.lead_assigned(lead_assigned(early, "A-1", early_email), uow)
        await handlers.transaction_closed(closed(unique("T"), "A-1", late_email, 3), uow)
        document = await handlers.upload_proof(
            uow, agent_id="A-1", lead_id=early, content=PROOF, filename=None, max_bytes=1024
        )

    async with rotated() as uow:
        await handlers.transaction_closed(closed(unique("T"), "A-1", early_email, 3), uow)
        await handlers.lead_assigned(lead_assigned(late, "A-1", late_email), uow)
    assert await lead_status(units, early, "A-1") == "completed"
    assert await lead_status(units, late, "A-1") == "completed"

    done = await rekey(units.pool, rotated.cipher, SEALED, progress=lambda _: None)
    # the late lead was written under the new key
    assert done == {"leads.client_sealed": 1, "proof_documents.content_sealed": 1}
    async with units.pool.acquire() as conn:
        rows = await conn.fetch("SELECT client_sealed, email_index FROM leads ORDER BY lead_id")
    assert {bytes(row["client_sealed"])[:5] for row in rows} == {
        b"\x02" + key_id("rotated-test-key")
    }
    assert {row["email_index"] for row in rows} == {
        rotated.cipher.blind_index(early_email),
        rotated.cipher.blind_index(late_email),
    }
    async with units.pool.acquire() as conn:
        moved = RemovalsRepository(conn, PiiCipher("rotated-test-key"))  # the old key gone
        assert await moved.proof_content(document.document_id) == PROOF
    assert await rekey(units.pool, rotated.cipher, SEALED, progress=lambda _: None) == {
        "leads.client_sealed": 0,
        "proof_documents.content_sealed": 0,
    }
