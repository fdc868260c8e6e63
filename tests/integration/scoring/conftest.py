"""Fixtures for the scoring service on the real stack: one service per module, its clock fixed
and moved by the tests, reviews published on `reviews.published` as the reviews service would."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devtools.smtp_sink import MailSink
from services.scoring.app import create_app
from services.scoring.settings import ScoringSettings
from shared.auth import Role, issue_token
from shared.clock import FixedClock
from shared.contracts import AGENT_UPSERTED, PARTICIPATION_CHANGED, REVIEW_PUBLISHED
from shared.contracts.base import format_rfc3339
from shared.contracts.participation import (
    ParticipationMode,
)
from shared.contracts.reviews import Channel, ReviewPublished, Scores, SurveyKind
from shared.topics import Topic
from tests.conftest import running_app
from tests.support.builders import agent_upserted, participation_changed
from tests.support.kafka import EventPublisher, dispatcher_of, start_group_at_end

START = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
SECRET = "scoring-test-secret-of-at-least-32-bytes!"
GOOD = {
    "communication": 5,
    "friendliness": 4,
    "professionalism": 5,
    "area_knowledge": 4,
    "overall": 5,
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def bearer(sub: str, role: Role = Role.AGENT) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    clock: FixedClock
    settings: ScoringSettings


def scoring_settings(kafka_bootstrap: str, database_url: str, **overrides: Any) -> ScoringSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "database_url": database_url,
        "database_schema": f"t_{uuid.uuid4().hex[:10]}_scoring",
        "kafka_group_id": f"test-scoring-{uuid.uuid4().hex[:8]}",
        "outbox_poll_seconds": 0.05,
        "scheduler_interval_seconds": 0.1,
        "rating_scheduler_seconds": 0.2,
        "auth_secret": SECRET,
    }
    values.update(overrides)
    return ScoringSettings(**values)


@pytest.fixture(scope="module")
async def service(
    kafka_bootstrap: str, database_url: str, smtp_sink: MailSink
) -> AsyncIterator[Service]:
    clock = FixedClock(START)
    settings = scoring_settings(kafka_bootstrap, database_url, smtp_port=smtp_sink.port)
    app = create_app(settings, clock=clock)
    await start_group_at_end(kafka_bootstrap, settings.group_id, dispatcher_of(app).subscribed)
    async with running_app(app) as client:
        yield Service(app, client, clock, settings)


async def rostered(
    publish_event: EventPublisher,
    agent_id: str,
    *,
    mode: ParticipationMode | None = ParticipationMode.OPT_IN_PUBLIC,
    member_since: date = date(2024, 1, 15),
    office_id: str = "O-1",
) -> None:
    if mode is not None:
        await publish_event(
            PARTICIPATION_CHANGED,
            participation_changed(agent_id, mode, changed_at=START - timedelta(days=400)),
        )
    await publish_event(
        AGENT_UPSERTED,
        agent_upserted(agent_id, office_id=office_id, member_since=member_since),
    )


def review(
    agent_id: str,
    submitted_at: datetime,
    scores: dict[str, int] | None = None,
    *,
    survey: SurveyKind = SurveyKind.TRANSACTION,
    positive: bool | None = None,
    review_id: str | None = None,
) -> ReviewPublished:
    chosen = Scores.model_validate(scores or GOOD)
    return ReviewPublished(
        review_id=review_id or unique("R"),
        agent_id=agent_id,
        transaction_id=unique("T") if survey is SurveyKind.TRANSACTION else None,
        survey=survey,
        removal_reason="changed_mind" if survey is SurveyKind.REMOVAL else None,
        channel=Channel.EMAIL,
        submitted_at=submitted_at,
        published_at=submitted_at + timedelta(hours=1),
        scores=chosen,
        positive=chosen.is_positive() if positive is None else positive,
        comment="Great",
    )


async def publish_review(publish_event: EventPublisher, event: ReviewPublished) -> str:
    return await publish_event(REVIEW_PUBLISHED, event)


async def publish_invalid_review(publish_event: EventPublisher, agent_id: str) -> None:
    """A CloudEvent whose data breaks the contract (a score of 6)."""
    data = review(agent_id, START).model_dump(mode="json")
    data["scores"]["overall"] = 6
    headers = {
        "ce_specversion": b"1.0",
        "ce_id": uuid.uuid4().hex.encode(),
        "ce_source": b"/tests",
        "ce_type": b"review.published.v1",
        "ce_time": format_rfc3339(START).encode(),
        "content-type": b"application/json",
    }
    await publish_event.raw(
        Topic.REVIEWS_PUBLISHED, json.dumps(data).encode(), key=agent_id.encode(), headers=headers
    )
