"""Agents' ratings: the public rating stream."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from shared.contracts.base import Contract, UtcDatetime


class Visibility(StrEnum):
    PUBLIC = "public"
    HIDDEN = "hidden"
    OPTED_OUT = "opted_out"


class Status(StrEnum):
    NONE = "none"
    SILVER = "silver"
    GOLD = "gold"


class RatingUpdated(Contract):
    """`rating.updated.v1` on `ratings` (compacted, key agent_id). Numbers are null unless public."""

    agent_id: str = Field(min_length=1, max_length=64, description="Agent id.", examples=["A-1"])
    as_of: UtcDatetime = Field(description="Instant the rating describes.")
    visibility: Visibility = Field(description="public, hidden (agent only) or opted_out.")
    policy_version: str = Field(
        description="Scoring policy that produced it.", examples=["2026-11.1"]
    )
    stars: int | None = Field(default=None, ge=0, le=5, description="0-5 stars.")
    status: Status | None = Field(default=None, description="none, silver or gold.")
    status_since: UtcDatetime | None = Field(default=None, description="Start of the status.")
    next_review_at: UtcDatetime | None = Field(
        default=None, description="End of the current status period."
    )
    positive_reviews_3m: int | None = Field(default=None, ge=0, description="Positive, 3 months.")
    positive_reviews_6m: int | None = Field(default=None, ge=0, description="Positive, 6 months.")
    reviews_total: int | None = Field(default=None, ge=0, description="Counted reviews, all time.")
    category_averages: dict[str, float] | None = Field(
        default=None, description="Average score per category over counted reviews."
    )
