"""Handlers and repository on real PostgreSQL: state, recorded steps and outbox rows."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from services.removals import handlers
from services.removals.domain.model import (
    Decision,
    LeadStatus,
    Proof,
    RemovalRejected,
    RemovalRequest,
)
from shared.contracts.erasures import ErasureRequested
from shared.contracts.mls import TransactionClosed
from shared.crypto import PiiCipher
from shared.uow import UnitOfWork, UnitOfWorkFactory
from tests.integration.removals.conftest import START, lead_assigned, unique
from tests.support.builders import client, transaction_closed

pytestmark = pytest.mark.integration

NOTES = "The client stopped searching after their job moved to another state."


def closed(
    transaction_id: str, agent_id: str, email: str, days_after_start: int
) -> TransactionClosed:
    return transaction_closed(
        transaction_id,
        agent_id,
        [client("Sam Lee", email.upper())],
        closed_at=START + timedelta(days=days_after_start),
        mls_number="MLS-1",
    )


async def outbox(units: UnitOfWorkFactory) -> list[tuple[str, dict[str, object]]]:
    async with units.pool.acquire() as conn:
        rows = await conn.fetch("SELECT ce_type, payload FROM outbox ORDER BY id")
    return [(row["ce_type"], json.loads(bytes(row["payload"]))) for row in rows]


async def lead_status(units: UnitOfWorkFactory, lead_id: str, agent_id: str) -> str:
    async with units.pool.acquire() as conn:
        status: str = await conn.fetchval(
            "SELECT status FROM leads WHERE lead_id = $1 AND agent_id = $2", lead_id, agent_id
        )
    return status


async def ask(
    uow: UnitOfWork, lead_id: str, reason: str, *, agent_id: str = "A-1"
) -> RemovalRequest:
    """The agent asks to remove the lead for `reason` (the client once responded; no proof)."""
    return await handlers.ask_for_removal(
        uow,
        agent_id=agent_id,
        lead_id=lead_id,
        reason=reason,
        notes=NOTES,
        client_ever_responded=True,
        proof=None,
    )


async def test_client_contact_is_stored_encrypted(units: UnitOfWorkFactory) -> None:
    lead_id, email = unique("L"), f"{unique('sam')}@example.com"
    async with units() as uow:
        await handlers.lead_assigned(lead_assigned(lead_id, "A-1", email), uow)
    async with units.pool.acquire() as conn:
        sealed = bytes(await conn.fetchval("SELECT client_sealed FROM leads"))
    assert email.encode() not in sealed
    assert b"Sam Lee" not in sealed


async def test_an_immediate_removal_records_each_step_and_publishes_requested_then_completed(
    units: UnitOfWorkFactory,
) -> None:
    lead_id = unique("L")
    async with units() as uow:
        await handlers.lead_assigned(lead_assigned(lead_id, "A-1", "sam@example.com"), uow)
    async with units() as uow:
        request = await ask(uow, lead_id, "lease_or_rental")
    assert await lead_status(units, lead_id, "A-1") == "removed"
    events = await outbox(units)
    assert [ce_type for ce_type, _ in events] == ["removal.requested.v1", "removal.completed.v1"]
    assert events[1][1]["referral_fee_owed"] is False
    async with units() as uow:
        stored = await handlers.repository(uow).request(request.removal_id)
    assert stored is not None
    assert [(s.kind.value, s.actor) for s in stored.steps] == [
        ("requested", "A-1"),
        ("completed", "system"),
    ]


async def test_a_refused_request_leaves_nothing_behind(units: UnitOfWorkFactory) -> None:
    lead_id = unique("L")
    async with units() as uow:
        await handlers.lead_assigned(lead_assigned(lead_id, "A-1", "sam@example.com"), uow)
    async with units() as uow:
        await handlers.note_client_response(
            uow, agent_id="A-1", lead_id=lead_id, responded_at=START - timedelta(days=2)
        )
    with pytest.raises(RemovalRejected) as caught:
        async with units() as uow:
            await handlers.ask_for_removal(
                uow,
                agent_id="A-1",
                lead_id=lead_id,
                reason="no_contact",
                notes=NOTES,
                client_ever_responded=None,
                proof=None,
            )
    assert "lost_touch" in caught.value.message
    assert await lead_status(units, lead_id, "A-1") == "open"
    assert await outbox(units) == []


async def test_prior_client_proof_is_kept_for_the_coordinator(units: UnitOfWorkFactory) -> None:
    lead_id = unique("L")
    async with units() as uow:
        await handlers.lead_assigned(lead_assigned(lead_id, "A-1", "sam@example.com"), uow)
    async with units() as uow:
        request = await handlers.ask_for_removal(
            uow,
            agent_id="A-1",
            lead_id=lead_id,
            reason="prior_client",
            notes=NOTES,
            client_ever_responded=True,
            proof=Proof(document_ref="doc-1", reference="4 Oak St, 2023"),
        )
    async with units() as uow:
        decided = await handlers.decide_removal(
            uow,
            removal_id=request.removal_id,
            coordinator_id="C-1",
            decision=Decision.APPROVE,
            note="closing statement matches the MLS record",
        )
    assert decided.proof == Proof(document_ref="doc-1", reference="4 Oak St, 2023")
    assert [s.kind.value for s in decided.steps] == ["requested", "approved", "completed"]
    assert await lead_status(units, lead_id, "A-1") == "removed"


async def test_a_closing_with_the_same_agent_completes_the_lead_and_withdraws_a_pending_removal(
    units: UnitOfWorkFactory,
) -> None:
    lead_id, email = unique("L"), f"{unique('sam')}@example.com"
    async with units() as uow:
        await handlers.lead_assigned(lead_assigned(lead_id, "A-1", email), uow)
        await handlers.lead_assigned(lead_assigned(lead_id, "A-2", email), uow)
    async with units() as uow:
        await ask(uow, lead_id, "bad_fit")
    async with units() as uow:
        await handlers.transaction_closed(closed(unique("T"), "A-1", email, 10), uow)
    assert await lead_status(units, lead_id, "A-1") == "completed"
    assert await lead_status(units, lead_id, "A-2") == "open"
    events = await outbox(units)
    assert [ce_type for ce_type, _ in events] == ["removal.requested.v1", "removal.denied.v1"]
    assert events[1][1]["decided_by"] == "system"
    with pytest.raises(RemovalRejected) as caught:
        async with units() as uow:
            await ask(uow, lead_id, "changed_mind")
    assert caught.value.code == "lead_completed"


async def test_a_closing_seen_before_the_lead_still_completes_it(units: UnitOfWorkFactory) -> None:
    lead_id, email = unique("L"), f"{unique('sam')}@example.com"
    async with units() as uow:
        await handlers.transaction_closed(closed(unique("T"), "A-1", email, 3), uow)
    async with units() as uow:
        await handlers.lead_assigned(lead_assigned(lead_id, "A-1", email), uow)
    assert await lead_status(units, lead_id, "A-1") == "completed"


async def test_an_older_closing_makes_a_prior_client_not_a_completed_lead(
    units: UnitOfWorkFactory,
) -> None:
    lead_id, email = unique("L"), f"{unique('sam')}@example.com"
    async with units() as uow:
        await handlers.transaction_closed(closed(unique("T"), "A-1", email, -400), uow)
        await handlers.lead_assigned(lead_assigned(lead_id, "A-1", email), uow)
    assert await lead_status(units, lead_id, "A-1") == LeadStatus.OPEN.value


async def test_a_replayed_assignment_does_not_reopen_a_removed_lead(
    units: UnitOfWorkFactory,
) -> None:
    lead_id = unique("L")
    event = lead_assigned(lead_id, "A-1", "sam@example.com")
    async with units() as uow:
        await handlers.lead_assigned(event, uow)
    async with units() as uow:
        await ask(uow, lead_id, "out_of_area")
    async with units() as uow:
        await handlers.lead_assigned(event, uow)
    assert await lead_status(units, lead_id, "A-1") == "removed"


async def handed_off(
    units: UnitOfWorkFactory, lead_id: str, from_agent: str, to_agent: str
) -> None:
    async with units() as uow:
        request = await ask(uow, lead_id, "active_handoff", agent_id=from_agent)
    async with units() as uow:
        await handlers.decide_removal(
            uow,
            removal_id=request.removal_id,
            coordinator_id="C-1",
            decision=Decision.APPROVE,
            note="A-2 works the client's new area",
            handed_to=to_agent,
        )


async def test_a_handed_over_client_is_the_new_agents_lead_and_completes_with_them(
    units: UnitOfWorkFactory,
) -> None:
    """The new agent's lead carries the client's contact (copied sealed, never through a
    topic), so a later closing with the new agent completes it."""
    lead_id, email = unique("L"), f"{unique('sam')}@example.com"
    async with units() as uow:
        await handlers.lead_assigned(lead_assigned(lead_id, "A-1", email), uow)
    await handed_off(units, lead_id, "A-1", "A-2")
    assert await lead_status(units, lead_id, "A-1") == "removed"
    async with units() as uow:
        (record,) = [
            r
            for r in await handlers.repository(uow).leads_of("A-2", None, 10)
            if r.lead.lead_id == lead_id
        ]
    assert record.lead.status is LeadStatus.OPEN and record.lead.handed_from == "A-1"
    assert record.client is not None and record.client.email == email
    assert record.lead.assigned_at == START
    events = [payload for ce_type, payload in await outbox(units)]
    assert {"to_agent_id": "A-2", "from_agent_id": "A-1"}.items() <= events[2].items()
    assert events[3]["handed_to_agent_id"] == "A-2"

    async with units() as uow:
        await handlers.transaction_closed(closed(unique("T"), "A-2", email, 3), uow)
    assert await lead_status(units, lead_id, "A-2") == "completed"


async def test_a_client_handed_back_to_an_earlier_agent_is_theirs_again(
    units: UnitOfWorkFactory,
) -> None:
    lead_id, email = unique("L"), f"{unique('sam')}@example.com"
    async with units() as uow:
        await handlers.lead_assigned(lead_assigned(lead_id, "A-1", email), uow)
    await handed_off(units, lead_id, "A-1", "A-2")
    await handed_off(units, lead_id, "A-2", "A-1")
    assert await lead_status(units, lead_id, "A-1") == "open"
    assert await lead_status(units, lead_id, "A-2") == "removed"


async def test_an_erasure_by_phone_reaches_the_new_agent_s_copy_of_a_handed_over_client(
    units: UnitOfWorkFactory,
) -> None:
    lead_id = unique("L")
    async with units() as uow:
        await handlers.lead_assigned(lead_assigned(lead_id, "A-1", None), uow)
    await handed_off(units, lead_id, "A-1", "A-2")
    async with units() as uow:
        phone = PiiCipher("test-key").blind_index("+1 713 555 0100")
        await handlers.erasure_requested(
            ErasureRequested(
                erasure_id=unique("E"),
                requested_at=START,
                client_indexes=[phone],
                invitation_ids=[],
            ),
            uow,
        )
        left = await uow.conn.fetch(
            "SELECT agent_id FROM leads WHERE lead_id = $1 AND client_sealed IS NOT NULL", lead_id
        )
    assert not left, f"still holding the client: {[r['agent_id'] for r in left]}"
