"""Fixtures for the directory on the real stack: the service in-process with a fresh schema,
and the public events it reads published on their real topics, as upstream would."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.directory.app import create_app
from services.directory.handlers import dispatcher
from services.directory.settings import DirectorySettings
from shared.clock import FixedClock
from shared.contracts import (
    AGENT_UPSERTED,
    PUBLIC_REVIEW_PUBLISHED,
    PUBLIC_REVIEW_WITHDRAWN,
    RATING_UPDATED,
)
from shared.contracts.ratings import RatingUpdated, Status, Visibility
from shared.contracts.reviews import Channel, ReviewPublished, ReviewWithdrawn, Scores, SurveyKind
from tests.conftest import running_app
from tests.support.builders import agent_upserted
from tests.support.kafka import EventPublisher, start_group_at_end
from tests.support.waiting import eventually

START = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
GOOD = {
    "communication": 5,
    "friendliness": 4,
    "professionalism": 5,
    "area_knowledge": 4,
    "overall": 5,
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Directory:
    app: FastAPI
    client: httpx.AsyncClient
    settings: DirectorySettings

    async def until(self, path: str, check: Any, timeout: float = 15) -> httpx.Response:
        """Poll `path` until `check(response)` holds; return that response."""
        seen: list[httpx.Response] = []

        async def holds() -> bool:
            response = await self.client.get(path)
            seen.append(response)
            return bool(check(response))

        await eventually(holds, timeout)
        return seen[-1]


def directory_settings(
    kafka_bootstrap: str, database_url: str, **overrides: Any
) -> DirectorySettings:
    values: dict[str, Any] = {
        "environment": "test",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "database_url": database_url,
        "database_schema": f"t_{uuid.uuid4().hex[:10]}_directory",
        "kafka_group_id": f"test-directory-{uuid.uuid4().hex[:8]}",
        "rebuild_when_empty": False,
        "page_size": 3,
        "public_base_url": "http://directory.test",
    }
    values.update(overrides)
    return DirectorySettings(**values)


@pytest.fixture(scope="module")
async def directory(kafka_bootstrap: str, database_url: str) -> AsyncIterator[Directory]:
    settings = directory_settings(kafka_bootstrap, database_url)
    await start_group_at_end(kafka_bootstrap, settings.group_id, dispatcher.subscribed)
    app = create_app(settings, clock=FixedClock(START))
    async with running_app(app) as client:
        yield Directory(app, client, settings)


async def roster(
    publish_event: EventPublisher,
    agent_id: str,
    *,
    name: str = "Jo Agent",
    office_id: str = "O-1",
    active: bool = True,
) -> None:
    await publish_event(
        AGENT_UPSERTED,
        agent_upserted(
            agent_id,
            name=name,
            office_id=office_id,
            member_since=START.date() - timedelta(days=400),
            active=active,
        ),
    )


def rating(
    agent_id: str,
    *,
    visibility: Visibility = Visibility.PUBLIC,
    stars: int = 2,
    status: Status = Status.SILVER,
    positive_3m: int = 4,
    as_of: datetime = START,
) -> RatingUpdated:
    if visibility is not Visibility.PUBLIC:
        return RatingUpdated(
            agent_id=agent_id, as_of=as_of, visibility=visibility, policy_version="2026-11.1"
        )
    return RatingUpdated(
        agent_id=agent_id,
        as_of=as_of,
        visibility=visibility,
        policy_version="2026-11.1",
        stars=stars,
        status=status,
        status_since=START - timedelta(days=20),
        next_review_at=START + timedelta(days=70),
        positive_reviews_3m=positive_3m,
        positive_reviews_6m=positive_3m,
        reviews_total=positive_3m,
        category_averages={
            "communication": 4.5,
            "friendliness": 4.0,
            "professionalism": 5.0,
            "area_knowledge": 4.0,
            "overall": 4.75,
        },
    )


async def publish_rating(publish_event: EventPublisher, event: RatingUpdated) -> None:
    await publish_event(RATING_UPDATED, event)


def public_review(
    agent_id: str,
    *,
    review_id: str | None = None,
    comment: str = "Knew every street.",
    display_name: str | None = "Pat D.",
    agent_response: str | None = None,
    submitted_at: datetime = START - timedelta(days=3),
) -> ReviewPublished:
    scores = Scores.model_validate(GOOD)
    return ReviewPublished(
        review_id=review_id or unique("R"),
        agent_id=agent_id,
        transaction_id=unique("T"),
        survey=SurveyKind.TRANSACTION,
        channel=Channel.EMAIL,
        submitted_at=submitted_at,
        published_at=submitted_at + timedelta(hours=1),
        scores=scores,
        positive=True,
        comment=comment,
        display_name=display_name,
        agent_response=agent_response,
    )


async def publish_review(publish_event: EventPublisher, event: ReviewPublished) -> None:
    await publish_event(PUBLIC_REVIEW_PUBLISHED, event)


async def withdraw_review(
    publish_event: EventPublisher, agent_id: str, review_id: str, reason: str = "agent_not_public"
) -> None:
    await publish_event(
        PUBLIC_REVIEW_WITHDRAWN,
        ReviewWithdrawn(review_id=review_id, agent_id=agent_id, withdrawn_at=START, reason=reason),
    )


async def public_agent(
    publish_event: EventPublisher, directory: Directory, agent_id: str, **roster_fields: Any
) -> None:
    """An active agent with a public rating, waited for until the profile shows."""
    await roster(publish_event, agent_id, **roster_fields)
    await publish_rating(publish_event, rating(agent_id))
    await directory.until(f"/agents/{agent_id}", lambda r: r.status_code == 200)
