"""Events from the streams: store the facts, then re-rate every agent they touch, in the unit
of work's one transaction, publishing `rating.updated.v1` only when the public rating changed."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from functools import partial

from services.scoring.domain.policy import NO_HISTORY, Policy, Rating, rate
from services.scoring.domain.publication import public_rating, published_form, visibility_of
from services.scoring.repository import ReviewRow, ScoringRepository
from shared.contracts import AGENT_UPSERTED, PARTICIPATION_CHANGED, RATING_UPDATED
from shared.contracts.mls import AgentUpserted
from shared.contracts.participation import ParticipationChanged
from shared.contracts.ratings import RatingUpdated
from shared.contracts.reviews import ReviewPublished, ReviewWithdrawn, SurveyKind
from shared.messaging import Delivery, EventDispatcher
from shared.topics import Topic
from shared.uow import UnitOfWork

logger = logging.getLogger(__name__)


def dispatcher(policy: Policy) -> EventDispatcher:
    """The topics and event types the service consumes, each routed to its handler, rating
    under `policy` (the app's)."""
    routes = EventDispatcher("scoring", publishes=(RATING_UPDATED,))
    routes.on_batch(Topic.REVIEWS_PUBLISHED)(partial(reviews_published, policy=policy))
    routes.on(AGENT_UPSERTED)(partial(agent_upserted, policy=policy))
    routes.on(PARTICIPATION_CHANGED)(partial(participation_changed, policy=policy))
    return routes


def review_rows(events: Iterable[object]) -> list[ReviewRow]:
    """Only transaction surveys count; the last word on a review within a batch wins."""
    rows: dict[str, ReviewRow] = {}
    for event in events:
        # type() rather than isinstance(): pydantic models check through ABCMeta, per event
        if type(event) is ReviewPublished:
            if event.survey is not SurveyKind.TRANSACTION:
                continue
            previous = rows.get(event.review_id)
            rows[event.review_id] = ReviewRow(
                event.review_id,
                event.agent_id,
                event.submitted_at,
                tuple(event.scores.as_dict().values()),
                event.published_at,
                previous.withdrawn_at if previous else None,
            )
        elif type(event) is ReviewWithdrawn:
            previous = rows.get(event.review_id)
            rows[event.review_id] = ReviewRow(
                event.review_id,
                event.agent_id,
                previous.submitted_at if previous else None,
                previous.scores if previous else None,
                previous.published_at if previous else None,
                event.withdrawn_at,
            )
    return list(rows.values())


async def reviews_published(
    deliveries: Sequence[Delivery], uow: UnitOfWork, policy: Policy
) -> None:
    rows = review_rows(delivery.event for delivery in deliveries)
    repo = ScoringRepository(uow.conn)
    agent_ids = sorted({row.agent_id for row in rows})
    await repo.lock_agents(agent_ids)
    await repo.save_reviews(rows)
    await rerate(uow, repo, agent_ids, policy, locked=True)


async def agent_upserted(event: AgentUpserted, uow: UnitOfWork, policy: Policy) -> None:
    repo = ScoringRepository(uow.conn)
    await repo.lock_agents([event.agent_id])
    await repo.save_agent(event.agent_id, event.office_id, event.member_since, event.active)
    await rerate(uow, repo, [event.agent_id], policy, locked=True)


async def participation_changed(
    event: ParticipationChanged, uow: UnitOfWork, policy: Policy
) -> None:
    repo = ScoringRepository(uow.conn)
    await repo.lock_agents([event.agent_id])
    await repo.save_mode(event.agent_id, event.mode, event.changed_at)
    await rerate(uow, repo, [event.agent_id], policy, locked=True)


async def rerate(
    uow: UnitOfWork,
    repo: ScoringRepository,
    agent_ids: Sequence[str],
    policy: Policy,
    *,
    locked: bool = False,
) -> int:
    """Rate the agents as of now; store every rating; publish those whose public form changed.
    Agents the roster has not named yet keep their reviews and get no rating. Returns how many
    ratings were published."""
    if not agent_ids:
        return 0
    if not locked:
        await repo.lock_agents(agent_ids)
    agents = await repo.agents(agent_ids)
    histories = await repo.histories(agent_ids, uow.now, policy.positive_threshold)
    rows = []
    events: dict[str, tuple[RatingUpdated, str]] = {}
    for agent_id in agent_ids:
        agent = agents.get(agent_id)
        if agent is None or not agent.on_roster:
            continue
        history = histories.get(agent_id, NO_HISTORY)
        rating: Rating = rate(history, agent.member_since, uow.now, policy)
        visibility = visibility_of(agent.mode, active=agent.active)
        event = public_rating(agent_id, rating, visibility, uow.now)
        form = published_form(event)
        events[agent_id] = (event, form)
        rows.append((agent_id, rating, visibility.value, form))
    changed = await repo.save_ratings(rows, uow.now)
    publish = [events[a] for a in agent_ids if a in changed]
    return await uow.publish_many(
        RATING_UPDATED,
        [event for event, _ in publish],
        payloads=[form.encode() for _, form in publish],
    )


async def rerate_due(uow: UnitOfWork, policy: Policy, limit: int = 500) -> int:
    """Agents whose rating changes with time alone (a review ageing out, a period ending, the
    membership anniversary): re-rate those due now. Returns how many were due."""
    repo = ScoringRepository(uow.conn)
    due = await repo.due_agents(uow.now, limit)
    if due:
        published = await rerate(uow, repo, due, policy)
        logger.info("re-rated %d agents due by the clock; %d ratings changed", len(due), published)
    return len(due)
