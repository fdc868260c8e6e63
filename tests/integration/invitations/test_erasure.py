"""Erasure on request: the invitations schema keeps nothing readable of the client, and every
other service is told through `clients.erasures`, by keyed hashes and invitation ids only."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from devtools.smtp_sink import MailSink
from shared.auth import Role, issue_token
from shared.contracts import LEAD_ASSIGNED, REMOVAL_COMPLETED, TRANSACTION_CLOSED
from shared.contracts.removals import RemovalReason
from shared.crypto import PiiCipher
from shared.topics import Topic
from tests.integration.invitations.conftest import (
    SECRET,
    START,
    Service,
    unique,
)
from tests.integration.invitations.test_invitation_flows import of_agent, rostered_agent, to
from tests.support.builders import lead_assigned, removal_completed, transaction_closed
from tests.support.schema_dump import dump_schema, mentions

pytestmark = pytest.mark.integration


def as_ops() -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, 'OPS-1', Role.OPS)}"}


async def test_an_erased_client_is_readable_nowhere_in_the_schema_and_every_service_is_told(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    invitations = await topic_reader(Topic.INVITATIONS_EVENTS)
    erasures = await topic_reader(Topic.CLIENT_ERASURES)
    agent_id = await rostered_agent(publish_event, participation)
    name = f"Quinn Erasable {uuid.uuid4().hex[:8]}"
    email = f"{unique('quinn')}@example.com"
    phone = f"+1 713 {random.randint(100, 999)} {random.randint(1000, 9999)}"
    kept = f"{unique('kim')}@example.com"
    # a transaction shared with another client, one where the MLS had only the phone (a phone
    # survey), and a lead whose removal sends the removal survey
    await publish_event(
        TRANSACTION_CLOSED,
        transaction_closed(
            unique("T"),
            agent_id,
            [{"name": name, "email": email, "phone": phone}, {"name": "Kim", "email": kept}],
        ),
    )
    await publish_event(
        TRANSACTION_CLOSED,
        transaction_closed(unique("T"), agent_id, [{"name": name, "email": None, "phone": phone}]),
    )
    lead_id = unique("L")
    await publish_event(
        LEAD_ASSIGNED,
        lead_assigned(
            lead_id, agent_id, email, phone=phone, name=name, assigned_at=START - timedelta(days=9)
        ),
    )
    await publish_event(
        REMOVAL_COMPLETED,
        removal_completed(lead_id, agent_id, RemovalReason.CHANGED_MIND),
    )
    issued: set[str] = set()
    while len(issued) < 4:  # the client's three, and Kim's
        event = await invitations.wait_for(
            lambda e: (
                of_agent(agent_id, "invitation.issued.v1")(e)
                and e.data["invitation_id"] not in issued
            )
        )
        issued.add(event.data["invitation_id"])
    await mail.wait_for(to(email, "You stopped your search"), timeout=20)

    cipher = PiiCipher(service.settings.pii_key)
    conn = await asyncpg.connect(service.settings.database_url)
    try:
        await conn.execute(f'SET search_path TO "{service.settings.db_schema}"')
        before = await dump_schema(conn, service.settings.db_schema, cipher)
        for text in (name, email, phone):
            assert mentions(before, text), f"the dump cannot see {text!r}: it would prove nothing"
        kims = await conn.fetchval(
            "SELECT invitation_id FROM invitations WHERE client_index = $1",
            cipher.blind_index(kept),
        )

        erased = await service.client.post(
            "/api/v1/erasures", json={"email": email, "phone": phone}, headers=as_ops()
        )
        assert erased.status_code == 200, erased.text
        assert erased.json()["cancelled"] == 3  # the invitation, the phone task, the removal survey
        after = await dump_schema(conn, service.settings.db_schema, cipher)
        assert mentions(after, name, email, phone) == []
        assert mentions({"representations": after["representations"]}, kept)

        told = await erasures.wait_for(
            lambda e: e.data["erasure_id"] == erased.json()["erasure_id"]
        )
        assert told.type == "client.erasure.requested.v1"
        assert told.key == told.data["erasure_id"]
        assert told.data["client_indexes"] == sorted(
            {cipher.blind_index(email), cipher.blind_index(phone)}
        )
        assert set(told.data["invitation_ids"]) == issued - {kims}
        record = next(r for r in erasures.records if r.key.decode() == told.key)
        raw = record.value.decode() + repr(record.headers)
        assert not [text for text in (name, email, phone) if text.lower() in raw.lower()]

        again = await service.client.post(
            "/api/v1/erasures", json={"email": email, "phone": phone}, headers=as_ops()
        )
        assert again.status_code == 200, again.text
        assert again.json()["cancelled"] == 0
        retold = await erasures.wait_for(
            lambda e: e.data["erasure_id"] == again.json()["erasure_id"]
        )
        assert set(retold.data["invitation_ids"]) == issued - {kims}
        assert mentions(await dump_schema(conn, service.settings.db_schema, cipher), email) == []
    finally:
        await conn.close()
