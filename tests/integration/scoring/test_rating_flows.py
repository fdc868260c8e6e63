"""The scoring service against real Kafka and PostgreSQL: reviews on the topic become the
expected `rating.updated.v1` sequence; time alone changes ratings; visibility; bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest

from services.scoring.domain.publication import policy_for
from services.scoring.replay import replay
from shared.cloudevents import Envelope
from shared.contracts import REVIEW_PUBLISHED, REVIEW_WITHDRAWN
from shared.contracts.participation import ParticipationMode
from shared.contracts.reviews import ReviewWithdrawn, SurveyKind
from shared.topics import Topic, dlq
from tests.integration.scoring.conftest import (
    GOOD,
    START,
    Service,
    bearer,
    publish_invalid_review,
    publish_review,
    review,
    rostered,
    scoring_settings,
    unique,
)
from tests.support.kafka import EventPublisher
from tests.support.waiting import eventually, until_stored

pytestmark = pytest.mark.integration
DAY = timedelta(days=1)


def of(agent_id: str) -> Callable[[Envelope], bool]:
    return lambda e: e.key == agent_id


async def test_reviews_become_the_expected_rating_sequence(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    service.clock.set(START)
    ratings = await topic_reader(Topic.RATINGS)
    agent_id = unique("A")
    await rostered(publish_event, agent_id)
    # roster and participation travel on different topics: either may be rated first
    first = await ratings.wait_for(lambda e: e.key == agent_id and e.data["visibility"] == "public")
    assert first.data["stars"] == 0
    assert first.data["status"] == "none" and first.data["reviews_total"] == 0

    seen = []
    for n in range(1, 5):
        await publish_review(publish_event, review(agent_id, START - (10 - n) * DAY))
        event = await ratings.wait_for(
            lambda e, n=n: e.key == agent_id and e.data["reviews_total"] == n
        )
        seen.append((event.data["stars"], event.data["status"], event.data["positive_reviews_3m"]))
    assert seen == [(0, "none", 1), (1, "none", 2), (1, "none", 3), (2, "silver", 4)]
    silver = await ratings.wait_for(lambda e: e.key == agent_id and e.data["status"] == "silver")
    assert silver.data["status_since"] == "2026-11-14T15:00:00Z"
    assert silver.data["next_review_at"] == "2027-02-14T15:00:00Z"

    # the API explains the same rating, and any earlier instant exactly
    now = await service.client.get(f"/api/v1/agents/{agent_id}/rating")
    body = now.json()
    assert (body["stars"], body["status"]) == (2, "silver")
    stars_window = next(w for w in body["explanation"]["windows"] if w["name"] == "stars_3m")
    assert len(stars_window["review_ids"]) == 4
    assert body["explanation"]["periods"][0]["status"] == "silver"
    before = await service.client.get(
        f"/api/v1/agents/{agent_id}/rating", params={"as_of": "2026-11-13T15:00:00Z"}
    )
    assert (before.json()["stars"], before.json()["status"]) == (1, "none")
    assert before.json()["reviews_total"] == 3
    missing = await service.client.get("/api/v1/agents/A-nobody/rating")
    assert missing.status_code == 404


async def test_the_clock_alone_lowers_stars_as_reviews_age_out(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    service.clock.set(START)
    ratings = await topic_reader(Topic.RATINGS)
    agent_id = unique("A")
    await rostered(publish_event, agent_id)
    old, recent = START - timedelta(days=80), START - timedelta(days=5)
    await publish_review(publish_event, review(agent_id, old))
    await publish_review(publish_event, review(agent_id, recent))
    two = await ratings.wait_for(lambda e: e.key == agent_id and e.data["reviews_total"] == 2)
    assert two.data["stars"] == 1
    count_before = len([e for e in ratings.envelopes() if e.key == agent_id])

    service.clock.set(START + timedelta(days=5))  # still inside the window: nothing to say
    await ratings.expect_none(
        lambda e: e.key == agent_id and e.data["positive_reviews_3m"] == 1, within=1.0
    )
    service.clock.set(START + timedelta(days=15))  # the old review left the 3-month window
    aged = await ratings.wait_for(
        lambda e: (
            e.key == agent_id
            and e.data["positive_reviews_3m"] == 1
            and e.data["reviews_total"] == 2
        ),
        timeout=20,
    )
    assert aged.data["stars"] == 0 and aged.data["reviews_total"] == 2
    assert len([e for e in ratings.envelopes() if e.key == agent_id]) == count_before + 1
    service.clock.set(START)


async def test_hidden_ratings_are_null_on_the_topic_and_numbers_only_for_the_agent(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    service.clock.set(START)
    ratings = await topic_reader(Topic.RATINGS)
    agent_id = unique("A")
    await rostered(publish_event, agent_id, mode=ParticipationMode.OPT_IN_HIDDEN)
    for days in (3, 2):
        await publish_review(publish_event, review(agent_id, START - days * DAY))
    hidden = await ratings.wait_for(of(agent_id))
    assert hidden.data["visibility"] == "hidden"
    assert all(hidden.data[f] is None for f in ("stars", "status", "reviews_total"))

    anonymous = await service.client.get(f"/api/v1/agents/{agent_id}/rating")
    assert anonymous.json()["stars"] is None and anonymous.json()["explanation"] is None
    other = await service.client.get(f"/api/v1/agents/{agent_id}/rating", headers=bearer("A-other"))
    assert other.json()["stars"] is None

    async def both_counted() -> bool:
        own = await service.client.get(
            f"/api/v1/agents/{agent_id}/rating", headers=bearer(agent_id)
        )
        assert own.json()["visibility"] == "hidden"
        return bool(own.json()["reviews_total"] == 2 and own.json()["stars"] == 1)

    await eventually(both_counted)
    ranking = await service.client.get("/api/v1/agents", params={"office_id": "O-1", "limit": 500})
    assert agent_id not in [a["agent_id"] for a in ranking.json()["agents"]]


async def test_only_transaction_surveys_count_and_positive_is_recomputed(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    service.clock.set(START)
    ratings = await topic_reader(Topic.RATINGS)
    agent_id = unique("A")
    await rostered(publish_event, agent_id)
    await publish_review(publish_event, review(agent_id, START - DAY, survey=SurveyKind.REMOVAL))
    lying = review(agent_id, START - 2 * DAY, {**GOOD, "overall": 2}, positive=True)
    await publish_review(publish_event, lying)
    event = await ratings.wait_for(lambda e: e.key == agent_id and e.data["reviews_total"] == 1)
    assert event.data["positive_reviews_3m"] == 0
    assert event.data["category_averages"]["overall"] == 2.0


async def test_redeliveries_and_republications_change_nothing(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    service.clock.set(START)
    ratings = await topic_reader(Topic.RATINGS)
    agent_id = unique("A")
    await rostered(publish_event, agent_id)
    # public first: a review rated before the participation event lands would never show a 0
    await ratings.wait_for(lambda e: e.key == agent_id and e.data["visibility"] == "public")
    event = review(agent_id, START - DAY)
    ce_id = await publish_review(publish_event, event)
    await ratings.wait_for(lambda e: e.key == agent_id and e.data["reviews_total"] == 1)
    await publish_review(publish_event, event)  # same review again, new ce_id
    await publish_event(REVIEW_PUBLISHED, event, ce_id=ce_id)  # the very same CloudEvent again
    closer = review(agent_id, START - 2 * DAY)
    await publish_review(publish_event, closer)  # same partition: arrives after the repeats
    await ratings.wait_for(lambda e: e.key == agent_id and e.data["reviews_total"] == 2)
    totals = [e.data["reviews_total"] for e in ratings.envelopes() if e.key == agent_id]
    # None: the roster rated before the participation event made the agent public
    assert [total for total in totals if total is not None] == [0, 1, 2]


async def test_invalid_reviews_are_dead_lettered_and_consumption_goes_on(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    service.clock.set(START)
    ratings = await topic_reader(Topic.RATINGS)
    dead = await topic_reader(dlq(Topic.REVIEWS_PUBLISHED))
    agent_id = unique("A")
    await rostered(publish_event, agent_id)
    await publish_invalid_review(publish_event, agent_id)
    await publish_review(publish_event, review(agent_id, START - DAY))
    record = await dead.wait_for_record(
        lambda r: r.key == agent_id.encode() and dict(r.headers).get("dlq_consumer") == b"scoring"
    )
    headers = dict(record.headers)
    assert headers["dlq_reason"] == b"schema_validation_failed"
    assert b"overall" in headers["dlq_detail"]
    await ratings.wait_for(lambda e: e.key == agent_id and e.data["reviews_total"] == 1)


async def test_a_review_for_an_unknown_agent_counts_once_the_roster_names_it(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    service.clock.set(START)
    ratings = await topic_reader(Topic.RATINGS)
    agent_id = unique("A")
    event = review(agent_id, START - DAY)
    await publish_review(publish_event, event)
    await until_stored(service.settings, "reviews", "review_id", event.review_id)
    await ratings.expect_none(of(agent_id), within=1.0)  # stored, yet nobody to rate
    await rostered(publish_event, agent_id, mode=None)  # default participation: hidden
    rated = await ratings.wait_for(of(agent_id))
    assert rated.data["visibility"] == "hidden"

    async def counted() -> bool:
        own = await service.client.get(
            f"/api/v1/agents/{agent_id}/rating", headers=bearer(agent_id)
        )
        return bool(own.json()["reviews_total"] == 1)

    await eventually(counted)


async def test_a_withdrawal_lowers_the_rating(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    service.clock.set(START)
    ratings = await topic_reader(Topic.RATINGS)
    agent_id = unique("A")
    await rostered(publish_event, agent_id)
    kept, withdrawn = review(agent_id, START - DAY), review(agent_id, START - 2 * DAY)
    await publish_review(publish_event, kept)
    await publish_review(publish_event, withdrawn)
    await ratings.wait_for(lambda e: e.key == agent_id and e.data["stars"] == 1)
    await publish_event(
        REVIEW_WITHDRAWN,
        ReviewWithdrawn(
            review_id=withdrawn.review_id, agent_id=agent_id, withdrawn_at=START, reason="fraud"
        ),
    )
    lower = await ratings.wait_for(
        lambda e: e.key == agent_id and e.data["reviews_total"] == 1 and e.data["stars"] == 0
    )
    assert lower.data["positive_reviews_3m"] == 1


async def test_ranking_orders_public_agents_by_status_stars_reviews_then_id(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    service.clock.set(START)
    ratings = await topic_reader(Topic.RATINGS)
    office = unique("O")
    plan = {"silver": 4, "two": 2, "one-b": 1, "one-a": 1, "zero": 0}
    ids = {name: f"{office}-{name}" for name in plan}
    for name, count in plan.items():
        await rostered(publish_event, ids[name], office_id=office, member_since=date(2026, 10, 1))
        for n in range(count):
            await publish_review(publish_event, review(ids[name], START - (n + 1) * DAY))
        await ratings.wait_for(
            lambda e, i=ids[name], c=count: e.key == i and e.data["reviews_total"] == c
        )
    response = await service.client.get("/api/v1/agents", params={"office_id": office})
    order = [a["agent_id"] for a in response.json()["agents"]]
    assert order == [ids["silver"], ids["two"], ids["one-a"], ids["one-b"], ids["zero"]]
    assert response.json()["agents"][0]["status"] == "silver"


async def test_replay_rebuilds_the_same_store(
    service: Service,
    publish_event: EventPublisher,
    topic_reader,
    kafka_bootstrap: str,
    database_url: str,
) -> None:
    service.clock.set(START)
    ratings = await topic_reader(Topic.RATINGS)
    agent_id = unique("A")
    await rostered(publish_event, agent_id)
    for days in (1, 2, 3, 4, 5):
        await publish_review(publish_event, review(agent_id, START - days * DAY))
    live_rating = await ratings.wait_for(
        lambda e: e.key == agent_id and e.data["reviews_total"] == 5
    )

    rebuilt = scoring_settings(kafka_bootstrap, database_url, clock_fixed_at=START.isoformat())
    lines: list[str] = []
    report = await replay(
        rebuilt, policy_for(rebuilt.scoring_policy_version), progress=lines.append
    )
    assert report.events[Topic.REVIEWS_PUBLISHED] >= 5 and report.agents_rated >= 1
    assert any("re-rated" in line for line in lines)

    query = (
        "SELECT stars, status, status_since, next_review_at, positive_reviews_3m, "
        "positive_reviews_6m, reviews_total, category_averages, published "
        "FROM {schema}.ratings WHERE agent_id = $1"
    )
    reviews_query = "SELECT review_id, submitted_at, overall FROM {schema}.reviews WHERE agent_id = $1 ORDER BY review_id"
    pool = service.app.state.runtime.pool
    async with pool.acquire() as conn:
        live = await conn.fetchrow(query.format(schema=service.settings.db_schema), agent_id)
        again = await conn.fetchrow(query.format(schema=rebuilt.db_schema), agent_id)
        live_reviews = await conn.fetch(
            reviews_query.format(schema=service.settings.db_schema), agent_id
        )
        again_reviews = await conn.fetch(reviews_query.format(schema=rebuilt.db_schema), agent_id)
    assert live is not None and dict(live) == dict(again)
    assert [tuple(r) for r in live_reviews] == [tuple(r) for r in again_reviews]
    assert len(live_reviews) == 5
    # ... and, published while the re-rating went on, the rebuilt rating is on the topic when
    # replay returns: nothing is left in its outbox
    async with pool.acquire() as conn:
        unpublished = f"SELECT count(*) FROM {rebuilt.db_schema}.outbox WHERE published_at IS NULL"
        assert await conn.fetchval(unpublished) == 0
    await ratings.wait_for(
        lambda e: e.key == agent_id and e.data["reviews_total"] == 5 and e.id != live_rating.id,
        timeout=5,
    )
