"""The dashboard's numbers: what keeps the status, what the next star and gold take."""

from __future__ import annotations

from datetime import UTC, datetime

from services.portal.domain import standing as portal
from services.portal.domain.standing import CountedReview, counted, next_star, standing
from services.scoring.domain.policy import DEFAULT_POLICY

NOW = datetime(2027, 3, 1, tzinfo=UTC)


def test_the_dashboard_uses_the_same_thresholds_as_the_scoring_policy() -> None:
    p = DEFAULT_POLICY
    assert p.version == portal.POLICY_VERSION
    assert p.star_thresholds == portal.STAR_THRESHOLDS
    assert (
        p.stars_window_months,
        p.silver_window_months,
        p.gold_window_months,
    ) == (portal.STARS_WINDOW_MONTHS, portal.SILVER_WINDOW_MONTHS, portal.GOLD_WINDOW_MONTHS)
    assert (
        p.silver_min_positive,
        p.gold_min_positive,
    ) == (portal.SILVER_MIN_POSITIVE, portal.GOLD_MIN_POSITIVE)
    assert p.gold_min_membership_months == portal.GOLD_MIN_MEMBERSHIP_MONTHS


def test_the_next_star_says_how_many_more_positive_reviews() -> None:
    assert next_star(0) == portal.Goal("1", 2, 3)
    assert next_star(4) == portal.Goal("3", 1, 3)
    assert next_star(8) is None


def test_silver_is_kept_by_the_positive_reviews_inside_the_current_period() -> None:
    rating = {
        "status": "silver",
        "stars": 1,
        "positive_reviews_3m": 3,
        "positive_reviews_6m": 5,
        "visibility": "hidden",
        "explanation": {
            "periods": [
                {"status": "silver", "start": "2027-01-10T00:00:00Z", "end": "2027-04-10T00:00:00Z"}
            ],
            "next_change_at": "2027-03-12T00:00:00Z",
        },
    }
    reviews = [
        CountedReview(datetime(2027, 1, 9, tzinfo=UTC), True),  # before the period
        CountedReview(datetime(2027, 1, 20, tzinfo=UTC), True),
        CountedReview(datetime(2027, 2, 20, tzinfo=UTC), True),
        CountedReview(datetime(2027, 2, 21, tzinfo=UTC), False),
    ]
    s = standing(rating, reviews, NOW)
    assert s.keeping is not None
    assert (s.keeping.positives, s.keeping.more, s.keeping.period_end.day) == (2, 2, 10)
    assert s.silver is None
    assert s.gold == portal.Goal("gold", 3, 6)
    assert s.next_change_at == datetime(2027, 3, 12, tzinfo=UTC)


def test_only_published_transaction_reviews_count() -> None:
    listed = [
        {
            "status": "published",
            "survey": "transaction",
            "positive": True,
            "submitted_at": "2027-01-01T00:00:00Z",
        },
        {
            "status": "published",
            "survey": "removal",
            "positive": True,
            "submitted_at": "2027-01-01T00:00:00Z",
        },
        {
            "status": "withdrawn",
            "survey": "transaction",
            "positive": True,
            "submitted_at": "2027-01-01T00:00:00Z",
        },
        {
            "status": "awaiting_response",
            "survey": "transaction",
            "positive": False,
            "submitted_at": "2027-01-01T00:00:00Z",
        },
    ]
    assert counted(listed) == [CountedReview(datetime(2027, 1, 1, tzinfo=UTC), True)]


def test_an_agent_without_status_is_told_what_silver_takes() -> None:
    s = standing({"status": "none", "positive_reviews_3m": 1, "explanation": None}, [], NOW)
    assert s.keeping is None
    assert s.silver == portal.Goal("silver", 3, 3)
