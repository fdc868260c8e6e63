"""Keys can rotate (docs/design.md 3.5): the service restarted with a new PII key and token
pepper, the old ones retired, still reads, finds and unsubscribes what it wrote before; the
rekey job leaves nothing under the old key, and the old key can then go."""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import pytest

from devtools.smtp_sink import MailSink, body_text
from services.invitations.app import MIGRATIONS, create_app
from services.invitations.rekey import SEALED
from services.invitations.settings import InvitationsSettings
from shared.clock import FixedClock
from shared.contracts import TRANSACTION_CLOSED
from shared.crypto import PiiCipher, key_id
from shared.runtime import rekey_service
from shared.topics import Topic
from tests.conftest import running_app
from tests.integration.invitations.conftest import (
    PEPPER,
    SECRET,
    START,
    unique,
)
from tests.integration.invitations.test_erasure import as_ops
from tests.integration.invitations.test_invitation_flows import of_agent, rostered_agent, to
from tests.support.builders import transaction_closed
from tests.support.kafka import dispatcher_of, start_group_at_end

pytestmark = pytest.mark.integration

UNSUBSCRIBE = re.compile(r"(/unsubscribe\?token=[A-Za-z0-9_-]+)")
KEY_A, KEY_B = "rotation-test-pii-key-a", "rotation-test-pii-key-b"
SEALED_COLUMNS = {
    "invitations": "contact_sealed",
    "representations": "clients_sealed",
    "mail_outbox": "sealed",
}


async def _key_ids(conn: asyncpg.Connection) -> set[bytes]:
    """The version byte and key id of every sealed value in the schema."""
    found: set[bytes] = set()
    for table, column in SEALED_COLUMNS.items():
        rows = await conn.fetch(
            f"SELECT DISTINCT substring({column} FROM 1 FOR 5) AS head FROM {table} "
            f"WHERE {column} IS NOT NULL"
        )
        found |= {bytes(row["head"]) for row in rows}
    return found


async def test_data_written_under_a_retired_key_stays_usable_and_rekey_moves_it(
    kafka_bootstrap: str,
    database_url: str,
    smtp_sink: MailSink,
    publish_event: Any,
    topic_reader: Any,
    mail: MailSink,
) -> None:
    group_id = f"test-invitations-{uuid.uuid4().hex[:8]}"
    under_a = InvitationsSettings(
        environment="test",
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=database_url,
        database_schema=f"t_{uuid.uuid4().hex[:10]}_invitations",
        kafka_group_id=group_id,
        smtp_port=smtp_sink.port,
        outbox_poll_seconds=0.05,
        scheduler_interval_seconds=0.1,
        auth_secret=SECRET,
        token_pepper=PEPPER,
        pii_key=KEY_A,
    )
    rotating = under_a.model_copy(
        update={
            "pii_key": KEY_B,
            "pii_keys_retired": KEY_A,
            "token_pepper": "rotation-test-pepper-b",
            "token_peppers_retired": PEPPER,
        }
    )
    rotated = rotating.model_copy(update={"pii_keys_retired": ""})
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    invitations = await topic_reader(Topic.INVITATIONS_EVENTS)
    erasures = await topic_reader(Topic.CLIENT_ERASURES)
    leaving, staying = f"{unique('lee')}@example.com", f"{unique('eve')}@example.com"

    app_a = create_app(under_a, clock=FixedClock(START))
    await start_group_at_end(kafka_bootstrap, group_id, dispatcher_of(app_a).subscribed)

    # under key A: a closing with two clients, both invited and mailed
    async with running_app(app_a):
        agent_id = await rostered_agent(publish_event, participation)
        await publish_event(
            TRANSACTION_CLOSED,
            transaction_closed(
                unique("T"),
                agent_id,
                [{"name": "Lee", "email": leaving}, {"name": "Eve", "email": staying}],
            ),
        )
        first = await mail.wait_for(to(leaving), timeout=20)
        await mail.wait_for(to(staying), timeout=20)
        for _ in range(2):
            await invitations.wait_for(of_agent(agent_id, "invitation.issued.v1"))

    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'SET search_path TO "{under_a.db_schema}"')
        assert await _key_ids(conn) <= {b"\x02" + key_id(KEY_A)}
        assert await conn.fetchval("SELECT count(*) FROM invitations") == 2

        # key B and a new pepper, A and the old pepper retired: the old mail's unsubscribe link
        # still finds its invitation, and the address is suppressed under both keys
        async with running_app(create_app(rotating, clock=FixedClock(START))) as client:
            link = UNSUBSCRIBE.search(body_text(first))
            assert link is not None
            unsubscribed = await client.post(link.group(1))
            assert unsubscribed.status_code == 200, unsubscribed.text
            cancelled = await invitations.wait_for(of_agent(agent_id, "invitation.cancelled.v1"))
            assert cancelled.data["reason"] == "unsubscribed"
        suppressed = {r["email_index"] for r in await conn.fetch("SELECT * FROM suppressions")}
        assert suppressed == set(PiiCipher(KEY_B, [KEY_A]).blind_indexes(leaving))

        # the job: nothing left under A, the indexes recomputed under B; rerunning does nothing
        rewritten = await rekey_service(rotating, MIGRATIONS, SEALED)
        assert rewritten["invitations.contact_sealed"] == 2
        assert rewritten["representations.clients_sealed"] == 1
        assert await _key_ids(conn) == {b"\x02" + key_id(KEY_B)}
        assert await conn.fetchval(
            "SELECT client_index FROM invitations WHERE contact_sealed IS NOT NULL "
            "AND status = 'open'"
        ) == PiiCipher(KEY_B).blind_index(staying)
        assert sum((await rekey_service(rotating, MIGRATIONS, SEALED)).values()) == 0

        # A gone: an erasure by email still finds the client written under A
        async with running_app(create_app(rotated, clock=FixedClock(START))) as client:
            erased = await client.post(
                "/api/v1/erasures", json={"email": staying}, headers=as_ops()
            )
            assert erased.status_code == 200, erased.text
            assert erased.json()["cancelled"] == 1
            told = await erasures.wait_for(
                lambda e: e.data["erasure_id"] == erased.json()["erasure_id"]
            )
            assert told.data["client_indexes"] == [PiiCipher(KEY_B).blind_index(staying)]
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{under_a.db_schema}" CASCADE')
        await conn.close()
