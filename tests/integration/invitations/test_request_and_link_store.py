"""What the schema keeps of per-client compliance and of every unsubscribe link mailed."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from services.invitations.domain.model import (
    UNLISTED,
    ClientContact,
    Policy,
    answer_request,
    contact_request,
)
from services.invitations.repository import InvitationsRepository
from shared.uow import UnitOfWorkFactory
from tests.integration.invitations.conftest import START
from tests.integration.invitations.test_invitation_store import invitation, units

pytestmark = pytest.mark.integration

__all__ = ["units"]  # the fixture, shared with the store's other tests


async def test_a_request_keeps_the_clients_still_missing(units: UnitOfWorkFactory) -> None:
    clients = [ClientContact("Pat"), ClientContact("Ann", "ann@example.com"), ClientContact("Kim")]
    request = contact_request("T-1", "A-1", START, Policy(), now=START, clients=clients)
    async with units() as uow:
        repo = InvitationsRepository(uow.conn, uow.cipher)
        assert await repo.add_contact_request(request)
        assert await repo.contact_request("T-1", "A-1") == request
        answered = answer_request(request, [1])
        await repo.save_request(answered, START + timedelta(days=1))
        assert await repo.contact_request("T-1", "A-1") == answered
        assert [r.missing for r in await repo.open_requests_of("A-1")] == [(3,)]
        satisfied = answer_request(answered, [3])
        await repo.save_request(satisfied, START + timedelta(days=2))
        assert await repo.contact_request("T-1", "A-1") == satisfied
        assert await repo.open_requests_of("A-1") == []
        assert await uow.conn.fetchval(
            "SELECT resolved_at FROM contact_requests WHERE transaction_id = 'T-1'"
        ) == START + timedelta(days=2)


async def test_a_request_made_before_per_client_compliance_takes_any_contact(
    units: UnitOfWorkFactory,
) -> None:
    async with units() as uow:
        await uow.conn.execute(
            "INSERT INTO contact_requests (transaction_id, agent_id, closed_at, deadline) "
            "VALUES ('T-0', 'A-1', $1, $2)",
            START,
            START + timedelta(days=14),
        )
        older = await InvitationsRepository(uow.conn, uow.cipher).contact_request("T-0", "A-1")
    assert older is not None and older.missing == (UNLISTED,)


async def test_every_unsubscribe_link_finds_its_invitation(units: UnitOfWorkFactory) -> None:
    async with units() as uow:
        repo = InvitationsRepository(uow.conn, uow.cipher)
        first = invitation(repo, "pat@example.com")
        await repo.add_invitations([first])
        later = [uuid.uuid4().hex, uuid.uuid4().hex]
        for unsubscribe_hash in later:
            await repo.add_unsubscribe_link(unsubscribe_hash, first.invitation_id, START)
        assert first.unsubscribe_hash is not None
        for unsubscribe_hash in [first.unsubscribe_hash, *later]:
            found = await repo.invitation_by_unsubscribe(["other", unsubscribe_hash])
            assert found is not None and found.invitation.invitation_id == first.invitation_id
        assert await repo.invitation_by_unsubscribe([uuid.uuid4().hex]) is None
