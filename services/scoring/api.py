"""HTTP routes: an agent's rating as of any instant with its explanation, and the ranking."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from services.scoring.domain.policy import Policy, Rating, evaluate
from services.scoring.domain.publication import public_rating, visibility_of
from services.scoring.repository import ScoringRepository
from shared.auth import Principal, optional_principal
from shared.contracts.base import UtcDatetime
from shared.contracts.ratings import RatingUpdated, Status, Visibility
from shared.http import ProblemError
from shared.runtime import ServiceRuntime, context_of, runtime_of

router = APIRouter(prefix="/api/v1", tags=["ratings"])

Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]
RatingPolicy = Annotated[Policy, Depends(context_of)]
Caller = Annotated[Principal | None, Depends(optional_principal)]

# the policy counts calendar months either side of as_of: keep that inside datetime's range
EARLIEST_AS_OF = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_AS_OF = datetime(9000, 1, 1, tzinfo=UTC)


class WindowView(BaseModel):
    name: str = Field(description="e.g. stars_3m: the positive reviews the stars count.")
    start: UtcDatetime = Field(description="Exclusive start of the window.")
    end: UtcDatetime = Field(description="Inclusive end: the instant rated.")
    review_ids: list[str]


class PeriodView(BaseModel):
    status: Status
    start: UtcDatetime
    end: UtcDatetime | None
    reason: str


class Explanation(BaseModel):
    reviews_counted: int = Field(description="Published transaction-survey reviews up to as_of.")
    windows: list[WindowView]
    periods: list[PeriodView] = Field(description="Status history, oldest first.")
    next_change_at: UtcDatetime | None = Field(
        description="When the rating next changes if no new review arrives."
    )


class RatingView(RatingUpdated):
    explanation: Explanation | None = Field(
        default=None, description="Only where the numbers are shown."
    )


class RankedAgent(BaseModel):
    rank: int
    agent_id: str
    office_id: str | None
    status: Status
    stars: int
    positive_reviews_3m: int
    positive_reviews_6m: int
    reviews_total: int
    status_since: UtcDatetime | None


class Ranking(BaseModel):
    agents: list[RankedAgent]


def _explanation(rating: Rating) -> Explanation:
    return Explanation(
        reviews_counted=rating.reviews_total,
        windows=[
            WindowView(name=w.name, start=w.start, end=w.end, review_ids=list(w.review_ids))
            for w in rating.windows
        ],
        periods=[
            PeriodView(status=p.status, start=p.start, end=p.end, reason=p.reason)
            for p in rating.periods
        ],
        next_change_at=rating.next_change_at,
    )


@router.get("/agents/{agent_id}/rating", response_model=RatingView)
async def agent_rating(
    agent_id: str,
    runtime: Runtime,
    policy: RatingPolicy,
    caller: Caller,
    as_of: Annotated[datetime | None, Query(description="RFC 3339 instant; default now.")] = None,
) -> RatingView:
    """The rating as of any instant, computed by the policy from the stored history. Hidden and
    opted-out ratings show their numbers only to the agent's own token."""
    if as_of is not None and as_of.tzinfo is None:
        raise ProblemError(422, "Unprocessable Content", "as_of needs a time zone (e.g. Z)")
    if as_of is not None and not EARLIEST_AS_OF <= as_of <= LATEST_AS_OF:
        raise ProblemError(422, "Unprocessable Content", "as_of must be between 1900 and 9000")
    async with runtime.unit_of_work() as uow:
        repo = ScoringRepository(uow.conn)
        agent = (await repo.agents([agent_id])).get(agent_id)
        if agent is None or not agent.on_roster:
            raise ProblemError(404, "Not Found", f"agent {agent_id} is not on the roster")
        history = (await repo.counted_reviews([agent_id])).get(agent_id, [])
        instant = as_of or uow.now
    rating = evaluate(history, agent.member_since, instant, policy)
    visibility = visibility_of(agent.mode, active=agent.active)
    own = caller is not None and caller.is_agent(agent_id)
    shown = Visibility.PUBLIC if own else visibility
    public = public_rating(agent_id, rating, shown, instant)
    view = RatingView(**{**public.model_dump(), "visibility": visibility})
    if shown is Visibility.PUBLIC:
        view = view.model_copy(update={"explanation": _explanation(rating)})
    return view


@router.get("/agents", response_model=Ranking)
async def ranking(
    runtime: Runtime,
    office_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Ranking:
    """Public agents by status (gold, silver, none), then stars, then positive reviews in three
    months, then agent id."""
    async with runtime.unit_of_work() as uow:
        rows = await ScoringRepository(uow.conn).ranking(office_id, limit)
    return Ranking(
        agents=[
            RankedAgent(
                rank=index,
                agent_id=row["agent_id"],
                office_id=row["office_id"],
                status=Status(row["status"]),
                stars=row["stars"],
                positive_reviews_3m=row["positive_reviews_3m"],
                positive_reviews_6m=row["positive_reviews_6m"],
                reviews_total=row["reviews_total"],
                status_since=row["status_since"],
            )
            for index, row in enumerate(rows, start=1)
        ]
    )
