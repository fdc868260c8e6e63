"""A closing from an MLS that added fields the contract does not define yet is processed, not
dead-lettered (SYSTEM.md §4: producers may add optional fields; docs/design.md 2.2)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from devtools.smtp_sink import MailSink, body_text
from shared.cloudevents import encode
from shared.contracts import AGENT_UPSERTED, TRANSACTION_CLOSED
from shared.topics import Topic, dlq
from tests.integration.invitations.conftest import (
    Service,
    unique,
)
from tests.support.builders import agent_upserted, transaction_closed

pytestmark = pytest.mark.integration

PIN = re.compile(r"Your PIN: ([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})")


async def test_a_closing_with_a_list_price_invites_its_client_and_is_not_dead_lettered(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    invitations = await topic_reader(Topic.INVITATIONS_EVENTS)
    dead_letters = await topic_reader(dlq(Topic.MLS_TRANSACTIONS))
    agent_id = unique("A")
    await publish_event(AGENT_UPSERTED, agent_upserted(agent_id))
    await participation.wait_for(lambda e: e.data.get("agent_id") == agent_id)
    email = f"{unique('pat')}@example.com"
    transaction_id = unique("T")
    closing = transaction_closed(transaction_id, agent_id, [{"name": "Pat Doe", "email": email}])
    data = closing.model_dump(mode="json")
    data["list_price"] = 450_000
    data["property"]["unit"] = "4B"
    data["representations"][0]["clients"][0]["preferred_language"] = "es"
    record = encode(TRANSACTION_CLOSED.ce_type, data, source="/mls/next", key=transaction_id)

    await publish_event.raw(
        Topic.MLS_TRANSACTIONS, record.value, key=record.key, headers=record.headers
    )

    assert PIN.search(body_text(await mail.wait_for(lambda m: email in str(m["To"]), timeout=20)))
    issued = await invitations.wait_for(
        lambda e: (
            e.type == "invitation.issued.v1" and e.data.get("transaction_id") == transaction_id
        )
    )
    assert issued.data["agent_id"] == agent_id
    # an unreadable record with the same key lands behind the closing on its partition: once it
    # is dead-lettered, the closing was consumed, and it is not on the DLQ
    await publish_event.raw(Topic.MLS_TRANSACTIONS, b"not json", key=record.key)
    marker = await dead_letters.wait_for_record(
        lambda r: r.key == record.key and dict(r.headers).get("dlq_consumer") == b"invitations",
        timeout=20,
    )
    assert marker.value == b"not json"
    assert [r.value for r in dead_letters.records if r.key == record.key] == [b"not json"]
