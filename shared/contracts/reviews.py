"""Published reviews: the public review stream."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from pydantic import Field, StrictInt

from shared.contracts.base import Contract, UtcDatetime
from shared.contracts.removals import RemovalReason

CATEGORIES: tuple[str, ...] = (
    "communication",
    "friendliness",
    "professionalism",
    "area_knowledge",
    "overall",
)
"""The five survey categories, each scored 1-5."""

POSITIVE_THRESHOLD = 3
"""HAR: a review is positive when every category scores at least 3 (docs/design.md §1.4)."""


class SurveyKind(StrEnum):
    TRANSACTION = "transaction"
    REMOVAL = "removal"


class Channel(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    IMPORT = "import"


class Scores(Contract):
    """One score 1-5 per category; all five are required, as JSON integers (not "5", not 4.5)."""

    communication: StrictInt = Field(ge=1, le=5, description="Communication.", examples=[5])
    friendliness: StrictInt = Field(ge=1, le=5, description="Friendliness of staff.", examples=[4])
    professionalism: StrictInt = Field(ge=1, le=5, description="Professionalism.", examples=[5])
    area_knowledge: StrictInt = Field(ge=1, le=5, description="Knowledge of area.", examples=[3])
    overall: StrictInt = Field(ge=1, le=5, description="Overall service.", examples=[4])

    def as_dict(self) -> dict[str, int]:
        return {category: getattr(self, category) for category in CATEGORIES}

    def is_positive(self, threshold: int = POSITIVE_THRESHOLD) -> bool:
        return is_positive(self.as_dict(), threshold)


def is_positive(scores: Mapping[str, int], threshold: int = POSITIVE_THRESHOLD) -> bool:
    """Positive means every category at or above the threshold: the one definition, which the
    reviews service routes by, scoring counts by and the directory shows by."""
    return min(map(scores.__getitem__, CATEGORIES)) >= threshold


class ReviewPublished(Contract):
    """`review.published.v1` on `reviews.published` (key agent_id)."""

    review_id: str = Field(min_length=1, max_length=64, description="Review id.")
    agent_id: str = Field(
        min_length=1, max_length=64, description="Reviewed agent.", examples=["A-1"]
    )
    transaction_id: str | None = Field(
        default=None, max_length=64, description="Transaction surveyed (null for removal surveys)."
    )
    survey: SurveyKind = Field(description="Only transaction surveys count for stars.")
    removal_reason: RemovalReason | None = Field(
        default=None, description="Reason of the removal, for removal surveys."
    )
    channel: Channel = Field(description="How the answers were collected.")
    submitted_at: UtcDatetime = Field(description="When the client submitted; windows use this.")
    published_at: UtcDatetime = Field(description="When moderation published it.")
    scores: Scores = Field(description="The five category scores.")
    positive: bool = Field(description="Every category >= 3 (consumers should recompute).")
    comment: str = Field(max_length=5000, description="The client's comment.")
    display_name: str | None = Field(default=None, max_length=100, description="Optional name.")
    agent_response: str | None = Field(default=None, max_length=5000, description="Agent's reply.")


class ReviewWithdrawn(Contract):
    """`review.withdrawn.v1` on `reviews.published` (key agent_id)."""

    review_id: str = Field(min_length=1, max_length=64, description="Withdrawn review.")
    agent_id: str = Field(min_length=1, max_length=64, description="Reviewed agent.")
    withdrawn_at: UtcDatetime = Field(description="When it was withdrawn.")
    reason: str = Field(min_length=1, max_length=1000, description="Why (moderator's words).")


class SurveyAnswered(Contract):
    """`survey.answered.v1` on `reviews.events` (internal, key invitation_id): the client (or a
    phone surveyor) answered, so the invitation is done: no reminder, no expiry."""

    invitation_id: str = Field(min_length=1, max_length=64, description="Answered invitation.")
    agent_id: str = Field(min_length=1, max_length=64, description="Reviewed agent.")
    review_id: str = Field(min_length=1, max_length=64, description="The review it produced.")
    channel: Channel = Field(description="email or phone.")
    answered_at: UtcDatetime = Field(description="When the answers were submitted.")
