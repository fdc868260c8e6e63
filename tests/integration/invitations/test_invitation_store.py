"""The schema itself refuses a second invitation for the same client of a transaction."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest

from services.invitations import handlers
from services.invitations.app import MIGRATIONS
from services.invitations.domain.model import ClientContact
from services.invitations.repository import InvitationsRepository, NewInvitation
from shared.clock import FixedClock
from shared.crypto import PiiCipher
from shared.db import apply_migrations, create_pool
from shared.mailer import RenderedMail
from shared.uow import UnitOfWorkFactory
from tests.integration.invitations.conftest import START

pytestmark = pytest.mark.integration


@pytest.fixture
async def units(database_url: str) -> AsyncIterator[UnitOfWorkFactory]:
    schema = f"t_{uuid.uuid4().hex[:10]}_invitations"
    pool = await create_pool(database_url, schema)
    await apply_migrations(pool, schema, MIGRATIONS)
    try:
        yield UnitOfWorkFactory(pool, FixedClock(START), "/tests", PiiCipher("test-key"))
    finally:
        await pool.close()


def invitation(repo: InvitationsRepository, email: str, agent_id: str = "A-1") -> NewInvitation:
    return NewInvitation(
        invitation_id=str(uuid.uuid4()),
        agent_id=agent_id,
        survey="transaction",
        channel="email",
        client=ClientContact("Pat", email),
        client_index=repo.index(email),
        issued_at=START,
        expires_at=START + timedelta(days=30),
        transaction_id="T-1",
        pin_hash=uuid.uuid4().hex,
        token_hash=uuid.uuid4().hex,
        unsubscribe_hash=uuid.uuid4().hex,
    )


async def test_one_invitation_per_transaction_agent_and_client_email(
    units: UnitOfWorkFactory,
) -> None:
    async with units() as uow:
        repo = InvitationsRepository(uow.conn, uow.cipher)

        async def added(new: NewInvitation) -> bool:
            return new.invitation_id in await repo.add_invitations([new])

        assert await added(invitation(repo, "pat@example.com"))
        assert not await added(invitation(repo, "PAT@example.com "))
        assert await added(invitation(repo, "pat@example.com", agent_id="A-2"))
        assert await added(replace(invitation(repo, "pat@example.com"), transaction_id="T-2"))


async def test_a_batch_inserts_each_client_once_and_says_which(units: UnitOfWorkFactory) -> None:
    async with units() as uow:
        repo = InvitationsRepository(uow.conn, uow.cipher)
        earlier = invitation(repo, "lee@example.com")
        await repo.add_invitations([earlier])
        batch = [
            invitation(repo, "pat@example.com"),
            invitation(repo, "Pat@Example.com"),  # the same client twice in one batch
            invitation(repo, "lee@example.com"),  # invited before
            invitation(repo, "kim@example.com", agent_id="A-2"),
        ]
        inserted = await repo.add_invitations(batch)
        assert inserted == {batch[0].invitation_id, batch[3].invitation_id}
        assert await uow.conn.fetchval("SELECT count(*) FROM invitations") == 3


async def test_contact_data_is_stored_encrypted(units: UnitOfWorkFactory) -> None:
    async with units() as uow:
        repo = InvitationsRepository(uow.conn, uow.cipher)
        await repo.add_invitations([invitation(repo, "secret.client@example.com")])
        dump = await uow.conn.fetchval("SELECT string_agg(t::text, '') FROM invitations t")
        assert "secret.client" not in dump


async def test_erasure_drops_mail_not_yet_sent_to_the_client_and_errors_quoting_them(
    units: UnitOfWorkFactory,
) -> None:
    erased, other = "erase.me@example.com", "keep.me@example.com"
    mail = RenderedMail(subject="Your survey", text="Hello")
    async with units() as uow:
        for to, key in ((erased, "sent"), (erased, "due"), (other, "other")):
            await uow.send_mail(to=to, mail=mail, dedupe_key=key)
    async with units() as uow:
        await uow.conn.execute(
            "UPDATE mail_outbox SET sent_at = now(), sealed = NULL, last_error = $1 "
            "WHERE dedupe_key = 'sent'",
            f"550 <{erased}> mailbox busy",
        )
    async with units() as uow:
        erasure = await handlers.erase_client(uow, erased, None)
    async with units() as uow:
        rows = await uow.conn.fetch(
            "SELECT dedupe_key, last_error FROM mail_outbox ORDER BY dedupe_key"
        )
    assert [(row["dedupe_key"], row["last_error"]) for row in rows] == [
        ("other", None),
        ("sent", None),
    ]
    assert erasure.mails_dropped == 1
