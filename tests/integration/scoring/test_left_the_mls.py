"""Agents who left the MLS (docs/design.md 1.7) on real Kafka and PostgreSQL: marked inactive by
the roster they leave the ranking and their rating stops being public; marked active again the
same public rating returns."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from shared.contracts import AGENT_UPSERTED
from shared.topics import Topic
from tests.integration.scoring.conftest import (
    START,
    Service,
    bearer,
    publish_review,
    review,
    rostered,
    unique,
)
from tests.support.builders import agent_upserted
from tests.support.kafka import EventPublisher
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
DAY = timedelta(days=1)
MEMBER_SINCE = date(2024, 1, 15)
NUMBERS = ("stars", "status", "positive_reviews_3m", "reviews_total", "category_averages")


async def ranked(service: Service, office_id: str) -> list[str]:
    response = await service.client.get("/api/v1/agents", params={"office_id": office_id})
    assert response.status_code == 200, response.text
    return [agent["agent_id"] for agent in response.json()["agents"]]


async def test_an_agent_who_left_the_mls_is_unranked_and_hidden_until_back(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    service.clock.set(START)
    ratings = await topic_reader(Topic.RATINGS)
    office = unique("O")
    agent_id, colleague = f"{office}-left", f"{office}-stays"
    for agent in (agent_id, colleague):
        await rostered(publish_event, agent, office_id=office, member_since=date(2024, 1, 15))
    for n in range(4):
        await publish_review(publish_event, review(agent_id, START - (n + 1) * DAY))
    public = await ratings.wait_for(
        lambda e: (
            e.key == agent_id and e.data["visibility"] == "public" and e.data["reviews_total"] == 4
        )
    )
    assert (public.data["stars"], public.data["status"]) == (2, "silver")
    await ratings.wait_for(lambda e: e.key == colleague and e.data["visibility"] == "public")
    assert await ranked(service, office) == [agent_id, colleague]

    # roster and participation travel on different topics: a hidden rating may precede these
    seen = {e.id for e in ratings.envelopes()}
    await publish_event(
        AGENT_UPSERTED,
        agent_upserted(agent_id, office_id=office, member_since=MEMBER_SINCE, active=False),
    )
    hidden = await ratings.wait_for(
        lambda e: e.key == agent_id and e.id not in seen and e.data["visibility"] != "public"
    )
    assert hidden.data["visibility"] == "hidden"
    assert all(hidden.data[field] is None for field in NUMBERS)
    assert await ranked(service, office) == [colleague]
    # the review history is kept: the agent still reads their own numbers
    own = await service.client.get(f"/api/v1/agents/{agent_id}/rating", headers=bearer(agent_id))
    assert own.json()["visibility"] == "hidden"
    assert (own.json()["reviews_total"], own.json()["stars"]) == (4, 2)
    anonymous = await service.client.get(f"/api/v1/agents/{agent_id}/rating")
    assert anonymous.json()["stars"] is None

    seen = {e.id for e in ratings.envelopes()}
    await publish_event(
        AGENT_UPSERTED, agent_upserted(agent_id, office_id=office, member_since=MEMBER_SINCE)
    )
    back = await ratings.wait_for(
        lambda e: e.key == agent_id and e.id not in seen and e.data["visibility"] == "public"
    )
    assert {k: v for k, v in back.data.items() if k != "as_of"} == {
        k: v for k, v in public.data.items() if k != "as_of"
    }

    async def ranked_again() -> bool:
        return await ranked(service, office) == [agent_id, colleague]

    await eventually(ranked_again)
