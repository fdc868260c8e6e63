"""Fixtures for the reviews service on the real stack: one service per module, its clock fixed
and moved by the tests, invitations announced on `invitations.events` as the invitations
service would (only the PIN and token hashes travel)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devtools.smtp_sink import MailSink
from services.reviews.app import create_app
from services.reviews.settings import ReviewsSettings
from shared.auth import Role, issue_token
from shared.clock import FixedClock
from shared.contracts import AGENT_UPSERTED, INVITATION_ISSUED
from shared.contracts.invitations import InvitationIssued
from shared.contracts.removals import RemovalReason
from shared.contracts.reviews import Channel, SurveyKind
from shared.crypto import SecretHasher, new_pin
from tests.conftest import running_app
from tests.support.builders import agent_upserted
from tests.support.kafka import EventPublisher, dispatcher_of, start_group_at_end
from tests.support.waiting import until_stored

START = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
SECRET = "reviews-test-secret-of-at-least-32-bytes!"
PEPPER = "reviews-test-pepper"
GOOD = {
    "communication": 5,
    "friendliness": 4,
    "professionalism": 5,
    "area_knowledge": 4,
    "overall": 5,
}
POOR = {**GOOD, "overall": 2, "communication": 1}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def bearer(sub: str, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    clock: FixedClock
    settings: ReviewsSettings


def reviews_settings(
    kafka_bootstrap: str, database_url: str, smtp_port: int, **overrides: Any
) -> ReviewsSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "database_url": database_url,
        "database_schema": f"t_{uuid.uuid4().hex[:10]}_reviews",
        "kafka_group_id": f"test-reviews-{uuid.uuid4().hex[:8]}",
        "smtp_port": smtp_port,
        "outbox_poll_seconds": 0.05,
        "scheduler_interval_seconds": 0.1,
        "auth_secret": SECRET,
        "token_pepper": PEPPER,
    }
    values.update(overrides)
    return ReviewsSettings(**values)


@pytest.fixture(scope="module")
async def service(
    kafka_bootstrap: str, database_url: str, smtp_sink: MailSink
) -> AsyncIterator[Service]:
    clock = FixedClock(START)
    settings = reviews_settings(kafka_bootstrap, database_url, smtp_sink.port)
    app = create_app(settings, clock=clock)
    await start_group_at_end(kafka_bootstrap, settings.group_id, dispatcher_of(app).subscribed)
    async with running_app(app) as client:
        yield Service(app, client, clock, settings)


@dataclass(frozen=True)
class Issued:
    invitation_id: str
    agent_id: str
    transaction_id: str
    pin: str | None
    token: str | None
    event: InvitationIssued


async def announce_agent(publish_event: EventPublisher, service: Service, agent_id: str) -> None:
    """Announce the agent on the roster and wait until the service has stored it: roster and
    invitations travel on different topics, and a survey shown before the roster landed names
    "your agent" and queues no notice to the agent."""
    await publish_event(AGENT_UPSERTED, agent_upserted(agent_id))
    await until_stored(service.settings, "agents", "agent_id", agent_id)


async def issue_invitation(
    publish_event: EventPublisher,
    service: Service,
    *,
    agent_id: str | None = None,
    channel: Channel = Channel.EMAIL,
    ttl: timedelta = timedelta(days=30),
    removal_reason: RemovalReason | None = None,
    invitation_id: str | None = None,
    token: str | None = None,
) -> Issued:
    """Announce an invitation and wait until the service has consumed it. Its link token is
    of the current format (naming the invitation under the MAC) unless `token` is given."""
    hasher = SecretHasher(PEPPER)
    agent_id = agent_id or unique("A")
    invitation_id = invitation_id or unique("inv")
    pin = new_pin() if channel is Channel.EMAIL else None
    if channel is Channel.EMAIL:
        token = token or hasher.link_token(invitation_id)
    event = InvitationIssued(
        invitation_id=invitation_id,
        agent_id=agent_id,
        transaction_id=None if removal_reason else unique("T"),
        lead_id=unique("L") if removal_reason else None,
        survey=SurveyKind.REMOVAL if removal_reason else SurveyKind.TRANSACTION,
        removal_reason=removal_reason,
        channel=channel,
        pin_hash=hasher.pin_hash(pin) if pin else None,
        token_hash=hasher.token_hash(token) if token else None,
        issued_at=service.clock.now(),
        expires_at=service.clock.now() + ttl,
    )
    await publish_event(INVITATION_ISSUED, event)
    issued = Issued(event.invitation_id, agent_id, event.transaction_id or "", pin, token, event)
    await until_stored(service.settings, "invitations", "invitation_id", issued.invitation_id)
    return issued
