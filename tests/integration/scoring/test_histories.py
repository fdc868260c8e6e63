"""The rating path asks PostgreSQL for each agent's `History` (`ScoringRepository.histories`);
the API and the policy tests build it in Python (`summarize`). Both must say the same for any
stored reviews: ties on submitted_at, reviews after the instant, withdrawals, ids that sort
differently under a locale collation, negative reviews and agents with no counted review. And
the store tells a new rating from the same one at a later instant."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.scoring.app import MIGRATIONS
from services.scoring.domain.policy import (
    DEFAULT_POLICY,
    NO_HISTORY,
    ReviewFact,
    rate,
    summarize,
)
from services.scoring.domain.publication import public_rating
from services.scoring.repository import ReviewRow, ScoringRepository
from shared.contracts.ratings import Visibility
from shared.contracts.reviews import CATEGORIES
from shared.db import apply_migrations, create_pool

pytestmark = pytest.mark.integration

INSTANT = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
# Upper case, accents and punctuation sort differently under en_US.UTF-8 than by code point.
ID_PARTS = ["a", "B", "é", "_", "-", "Z", "ü", "0", "z"]


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    schema = f"t_{uuid.uuid4().hex[:10]}_histories"
    pool = await create_pool(database_url, schema)
    await apply_migrations(pool, schema, MIGRATIONS)
    try:
        yield pool
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()


def random_reviews(rng: random.Random, agents: list[str]) -> list[ReviewRow]:
    # Few distinct instants, so ties on submitted_at are common.
    instants = [INSTANT + timedelta(days=rng.randrange(-400, 30)) for _ in range(25)]
    rows = []
    for n in range(600):
        review_id = "".join(rng.choice(ID_PARTS) for _ in range(3)) + f"{n}"
        submitted = rng.choice(instants)
        scores = tuple(rng.choice((2, 3, 4, 5, 5, 5)) for _ in CATEGORIES)
        withdrawn = INSTANT if rng.random() < 0.1 else None
        rows.append(
            ReviewRow(review_id, rng.choice(agents), submitted, scores, submitted, withdrawn)
        )
    return rows


async def test_postgresql_summarizes_histories_exactly_as_the_policy_does(
    pool: asyncpg.Pool,
) -> None:
    rng = random.Random(20261202)
    agents = [f"H-{n}" for n in range(12)]
    rows = random_reviews(rng, agents)
    async with pool.acquire() as conn, conn.transaction():
        # As on a server whose default collation is a locale's (the Docker image's en_US.utf8).
        await conn.execute(
            'ALTER TABLE reviews ALTER COLUMN review_id TYPE text COLLATE "und-x-icu"'
        )
        repo = ScoringRepository(conn)
        await repo.save_reviews(rows)
        futures = positive_ties = 0
        for instant in (INSTANT, INSTANT - timedelta(days=200), INSTANT + timedelta(days=60)):
            histories = await repo.histories([*agents, "H-none"], instant, 3)
            for agent_id in [*agents, "H-none"]:
                facts = [
                    ReviewFact(
                        r.review_id, r.submitted_at, dict(zip(CATEGORIES, r.scores, strict=True))
                    )
                    for r in rows
                    if r.agent_id == agent_id
                    and r.withdrawn_at is None
                    and r.submitted_at is not None
                    and r.scores is not None
                ]
                expected = summarize(facts, instant, DEFAULT_POLICY) if facts else NO_HISTORY
                assert histories.get(agent_id, NO_HISTORY) == expected, (agent_id, instant)
                futures += expected.first_future is not None
                times = expected.positive_times
                positive_ties += len(times) - len(set(times))
        # The data really had what this test is about.
        assert positive_ties > 50
        assert futures > 5


async def test_a_rating_is_new_only_when_more_than_its_instant_changed(pool: asyncpg.Pool) -> None:
    """`save_ratings` returns the agents to publish: the stored form is the event as the stream
    carries it, compared without `as_of`; a form stored before it carried `as_of` compares the
    same as one that does."""
    rating = rate(NO_HISTORY, None, INSTANT)
    later = INSTANT + timedelta(hours=1)

    def form(at: datetime, *, stars: int = 0, with_as_of: bool = True) -> str:
        event = public_rating("R-1", rating, Visibility.PUBLIC, at).model_copy(
            update={"stars": stars}
        )
        return event.model_dump_json(exclude=None if with_as_of else {"as_of"})

    async with pool.acquire() as conn, conn.transaction():
        repo = ScoringRepository(conn)
        row = ("R-1", rating, "public")
        assert await repo.save_ratings([(*row, form(INSTANT, with_as_of=False))], INSTANT) == {
            "R-1"
        }
        assert await repo.save_ratings([(*row, form(INSTANT))], INSTANT) == set()
        assert await repo.save_ratings([(*row, form(later))], later) == set()
        assert await repo.save_ratings([(*row, form(later, stars=1))], later) == {"R-1"}
        assert await repo.save_ratings([(*row, form(later, stars=1))], later) == set()
