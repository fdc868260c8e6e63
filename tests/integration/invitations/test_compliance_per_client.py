"""Unsubscribe links that keep working (AgentTracker), on the real stack with the service's
clock moved."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from devtools.smtp_sink import MailSink, body_text
from shared.contracts import TRANSACTION_CLOSED
from shared.topics import Topic
from tests.integration.invitations.conftest import (
    START,
    Service,
    transaction_closed,
    unique,
)
from tests.integration.invitations.test_invitation_flows import of_agent, rostered_agent, to

pytestmark = pytest.mark.integration

UNSUBSCRIBE = re.compile(r"(/unsubscribe\?token=[A-Za-z0-9_-]+)")


async def test_the_first_mail_s_unsubscribe_link_still_works_after_the_reminder(
    service: Service, publish_event: Any, topic_reader: Any, mail: MailSink
) -> None:
    service.clock.set(START)
    participation = await topic_reader(Topic.AGENTS_PARTICIPATION)
    invitations = await topic_reader(Topic.INVITATIONS_EVENTS)
    agent_id = await rostered_agent(publish_event, participation)
    email = f"{unique('pat')}@example.com"
    await publish_event(
        TRANSACTION_CLOSED,
        transaction_closed(unique("T"), agent_id, [{"name": "Pat", "email": email}]),
    )
    first = await mail.wait_for(to(email), timeout=20)
    in_body = UNSUBSCRIBE.search(body_text(first))
    in_header = UNSUBSCRIBE.search(str(first["List-Unsubscribe"]))
    assert in_body is not None and in_header is not None

    service.clock.set(START + timedelta(days=7, hours=1))
    reminder = await mail.wait_for(to(email, "Reminder"), timeout=10)
    in_reminder = UNSUBSCRIBE.search(str(reminder["List-Unsubscribe"]))
    assert in_reminder is not None and in_reminder.group(1) != in_header.group(1)

    assert (await service.client.get(in_body.group(1))).status_code == 200
    one_click = await service.client.post(
        in_header.group(1),
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert one_click.status_code == 200, one_click.text
    cancelled = await invitations.wait_for(of_agent(agent_id, "invitation.cancelled.v1"))
    assert cancelled.data["reason"] == "unsubscribed"
    # clicked again later, from either mail: still a working link
    assert (await service.client.post(in_body.group(1))).status_code == 200
    assert (await service.client.post(in_reminder.group(1))).status_code == 200
    service.clock.set(START)
