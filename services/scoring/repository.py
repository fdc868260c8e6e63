"""asyncpg queries on the scoring schema, set-based so a batch of events costs a few statements;
every method runs in the caller's transaction."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from services.scoring.domain.policy import History, Rating, ReviewFact
from shared.contracts.participation import ParticipationMode
from shared.contracts.reviews import CATEGORIES

STATUS_ORDER = "CASE status WHEN 'gold' THEN 0 WHEN 'silver' THEN 1 ELSE 2 END"


@dataclass(frozen=True)
class AgentFacts:
    agent_id: str
    office_id: str | None
    member_since: date | None
    mode: ParticipationMode
    active: bool

    @property
    def on_roster(self) -> bool:
        return self.member_since is not None


@dataclass(frozen=True)
class ReviewRow:
    """A published review (or a withdrawal) as stored: scores None for a bare withdrawal."""

    review_id: str
    agent_id: str
    submitted_at: datetime | None
    scores: tuple[int, ...] | None
    published_at: datetime | None
    withdrawn_at: datetime | None


class ScoringRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def lock_agents(self, agent_ids: Iterable[str]) -> None:
        """Serialise work on the same agents across consumers and the scheduler (sorted: no
        deadlock between two batches)."""
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('rating:' || id)) "
            "FROM unnest($1::text[]) AS id ORDER BY id",
            sorted(set(agent_ids)),
        )

    # reviews

    async def save_reviews(self, rows: Sequence[ReviewRow]) -> None:
        published = [r for r in rows if r.scores is not None]
        if published:
            columns = list(zip(*(r.scores for r in published if r.scores), strict=True))
            await self.conn.execute(
                f"""
                INSERT INTO reviews (review_id, agent_id, submitted_at, published_at,
                                     {", ".join(CATEGORIES)})
                SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[],
                                     $4::timestamptz[], $5::int2[], $6::int2[], $7::int2[],
                                     $8::int2[], $9::int2[])
                ON CONFLICT (review_id) DO UPDATE
                   SET agent_id = EXCLUDED.agent_id, submitted_at = EXCLUDED.submitted_at,
                       published_at = EXCLUDED.published_at,
                       {", ".join(f"{c} = EXCLUDED.{c}" for c in CATEGORIES)}
                """,
                [r.review_id for r in published],
                [r.agent_id for r in published],
                [r.submitted_at for r in published],
                [r.published_at for r in published],
                *[list(column) for column in columns],
            )
        withdrawn = [r for r in rows if r.withdrawn_at is not None]
        if withdrawn:
            await self.conn.execute(
                """
                INSERT INTO reviews (review_id, agent_id, withdrawn_at)
                SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
                ON CONFLICT (review_id) DO UPDATE
                   SET withdrawn_at = COALESCE(reviews.withdrawn_at, EXCLUDED.withdrawn_at)
                """,
                [r.review_id for r in withdrawn],
                [r.agent_id for r in withdrawn],
                [r.withdrawn_at for r in withdrawn],
            )

    async def counted_reviews(self, agent_ids: Sequence[str]) -> dict[str, list[ReviewFact]]:
        rows = await self.conn.fetch(
            f"""
            SELECT agent_id, review_id, submitted_at, {", ".join(CATEGORIES)} FROM reviews
             WHERE agent_id = ANY($1::text[]) AND withdrawn_at IS NULL
               AND submitted_at IS NOT NULL
            """,
            list(agent_ids),
        )
        found: dict[str, list[ReviewFact]] = defaultdict(list)
        for row in rows:
            scores = {category: row[category] for category in CATEGORIES}
            found[row["agent_id"]].append(ReviewFact(row["review_id"], row["submitted_at"], scores))
        return found

    async def histories(
        self, agent_ids: Sequence[str], instant: datetime, positive_threshold: int
    ) -> dict[str, History]:
        """`summarize` of each agent's counted reviews, done by PostgreSQL: one row an agent
        instead of one a review (the rating path's biggest cost when it read whole histories).
        Ties on submitted_at are broken by review_id in code-point order, as in Python."""
        in_order = 'ORDER BY submitted_at, review_id COLLATE "C"'
        rows = await self.conn.fetch(
            f"""
            SELECT agent_id,
                   array_agg(submitted_at {in_order}) FILTER (WHERE counted AND positive) AS times,
                   array_agg(review_id {in_order}) FILTER (WHERE counted AND positive) AS ids,
                   count(*) FILTER (WHERE counted) AS total,
                   {", ".join(f"sum({c}) FILTER (WHERE counted)" for c in CATEGORIES)},
                   min(submitted_at) FILTER (WHERE NOT counted) AS first_future
              FROM (SELECT *, submitted_at <= $2 AS counted,
                           LEAST({", ".join(CATEGORIES)}) >= $3 AS positive
                      FROM reviews
                     WHERE agent_id = ANY($1::text[]) AND withdrawn_at IS NULL
                       AND submitted_at IS NOT NULL) AS r
             GROUP BY agent_id
            """,
            list(agent_ids),
            instant,
            positive_threshold,
        )
        return {
            row["agent_id"]: History(
                positive_times=tuple(row["times"] or ()),
                positive_ids=tuple(row["ids"] or ()),
                reviews_total=row["total"],
                score_sums=tuple(row[4 + n] or 0 for n in range(len(CATEGORIES))),
                first_future=row["first_future"],
            )
            for row in rows
        }

    # agents

    async def save_agent(
        self, agent_id: str, office_id: str, member_since: date, active: bool
    ) -> None:
        await self.save_agents([(agent_id, office_id, member_since, active)])

    async def save_agents(self, rows: Sequence[tuple[str, str, date, bool]]) -> None:
        if rows:
            await self.conn.executemany(
                """
                INSERT INTO agents (agent_id, office_id, member_since, active)
                VALUES ($1, $2, $3, $4)
                ON CONFLICT (agent_id) DO UPDATE
                   SET office_id = EXCLUDED.office_id, member_since = EXCLUDED.member_since,
                       active = EXCLUDED.active
                """,
                rows,
            )

    async def save_mode(self, agent_id: str, mode: ParticipationMode, changed_at: datetime) -> None:
        await self.save_modes([(agent_id, mode.value, changed_at)])

    async def save_modes(self, rows: Sequence[tuple[str, str, datetime]]) -> None:
        """Keep the newest mode: a replayed older change never overrides a later one."""
        if rows:
            await self.conn.executemany(
                """
                INSERT INTO agents (agent_id, mode, mode_changed_at) VALUES ($1, $2, $3)
                ON CONFLICT (agent_id) DO UPDATE
                   SET mode = EXCLUDED.mode, mode_changed_at = EXCLUDED.mode_changed_at
                 WHERE agents.mode_changed_at IS NULL
                    OR agents.mode_changed_at <= EXCLUDED.mode_changed_at
                """,
                rows,
            )

    async def agents(self, agent_ids: Sequence[str]) -> dict[str, AgentFacts]:
        rows = await self.conn.fetch(
            "SELECT agent_id, office_id, member_since, mode, active FROM agents "
            "WHERE agent_id = ANY($1::text[])",
            list(agent_ids),
        )
        return {
            row["agent_id"]: AgentFacts(
                row["agent_id"],
                row["office_id"],
                row["member_since"],
                ParticipationMode(row["mode"]),
                row["active"],
            )
            for row in rows
        }

    async def all_rated_agent_ids(self, after: str, limit: int) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT agent_id FROM agents WHERE member_since IS NOT NULL AND agent_id > $1 "
            "ORDER BY agent_id LIMIT $2",
            after,
            limit,
        )
        return [row["agent_id"] for row in rows]

    # ratings

    async def save_ratings(
        self,
        rows: Sequence[tuple[str, Rating, str, str]],
        computed_at: datetime,
    ) -> set[str]:
        """(agent_id, rating, visibility, public form as JSON) per agent, in one statement.
        Returns the agents whose public form, `as_of` aside, differs from the one stored before
        (compared by PostgreSQL as jsonb; rows stored without `as_of` compare the same): the
        ratings to publish."""
        if not rows:
            return set()
        changed = await self.conn.fetch(
            """
            WITH before AS (
                SELECT agent_id, published FROM ratings WHERE agent_id = ANY($1::text[])
            ), saved AS (
                INSERT INTO ratings (agent_id, policy_version, computed_at, visibility, stars,
                                     status, status_since, next_review_at, positive_reviews_3m,
                                     positive_reviews_6m, reviews_total, category_averages,
                                     next_change_at, published)
                SELECT a, p, $2, v, s, st, ss, nr, p3, p6, rt, ca::jsonb, nc, pub::jsonb
                  FROM unnest($1::text[], $3::text[], $4::text[], $5::int2[], $6::text[],
                              $7::timestamptz[], $8::timestamptz[], $9::int[], $10::int[],
                              $11::int[], $12::text[], $13::timestamptz[], $14::text[])
                       AS t(a, p, v, s, st, ss, nr, p3, p6, rt, ca, nc, pub)
                ON CONFLICT (agent_id) DO UPDATE
                   SET policy_version = EXCLUDED.policy_version,
                       computed_at = EXCLUDED.computed_at,
                       visibility = EXCLUDED.visibility, stars = EXCLUDED.stars,
                       status = EXCLUDED.status, status_since = EXCLUDED.status_since,
                       next_review_at = EXCLUDED.next_review_at,
                       positive_reviews_3m = EXCLUDED.positive_reviews_3m,
                       positive_reviews_6m = EXCLUDED.positive_reviews_6m,
                       reviews_total = EXCLUDED.reviews_total,
                       category_averages = EXCLUDED.category_averages,
                       next_change_at = EXCLUDED.next_change_at, published = EXCLUDED.published
                RETURNING agent_id, published
            )
            SELECT saved.agent_id FROM saved LEFT JOIN before USING (agent_id)
             WHERE before.published - 'as_of' IS DISTINCT FROM saved.published - 'as_of'
            """,
            [agent_id for agent_id, *_ in rows],
            computed_at,
            [r.policy_version for _, r, _, _ in rows],
            [visibility for _, _, visibility, _ in rows],
            [r.stars for _, r, _, _ in rows],
            [r.status.value for _, r, _, _ in rows],
            [r.status_since for _, r, _, _ in rows],
            [r.next_review_at for _, r, _, _ in rows],
            [r.positive_reviews_3m for _, r, _, _ in rows],
            [r.positive_reviews_6m for _, r, _, _ in rows],
            [r.reviews_total for _, r, _, _ in rows],
            [json.dumps(r.category_averages) for _, r, _, _ in rows],
            [r.next_change_at for _, r, _, _ in rows],
            [published for *_, published in rows],
        )
        return {row["agent_id"] for row in changed}

    async def due_agents(self, now: datetime, limit: int) -> list[str]:
        """No row locks here: re-rating takes the agents' advisory locks (row locks taken first
        would deadlock with a consumer holding those), and re-rating twice publishes nothing."""
        rows = await self.conn.fetch(
            """
            SELECT agent_id FROM ratings WHERE next_change_at <= $1
             ORDER BY next_change_at LIMIT $2
            """,
            now,
            limit,
        )
        return [row["agent_id"] for row in rows]

    async def ranking(self, office_id: str | None, limit: int) -> list[asyncpg.Record]:
        return list(
            await self.conn.fetch(
                f"""
                SELECT r.agent_id, a.office_id, r.status, r.stars, r.positive_reviews_3m,
                       r.positive_reviews_6m, r.reviews_total, r.status_since
                  FROM ratings r JOIN agents a USING (agent_id)
                 WHERE r.visibility = 'public' AND ($1::text IS NULL OR a.office_id = $1)
                 ORDER BY {STATUS_ORDER}, r.stars DESC, r.positive_reviews_3m DESC, r.agent_id
                 LIMIT $2
                """,
                office_id,
                limit,
            )
        )

    async def forget_history(self) -> None:
        """Before a replay rebuilds it from the topics (ratings stay, to detect changes)."""
        await self.conn.execute("TRUNCATE reviews, agents")
