"""Fixtures for the invitations service on the real stack: one service per module, its clock
fixed and moved by the tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from devtools.smtp_sink import MailSink
from services.invitations.app import create_app
from services.invitations.settings import InvitationsSettings
from shared.auth import Role, issue_token
from shared.clock import FixedClock
from tests.conftest import running_app
from tests.support.kafka import dispatcher_of, start_group_at_end

START = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
SECRET = "invitations-test-secret-of-at-least-32-bytes"
PEPPER = "invitations-test-pepper"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Service:
    client: httpx.AsyncClient
    clock: FixedClock
    settings: InvitationsSettings


@pytest.fixture(scope="module")
async def service(
    kafka_bootstrap: str, database_url: str, smtp_sink: MailSink
) -> AsyncIterator[Service]:
    clock = FixedClock(START)
    group_id = f"test-invitations-{uuid.uuid4().hex[:8]}"
    settings = InvitationsSettings(
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
    )
    app = create_app(settings, clock=clock)
    await start_group_at_end(kafka_bootstrap, group_id, dispatcher_of(app).subscribed)
    async with running_app(app) as client:
        yield Service(client, clock, settings)


def as_agent(agent_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, agent_id, Role.AGENT)}"}
