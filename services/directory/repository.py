"""SQL of the directory's own schema: the read model's writes (set-based, idempotent) and the
queries of the public pages (every one on an index)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.directory.domain.listing import SortKey, status_rank
from services.directory.domain.profile import PublicAgent, PublicReview
from services.directory.domain.read_model import ReviewCopy
from shared.contracts.ratings import RatingUpdated, Status
from shared.contracts.reviews import CATEGORIES, is_positive

SHOWN = "r.visibility = 'public' AND a.active"
"""Who any page may show: a public rating and an active roster entry (both required)."""

AGENT_COLUMNS = """a.agent_id, a.name, a.office_id, r.stars, r.status, r.status_since,
    r.positive_reviews_3m, r.reviews_total, r.category_averages, r.as_of"""


def _agent(row: asyncpg.Record) -> PublicAgent:
    return PublicAgent(
        agent_id=row["agent_id"],
        name=row["name"],
        office_id=row["office_id"],
        stars=row["stars"] or 0,
        status=Status(row["status"] or "none"),
        status_since=row["status_since"],
        positive_reviews_3m=row["positive_reviews_3m"] or 0,
        reviews_total=row["reviews_total"] or 0,
        category_averages=json.loads(row["category_averages"] or "{}"),
        as_of=row["as_of"],
    )


def _review(row: asyncpg.Record) -> PublicReview:
    return PublicReview(
        review_id=row["review_id"],
        survey=row["survey"],
        submitted_at=row["submitted_at"],
        published_at=row["published_at"],
        updated_at=row["updated_at"],
        scores={category: row[category] for category in CATEGORIES},
        positive=row["positive"],
        comment=row["comment"],
        display_name=row["display_name"],
        agent_response=row["agent_response"],
    )


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class DirectoryRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # writes

    async def save_agent(self, agent_id: str, name: str, office_id: str, active: bool) -> None:
        await self.conn.execute(
            """
            INSERT INTO agents (agent_id, name, office_id, active) VALUES ($1, $2, $3, $4)
            ON CONFLICT (agent_id) DO UPDATE
               SET name = excluded.name, office_id = excluded.office_id, active = excluded.active
            """,
            agent_id,
            name,
            office_id,
            active,
        )

    async def save_ratings(self, ratings: Sequence[RatingUpdated]) -> None:
        """Upsert each agent's rating unless a newer one is stored (a replayed older rating
        never overwrites a later one). A rating that is not public carries no numbers."""
        if not ratings:
            return
        rows = []
        for r in ratings:
            public = r.visibility.value == "public"
            rows.append(
                (
                    r.agent_id,
                    r.as_of,
                    r.visibility.value,
                    r.policy_version,
                    r.stars if public else None,
                    r.status.value if public and r.status else None,
                    status_rank(r.status) if public else None,
                    r.status_since if public else None,
                    r.positive_reviews_3m if public else None,
                    r.positive_reviews_6m if public else None,
                    r.reviews_total if public else None,
                    json.dumps(r.category_averages) if public and r.category_averages else None,
                )
            )
        await self.conn.executemany(
            """
            INSERT INTO ratings (agent_id, as_of, visibility, policy_version, stars, status,
                                 status_rank, status_since, positive_reviews_3m,
                                 positive_reviews_6m, reviews_total, category_averages)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb)
            ON CONFLICT (agent_id) DO UPDATE
               SET as_of = excluded.as_of, visibility = excluded.visibility,
                   policy_version = excluded.policy_version, stars = excluded.stars,
                   status = excluded.status, status_rank = excluded.status_rank,
                   status_since = excluded.status_since,
                   positive_reviews_3m = excluded.positive_reviews_3m,
                   positive_reviews_6m = excluded.positive_reviews_6m,
                   reviews_total = excluded.reviews_total,
                   category_averages = excluded.category_averages
             WHERE ratings.as_of <= excluded.as_of
            """,
            rows,
        )

    async def save_reviews(self, copies: Sequence[ReviewCopy]) -> None:
        if not copies:
            return
        rows = []
        for copy in copies:
            e = copy.event
            scores = e.scores.as_dict()
            rows.append(
                (
                    e.review_id,
                    e.agent_id,
                    e.survey.value,
                    e.submitted_at,
                    e.published_at,
                    copy.updated_at,
                    *(scores[c] for c in CATEGORIES),
                    is_positive(scores),
                    e.comment,
                    e.display_name,
                    e.agent_response,
                )
            )
        await self.conn.executemany(
            """
            INSERT INTO reviews (review_id, agent_id, survey, submitted_at, published_at,
                                 updated_at, communication, friendliness, professionalism,
                                 area_knowledge, overall, positive, comment, display_name,
                                 agent_response)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
            ON CONFLICT (review_id) DO UPDATE
               SET agent_id = excluded.agent_id, survey = excluded.survey,
                   submitted_at = excluded.submitted_at, published_at = excluded.published_at,
                   updated_at = excluded.updated_at, communication = excluded.communication,
                   friendliness = excluded.friendliness,
                   professionalism = excluded.professionalism,
                   area_knowledge = excluded.area_knowledge, overall = excluded.overall,
                   positive = excluded.positive, comment = excluded.comment,
                   display_name = excluded.display_name, agent_response = excluded.agent_response
            """,
            rows,
        )

    async def delete_reviews(self, review_ids: Sequence[str]) -> None:
        if review_ids:
            await self.conn.execute(
                "DELETE FROM reviews WHERE review_id = ANY($1::text[])", list(review_ids)
            )

    # rebuilds

    async def rebuilt_before(self) -> bool:
        return bool(await self.conn.fetchval("SELECT EXISTS (SELECT 1 FROM rebuilds)"))

    async def record_rebuild(self, group_id: str, at: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO rebuilds (group_id, started_at) VALUES ($1, $2)", group_id, at
        )

    # the pages

    async def search(
        self,
        *,
        office_id: str | None,
        name: str | None,
        after: SortKey | None,
        limit: int,
    ) -> list[PublicAgent]:
        """Shown agents in the search order, `limit` of them after the cursor."""
        where = [SHOWN]
        args: list[Any] = []
        if office_id:
            args.append(office_id)
            where.append(f"a.office_id = ${len(args)}")
        if name:
            args.append(_like_prefix(name))
            n = len(args)
            where.append(f"(lower(a.name) LIKE ${n} OR lower(a.name) LIKE '% ' || ${n})")
        if after is not None:
            args.extend(
                [
                    after.status_rank_desc,
                    after.stars_desc,
                    after.positive_3m_desc,
                    after.name,
                    after.agent_id,
                ]
            )
            n = len(args)
            where.append(
                "(-r.status_rank, -r.stars, -r.positive_reviews_3m, a.name, a.agent_id)"
                f" > (${n - 4}::int, ${n - 3}::int, ${n - 2}::int, ${n - 1}::text, ${n}::text)"
            )
        args.append(limit)
        rows = await self.conn.fetch(
            f"""
            SELECT {AGENT_COLUMNS}
              FROM agents a JOIN ratings r USING (agent_id)
             WHERE {" AND ".join(where)}
             ORDER BY -r.status_rank, -r.stars, -r.positive_reviews_3m, a.name, a.agent_id
             LIMIT ${len(args)}
            """,
            *args,
        )
        return [_agent(row) for row in rows]

    async def shown_agent(self, agent_id: str) -> PublicAgent | None:
        if "\x00" in agent_id:  # no stored id has one, and PostgreSQL text refuses it
            return None
        row = await self.conn.fetchrow(
            f"""
            SELECT {AGENT_COLUMNS}
              FROM agents a JOIN ratings r USING (agent_id)
             WHERE a.agent_id = $1 AND {SHOWN}
            """,
            agent_id,
        )
        return _agent(row) if row else None

    async def reviews_of(self, agent_id: str) -> list[PublicReview]:
        """The agent's public reviews, newest first."""
        rows = await self.conn.fetch(
            """
            SELECT * FROM reviews WHERE agent_id = $1
             ORDER BY submitted_at DESC, review_id
            """,
            agent_id,
        )
        return [_review(row) for row in rows]

    async def review_count(self, agent_id: str) -> int:
        count: int = await self.conn.fetchval(
            "SELECT count(*) FROM reviews WHERE agent_id = $1", agent_id
        )
        return count
