"""asyncpg queries on the reviews schema; every method runs in the caller's transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from services.reviews.domain.disputes import Dispute, DisputeStatus
from services.reviews.domain.funnel import Outcome
from services.reviews.domain.model import (
    AGENT_VISIBLE,
    Agent,
    Decision,
    DecisionRecord,
    Invitation,
    Review,
    ReviewState,
)
from services.reviews.domain.signals import EarlierReview
from services.reviews.domain.visibility import PublicView, is_public
from shared.contracts.invitations import InvitationIssued
from shared.contracts.mls import AgentUpserted
from shared.contracts.participation import ParticipationChanged, ParticipationMode
from shared.db import one_row

_INVITATION_COLUMNS = """
    i.invitation_id, i.agent_id, i.transaction_id, i.lead_id, i.survey, i.removal_reason,
    i.channel, i.issued_at, i.expires_at, i.closed_reason, i.answered_at IS NOT NULL AS used,
    i.trust_flags
"""


@dataclass(frozen=True, slots=True)
class CodeLookup:
    """How a survey code is found: the hashes of a PIN or of a link token under the current
    and each retired pepper (design.md 3.5), and their column."""

    column: Literal["pin_hash", "token_hash"]
    values: list[str]


@dataclass(frozen=True, slots=True)
class TrustHistory:
    """What a submission's trust signals are computed from (`ReviewsRepository.trust_history`)."""

    earlier: list[EarlierReview]
    from_agent: bool
    """The agent used the API from the address the submission came from."""


_FAILURE_COUNTS = """(
    SELECT count(*) FILTER (WHERE address = $1) AS mine, count(*) AS everyone
      FROM code_failures WHERE failed_at > $2) AS failures"""


def _decision_columns(decisions: Sequence[DecisionRecord]) -> list[list[str]]:
    """Actors, roles, actions and reasons: the arrays the decision inserts unnest, in order."""
    return [
        [d.actor for d in decisions],
        [d.actor_role for d in decisions],
        [d.action for d in decisions],
        [d.reason for d in decisions],
    ]


def _review(row: asyncpg.Record | dict[str, Any]) -> Review:
    values: dict[str, Any] = dict(row)
    values["scores"] = json.loads(values["scores"])
    values["flags"] = list(values["flags"])
    values["signals"] = list(values.get("signals") or ())
    values["state"] = ReviewState(values["state"])
    return Review(**values)


def _dispute(row: asyncpg.Record) -> Dispute:
    values: dict[str, Any] = dict(row)
    values["status"] = DisputeStatus(values["status"])
    return Dispute(**values)


class ReviewsRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # roster

    async def upsert_agent(self, event: AgentUpserted, now: datetime) -> None:
        await self.conn.execute(
            """
            INSERT INTO agents (agent_id, name, email, active, updated_at)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (agent_id) DO UPDATE
               SET name = EXCLUDED.name, email = EXCLUDED.email, active = EXCLUDED.active,
                   updated_at = EXCLUDED.updated_at
            """,
            event.agent_id,
            event.name,
            str(event.email),
            event.active,
            now,
        )

    async def agent(self, agent_id: str) -> Agent | None:
        row = await self.conn.fetchrow(
            "SELECT agent_id, name, email, active FROM agents WHERE agent_id = $1", agent_id
        )
        return Agent(**dict(row)) if row else None

    # the public stream

    async def save_participation(self, event: ParticipationChanged) -> None:
        """The agent's latest mode; an older change arriving late (a replay) changes nothing."""
        await self.conn.execute(
            """
            INSERT INTO participation (agent_id, mode, changed_at) VALUES ($1, $2, $3)
            ON CONFLICT (agent_id) DO UPDATE SET mode = EXCLUDED.mode,
                                                 changed_at = EXCLUDED.changed_at
             WHERE participation.changed_at <= EXCLUDED.changed_at
            """,
            event.agent_id,
            event.mode.value,
            event.changed_at,
        )

    async def agent_is_public(self, agent_id: str, *, locked: bool = False) -> bool:
        """Whether the agent's reviews are shown publicly now. Takes the agent's public-stream
        lock until the transaction ends, so a publication and a change of the agent's
        visibility never interleave (one would miss the other's review).

        The lock and the read are two statements: under READ COMMITTED a statement reads the
        snapshot taken when it began, so a read in the locking statement would not see the
        visibility change committed while it waited for the lock (the soak found a review
        published as its agent went public missing from the public stream). `locked`: an
        earlier statement of the transaction took the lock (`insert_review(lock_public=True)`)."""
        if not locked:
            await self.conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('public:' || $1::text))", agent_id
            )
        row = await self.conn.fetchrow(
            """
            SELECT (SELECT mode FROM participation WHERE agent_id = $1) AS mode,
                   (SELECT active FROM agents WHERE agent_id = $1) AS active
            """,
            agent_id,
        )
        row = one_row(row)
        mode = ParticipationMode(row["mode"]) if row["mode"] else None
        return is_public(mode, row["active"])

    async def public_views(self, agent_id: str) -> list[PublicView]:
        """The agent's reviews that are, or may have to be, on the public stream (call it
        holding the agent's lock: `agent_is_public`)."""
        rows = await self.conn.fetch(
            """
            SELECT r.review_id, r.state, r.submitted_at, p.review_id IS NOT NULL AS shown
              FROM reviews r LEFT JOIN public_reviews p USING (review_id)
             WHERE r.agent_id = $1 AND (r.state = 'published' OR p.review_id IS NOT NULL)
            """,
            agent_id,
        )
        return [
            PublicView(r["review_id"], ReviewState(r["state"]), r["submitted_at"], r["shown"])
            for r in rows
        ]

    async def show(self, agent_id: str, review_ids: Sequence[str], at: datetime) -> None:
        """Record the reviews as shown on the public stream (holding the agent's lock)."""
        await self.conn.execute(
            """
            INSERT INTO public_reviews (review_id, agent_id, shown_since)
            SELECT unnest($2::text[]), $1, $3 ON CONFLICT DO NOTHING
            """,
            agent_id,
            list(review_ids),
            at,
        )

    async def take_down(self, review_ids: Sequence[str]) -> list[str]:
        """Record the reviews as no longer shown (holding the agent's lock); returns those that
        were shown."""
        rows = await self.conn.fetch(
            "DELETE FROM public_reviews WHERE review_id = ANY($1::text[]) RETURNING review_id",
            list(review_ids),
        )
        return [row["review_id"] for row in rows]

    async def reviews(self, review_ids: Sequence[str]) -> dict[str, Review]:
        rows = await self.conn.fetch(
            "SELECT * FROM reviews WHERE review_id = ANY($1::text[])", list(review_ids)
        )
        return {row["review_id"]: _review(row) for row in rows}

    # erasure

    async def erase_reviews_of(self, invitation_ids: Sequence[str], at: datetime) -> list[Review]:
        """Drop the comment and display name of the reviews of these invitations (their scores
        still count for the agent); returns the reviews as they are now. Erasing again finds
        nothing to do."""
        rows = await self.conn.fetch(
            """
            UPDATE reviews SET comment = '', display_name = NULL, erased_at = $2
             WHERE invitation_id = ANY($1::text[]) AND erased_at IS NULL
            RETURNING *
            """,
            list(invitation_ids),
            at,
        )
        return [_review(row) for row in rows]

    async def erase_from_outbox(self, review_ids: Sequence[str]) -> None:
        """The review events of these reviews still in the outbox lose the comment and display
        name too: unrelayed ones go out without them, relayed ones no longer hold them here.
        (A rare operation: it reads the review events of the outbox.)"""
        await self.conn.execute(
            """
            UPDATE outbox
               SET payload = convert_to(
                       (convert_from(payload, 'UTF8')::jsonb
                        || '{"comment": "", "display_name": null}'::jsonb)::text, 'UTF8')
             WHERE ce_type = 'review.published.v1'
               AND convert_from(payload, 'UTF8')::jsonb ->> 'review_id' = ANY($1::text[])
            """,
            list(review_ids),
        )

    # invitations

    async def add_invitation(self, event: InvitationIssued) -> bool:
        """False when already known: replays (same or new ce_id) change nothing."""
        status = await self.conn.execute(
            """
            INSERT INTO invitations (invitation_id, agent_id, transaction_id, lead_id, survey,
                                     removal_reason, channel, pin_hash, token_hash, issued_at,
                                     expires_at, trust_flags)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            ON CONFLICT DO NOTHING
            """,
            event.invitation_id,
            event.agent_id,
            event.transaction_id,
            event.lead_id,
            event.survey.value,
            event.removal_reason.value if event.removal_reason else None,
            event.channel.value,
            event.pin_hash,
            event.token_hash,
            event.issued_at,
            event.expires_at,
            list(event.trust_flags),
        )
        return bool(status.endswith(" 1"))

    # trust signals

    async def trust_history(
        self,
        agent_id: str,
        since: datetime,
        address_hash: str | None,
        address_since: datetime,
        *,
        limit: int = 500,
        excluding: str = "",
    ) -> TrustHistory:
        """What the trust signals compare a submission with, in one statement: the agent's
        reviews submitted after `since`, newest first (index reviews_by_agent), but `excluding`
        (a review sent again is not compared with itself); and whether the agent used the API
        from the submitting address (its keyed hash) after `address_since`."""
        row = one_row(
            await self.conn.fetchrow(
                """WITH earlier AS (
                       SELECT submitted_at, comment FROM reviews
                        WHERE agent_id = $1 AND submitted_at > $2 AND review_id <> $4
                        ORDER BY submitted_at DESC LIMIT $3)
                   SELECT ARRAY(SELECT submitted_at FROM earlier ORDER BY submitted_at DESC)
                              AS times,
                          ARRAY(SELECT comment FROM earlier ORDER BY submitted_at DESC)
                              AS comments,
                          $5::text IS NOT NULL AND EXISTS (
                              SELECT 1 FROM agent_addresses
                               WHERE agent_id = $1 AND address_hash = $5
                                 AND last_seen_at > $6) AS from_agent""",
                agent_id,
                since,
                limit,
                excluding,
                address_hash,
                address_since,
            )
        )
        return TrustHistory(
            [EarlierReview(*pair) for pair in zip(row["times"], row["comments"], strict=True)],
            row["from_agent"],
        )

    async def agent_seen_at(self, agent_id: str, address_hash: str, now: datetime) -> None:
        """Remember that the agent used the API from this address (its keyed hash); rewritten
        at most hourly, so an agent's every request does not write a row."""
        await self.conn.execute(
            """INSERT INTO agent_addresses (agent_id, address_hash, last_seen_at)
               VALUES ($1, $2, $3)
               ON CONFLICT (agent_id, address_hash) DO UPDATE SET last_seen_at = $3
               WHERE agent_addresses.last_seen_at < $3 - interval '1 hour'""",
            agent_id,
            address_hash,
            now,
        )

    async def prune_agent_addresses(self, before: datetime) -> int:
        status = await self.conn.execute(
            "DELETE FROM agent_addresses WHERE last_seen_at <= $1", before
        )
        return int(status.split()[-1])

    async def held_for_agent(self, agent_id: str, limit: int) -> list[tuple[str, datetime]]:
        """The agent's reviews with a moderator: ids and times only, never their content."""
        rows = await self.conn.fetch(
            """SELECT review_id, submitted_at FROM reviews
                WHERE agent_id = $1 AND state = 'moderation'
                ORDER BY submitted_at DESC LIMIT $2""",
            agent_id,
            limit,
        )
        return [(row["review_id"], row["submitted_at"]) for row in rows]

    async def close_invitation(self, invitation_id: str, at: datetime, reason: str) -> None:
        await self.conn.execute(
            """
            UPDATE invitations SET closed_at = $2, closed_reason = $3
             WHERE invitation_id = $1 AND closed_at IS NULL
            """,
            invitation_id,
            at,
            reason,
        )

    async def invitation_by_code(self, code: CodeLookup) -> Invitation | None:
        row = await self.conn.fetchrow(
            f"SELECT {_INVITATION_COLUMNS} FROM invitations i "
            f"WHERE i.{code.column} = ANY($1::text[]) LIMIT 1",
            code.values,
        )
        return Invitation(**dict(row)) if row else None

    async def invitation(self, invitation_id: str, *, lock: bool = False) -> Invitation | None:
        return await self._invitation_where("invitation_id", invitation_id, lock=lock)

    async def _invitation_where(
        self, column: str, value: str | None, *, lock: bool
    ) -> Invitation | None:
        row = await self.conn.fetchrow(
            f"SELECT {_INVITATION_COLUMNS} FROM invitations i WHERE i.{column} = $1"
            + (" FOR UPDATE" if lock else ""),
            value,
        )
        return Invitation(**dict(row)) if row else None

    # reviews

    async def insert_review(
        self,
        review: Review,
        decisions: Sequence[DecisionRecord],
        *,
        at: datetime,
        notify: bool,
        lock_public: bool = False,
    ) -> Agent | None:
        """A new review with its first decisions, in one statement. `notify`: the review is the
        agent's to see; it is stored as told when the roster knows the agent, whom it returns
        (to be told). Agents the roster has not named yet are told when it does. `lock_public`:
        the statement also takes the agent's public-stream lock (a review published at once
        then reads the agent's visibility without a round trip for the lock)."""
        row = await self.conn.fetchrow(
            """
            WITH locked AS (
                SELECT pg_advisory_xact_lock(hashtext('public:' || $3::text)) WHERE $25),
            agent AS (
                SELECT agent_id, name, email, active FROM agents WHERE agent_id = $3 AND $19),
            review AS (
                INSERT INTO reviews (review_id, invitation_id, agent_id, transaction_id, survey,
                                     removal_reason, channel, submitted_at, scores, positive,
                                     comment, display_name, flags, state, response_due_at,
                                     published_at, entered_by, agent_notified_at, signals)
                SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                       $17, (SELECT $18::timestamptz FROM agent), $24
                RETURNING review_id),
            answered AS (
                UPDATE invitations SET answered_at = $8 WHERE invitation_id = $2),
            decisions AS (
                INSERT INTO review_decisions (review_id, at, actor, actor_role, action, reason)
                SELECT review.review_id, $18, actor, actor_role, action, reason
                  FROM review,
                       unnest($20::text[], $21::text[], $22::text[], $23::text[])
                       WITH ORDINALITY AS d(actor, actor_role, action, reason, position)
                 ORDER BY position)
            -- the outer side is always read, so the lock is taken whether or not the agent is
            SELECT agent.* FROM (SELECT count(*) FROM locked) AS lock LEFT JOIN agent ON true
            """,
            review.review_id,
            review.invitation_id,
            review.agent_id,
            review.transaction_id,
            review.survey,
            review.removal_reason,
            review.channel,
            review.submitted_at,
            json.dumps(review.scores),
            review.positive,
            review.comment,
            review.display_name,
            review.flags,
            review.state.value,
            review.response_due_at,
            review.published_at,
            review.entered_by,
            at,
            notify,
            *_decision_columns(decisions),
            review.signals,
            lock_public,
        )
        return Agent(**dict(row)) if row and row["agent_id"] is not None else None

    async def review(self, review_id: str, *, lock: bool = False) -> Review | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM reviews WHERE review_id = $1" + (" FOR UPDATE" if lock else ""),
            review_id,
        )
        return _review(row) if row else None

    async def save_state(
        self,
        review_id: str,
        state: ReviewState,
        *,
        response_due_at: datetime | None = None,
        published_at: datetime | None = None,
    ) -> None:
        await self.conn.execute(
            """
            UPDATE reviews SET state = $2, response_due_at = $3,
                               published_at = COALESCE(published_at, $4)
             WHERE review_id = $1
            """,
            review_id,
            state.value,
            response_due_at,
            published_at,
        )

    async def save_resubmission(
        self,
        review_id: str,
        *,
        scores: dict[str, int],
        positive: bool,
        comment: str,
        display_name: str | None,
        flags: Sequence[str],
        signals: Sequence[str],
        at: datetime,
    ) -> None:
        """The client's edited answers replace the rejected ones (counted: once only)."""
        await self.conn.execute(
            """
            UPDATE reviews SET scores = $2::jsonb, positive = $3, comment = $4, display_name = $5,
                               flags = $6::text[], signals = $7::text[],
                               resubmissions = resubmissions + 1, resubmitted_at = $8
             WHERE review_id = $1
            """,
            review_id,
            json.dumps(scores),
            positive,
            comment,
            display_name,
            list(flags),
            list(signals),
            at,
        )

    async def save_response(self, review_id: str, text: str, at: datetime) -> None:
        await self.conn.execute(
            "UPDATE reviews SET agent_response = $2, responded_at = $3 WHERE review_id = $1",
            review_id,
            text,
            at,
        )

    async def mark_notified(self, review_id: str, at: datetime) -> None:
        await self.conn.execute(
            "UPDATE reviews SET agent_notified_at = $2 WHERE review_id = $1", review_id, at
        )

    async def record_decisions(
        self, review_id: str, at: datetime, decisions: Sequence[DecisionRecord]
    ) -> None:
        """Append to the review's decision record, in order, one statement for all."""
        if not decisions:
            return
        await self.conn.execute(
            """
            INSERT INTO review_decisions (review_id, at, actor, actor_role, action, reason)
            SELECT $1, $2, actor, actor_role, action, reason
              FROM unnest($3::text[], $4::text[], $5::text[], $6::text[])
                   WITH ORDINALITY AS d(actor, actor_role, action, reason, position)
             ORDER BY position
            """,
            review_id,
            at,
            *_decision_columns(decisions),
        )

    async def decisions(self, review_id: str) -> list[Decision]:
        rows = await self.conn.fetch(
            """
            SELECT at, actor, actor_role, action, reason FROM review_decisions
             WHERE review_id = $1 ORDER BY decision_id
            """,
            review_id,
        )
        return [Decision(**dict(row)) for row in rows]

    async def moderation_queue(self, limit: int) -> list[Review]:
        rows = await self.conn.fetch(
            "SELECT * FROM reviews WHERE state = 'moderation' ORDER BY submitted_at LIMIT $1", limit
        )
        return [_review(row) for row in rows]

    async def reviews_of_agent(self, agent_id: str, limit: int) -> list[Review]:
        """What the agent may see (AGENT_VISIBLE)."""
        rows = await self.conn.fetch(
            """
            SELECT * FROM reviews
             WHERE agent_id = $1 AND state = ANY($3::text[])
             ORDER BY submitted_at DESC LIMIT $2
            """,
            agent_id,
            limit,
            sorted(state.value for state in AGENT_VISIBLE),
        )
        return [_review(row) for row in rows]

    async def due_for_publication(self, now: datetime, limit: int) -> list[Review]:
        rows = await self.conn.fetch(
            """
            SELECT * FROM reviews
             WHERE state = 'awaiting_response' AND response_due_at <= $1
             ORDER BY response_due_at LIMIT $2
               FOR UPDATE SKIP LOCKED
            """,
            now,
            limit,
        )
        return [_review(row) for row in rows]

    async def waiting_for_agent_notice(self, agent_id: str) -> list[Review]:
        rows = await self.conn.fetch(
            """
            SELECT * FROM reviews
             WHERE agent_id = $1 AND agent_notified_at IS NULL
               AND state IN ('awaiting_response', 'published')
             ORDER BY submitted_at FOR UPDATE
            """,
            agent_id,
        )
        return [_review(row) for row in rows]

    # the agent's funnel (docs/design.md 1.10)

    async def funnel(
        self, agent_id: str, start: datetime, end: datetime
    ) -> tuple[int, list[Outcome]]:
        """Invitations for closings issued to the agent's clients in [start, end) (not those
        cancelled for a corrected email: their replacement counts), and the outcome of each
        one answered."""
        rows = await self.conn.fetch(
            """SELECT r.state, r.positive, p.review_id IS NOT NULL AS shown
                 FROM invitations i
                 LEFT JOIN reviews r ON r.invitation_id = i.invitation_id
                 LEFT JOIN public_reviews p ON p.review_id = r.review_id
                WHERE i.agent_id = $1 AND i.survey = 'transaction'
                  AND i.issued_at >= $2 AND i.issued_at < $3
                  AND i.closed_reason IS DISTINCT FROM 'wrong_email'""",
            agent_id,
            start,
            end,
        )
        outcomes = [
            Outcome(ReviewState(row["state"]), row["positive"], row["shown"])
            for row in rows
            if row["state"] is not None
        ]
        return len(rows), outcomes

    # disputes (docs/design.md 1.10)

    async def dispute_of(self, review_id: str) -> Dispute | None:
        row = await self.conn.fetchrow("SELECT * FROM disputes WHERE review_id = $1", review_id)
        return _dispute(row) if row else None

    async def disputes_of(self, review_ids: Sequence[str]) -> dict[str, Dispute]:
        rows = await self.conn.fetch(
            "SELECT * FROM disputes WHERE review_id = ANY($1::text[])", list(review_ids)
        )
        return {row["review_id"]: _dispute(row) for row in rows}

    async def save_dispute(self, dispute: Dispute) -> None:
        """Insert a new dispute, or store its answer (the review's row lock serialises both)."""
        await self.conn.execute(
            """
            INSERT INTO disputes (dispute_id, review_id, agent_id, reason, opened_at,
                                  answer_due_at, status, resolved_at, resolved_by, resolution)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (dispute_id) DO UPDATE
               SET status = EXCLUDED.status, resolved_at = EXCLUDED.resolved_at,
                   resolved_by = EXCLUDED.resolved_by, resolution = EXCLUDED.resolution
            """,
            dispute.dispute_id,
            dispute.review_id,
            dispute.agent_id,
            dispute.reason,
            dispute.opened_at,
            dispute.answer_due_at,
            dispute.status.value,
            dispute.resolved_at,
            dispute.resolved_by,
            dispute.resolution,
        )

    async def open_disputes(self, limit: int) -> list[tuple[Dispute, Review]]:
        """The moderators' dispute queue: open disputes, oldest first, each with its review."""
        rows = await self.conn.fetch(
            """
            SELECT d.dispute_id, d.review_id AS d_review_id, d.agent_id AS d_agent_id,
                   d.reason AS d_reason, d.opened_at, d.answer_due_at, d.status AS d_status,
                   d.resolved_at, d.resolved_by, d.resolution, r.*
              FROM disputes d JOIN reviews r ON r.review_id = d.review_id
             WHERE d.status = 'open' ORDER BY d.opened_at LIMIT $1
            """,
            limit,
        )
        found = []
        for row in rows:
            values = dict(row)
            dispute = Dispute(
                dispute_id=values.pop("dispute_id"),
                review_id=values.pop("d_review_id"),
                agent_id=values.pop("d_agent_id"),
                reason=values.pop("d_reason"),
                opened_at=values.pop("opened_at"),
                answer_due_at=values.pop("answer_due_at"),
                status=DisputeStatus(values.pop("d_status")),
                resolved_at=values.pop("resolved_at"),
                resolved_by=values.pop("resolved_by"),
                resolution=values.pop("resolution"),
            )
            found.append((dispute, _review(values)))
        return found

    # wrong codes

    async def lock_code_failures(self, address: str) -> None:
        """Until the transaction ends: one wrong code from this address is judged at a time."""
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('code-failures:' || $1::text))", address
        )

    async def code_failures(self, address: str, since: datetime) -> tuple[int, int]:
        """(failures from this address, failures from everywhere) since the instant."""
        row = await self.conn.fetchrow(
            f"SELECT mine, everyone FROM {_FAILURE_COUNTS}", address, since
        )
        row = one_row(row)
        return int(row["mine"]), int(row["everyone"])

    async def code_failures_and_invitation(
        self, address: str, since: datetime, code: CodeLookup
    ) -> tuple[int, int, Invitation | None]:
        """`code_failures`, and the invitation with this code locked for a submission, in one
        statement. `used` is a column of the locked row: FOR UPDATE returns the row as a
        concurrent submission left it when it committed."""
        row = await self.conn.fetchrow(
            f"""
            WITH invitation AS (
                SELECT {_INVITATION_COLUMNS} FROM invitations i
                 WHERE i.{code.column} = ANY($3::text[]) LIMIT 1 FOR UPDATE)
            SELECT mine, everyone, invitation.* FROM {_FAILURE_COUNTS}
              LEFT JOIN invitation ON true
            """,
            address,
            since,
            code.values,
        )
        row = one_row(row)
        values = dict(row)
        mine, everyone = int(values.pop("mine")), int(values.pop("everyone"))
        return mine, everyone, Invitation(**values) if values["invitation_id"] else None

    async def add_code_failure(self, address: str, at: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO code_failures (address, failed_at) VALUES ($1, $2)", address, at
        )

    async def prune_code_failures(self, before: datetime) -> int:
        status = await self.conn.execute("DELETE FROM code_failures WHERE failed_at <= $1", before)
        return int(status.split()[-1])
