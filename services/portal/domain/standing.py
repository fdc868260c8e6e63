"""An agent's standing in numbers a dashboard can say in plain words: what the stars and status
rest on, what keeps the status at the end of its period and what the next star and gold take.

Pure: the rating (scoring's explanation) and the agent's reviews come in, `now` is passed.
The thresholds are scoring's default policy (AgentTracker); tests/unit/portal checks that
they are the same numbers, so a policy change cannot leave the dashboard saying old ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

STAR_THRESHOLDS: tuple[tuple[int, int], ...] = ((2, 1), (4, 2), (5, 3), (7, 4), (8, 5))
"""(positive reviews in the 3 months up to now, stars)."""
STARS_WINDOW_MONTHS = 3
SILVER_MIN_POSITIVE = 4
SILVER_WINDOW_MONTHS = 3
GOLD_MIN_POSITIVE = 8
GOLD_WINDOW_MONTHS = 6
GOLD_MIN_MEMBERSHIP_MONTHS = 6
POLICY_VERSION = "2026-11.1"


@dataclass(frozen=True)
class CountedReview:
    """A review the policy counts: published, not withdrawn, from a transaction survey."""

    submitted_at: datetime
    positive: bool


@dataclass(frozen=True)
class Keeping:
    """What keeps the current status when its period ends."""

    status: str
    period_start: datetime
    period_end: datetime
    positives: int
    needed: int

    @property
    def more(self) -> int:
        return max(0, self.needed - self.positives)


@dataclass(frozen=True)
class Goal:
    """`more` positive reviews within `window_months` reach `reward` (stars or a status)."""

    reward: str
    more: int
    window_months: int


@dataclass(frozen=True)
class Standing:
    visibility: str
    stars: int
    status: str
    status_since: datetime | None
    positives_3m: int
    positives_6m: int
    reviews_total: int
    next_change_at: datetime | None
    keeping: Keeping | None
    next_star: Goal | None
    silver: Goal | None
    gold: Goal | None


def _instant(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def counted(reviews: Iterable[Mapping[str, Any]]) -> list[CountedReview]:
    """The reviews (as the reviews service lists them) that the scoring policy counts."""
    return [
        CountedReview(_instant(r["submitted_at"]) or datetime.min, bool(r["positive"]))
        for r in reviews
        if r.get("status") == "published" and r.get("survey") == "transaction"
    ]


def next_star(positives_3m: int) -> Goal | None:
    for minimum, stars in STAR_THRESHOLDS:
        if positives_3m < minimum:
            return Goal(str(stars), minimum - positives_3m, STARS_WINDOW_MONTHS)
    return None


def standing(
    rating: Mapping[str, Any], reviews: Iterable[CountedReview], now: datetime
) -> Standing:
    """`rating`: scoring's `GET /agents/{id}/rating` for the agent's own token."""
    explanation = rating.get("explanation") or {}
    periods = explanation.get("periods") or []
    status = rating.get("status") or "none"
    positives_3m = rating.get("positive_reviews_3m") or 0
    positives_6m = rating.get("positive_reviews_6m") or 0
    keeping = None
    if periods and status in ("silver", "gold"):
        current = periods[-1]
        start, end = _instant(current["start"]), _instant(current["end"])
        if start is not None and end is not None:
            in_period = sum(1 for r in reviews if r.positive and start < r.submitted_at <= now)
            needed = GOLD_MIN_POSITIVE if status == "gold" else SILVER_MIN_POSITIVE
            keeping = Keeping(status, start, end, in_period, needed)
    silver = (
        Goal("silver", SILVER_MIN_POSITIVE - positives_3m, SILVER_WINDOW_MONTHS)
        if status == "none"
        else None
    )
    gold = (
        Goal("gold", max(0, GOLD_MIN_POSITIVE - positives_6m), GOLD_WINDOW_MONTHS)
        if status != "gold"
        else None
    )
    return Standing(
        visibility=rating.get("visibility") or "hidden",
        stars=rating.get("stars") or 0,
        status=status,
        status_since=_instant(rating.get("status_since")),
        positives_3m=positives_3m,
        positives_6m=positives_6m,
        reviews_total=rating.get("reviews_total") or 0,
        next_change_at=_instant(explanation.get("next_change_at") or rating.get("next_review_at")),
        keeping=keeping,
        next_star=next_star(positives_3m),
        silver=silver,
        gold=gold,
    )
