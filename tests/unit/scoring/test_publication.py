"""What leaves the system: visibility by participation mode and roster status (SYSTEM.md §3
"Participation"; docs/design.md 1.7), and the public form of a rating."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.scoring.domain.policy import DEFAULT_POLICY, Rating, ReviewFact, evaluate
from services.scoring.domain.publication import public_rating, visibility_of
from shared.contracts.participation import ParticipationMode
from shared.contracts.ratings import Visibility
from shared.contracts.reviews import CATEGORIES

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
NUMBERS = (
    "stars",
    "status",
    "status_since",
    "next_review_at",
    "positive_reviews_3m",
    "positive_reviews_6m",
    "reviews_total",
    "category_averages",
)


def rated_with_reviews() -> Rating:
    history = [
        ReviewFact(f"R{n}", NOW - timedelta(days=n + 1), dict.fromkeys(CATEGORIES, 5))
        for n in range(5)
    ]
    return evaluate(history, date(2024, 1, 15), NOW, DEFAULT_POLICY)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (ParticipationMode.OPT_IN_PUBLIC, Visibility.PUBLIC),
        (ParticipationMode.OPT_IN_HIDDEN, Visibility.HIDDEN),
        (ParticipationMode.OPT_OUT, Visibility.OPTED_OUT),
    ],
)
def test_an_active_agent_s_visibility_is_their_mode_s(
    mode: ParticipationMode, expected: Visibility
) -> None:
    assert visibility_of(mode, active=True) is expected


def test_an_inactive_public_agent_is_hidden() -> None:
    assert visibility_of(ParticipationMode.OPT_IN_PUBLIC, active=False) is Visibility.HIDDEN


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (ParticipationMode.OPT_IN_HIDDEN, Visibility.HIDDEN),
        (ParticipationMode.OPT_OUT, Visibility.OPTED_OUT),
    ],
)
def test_leaving_the_mls_never_makes_a_non_public_agent_more_visible_nor_hides_an_opt_out(
    mode: ParticipationMode, expected: Visibility
) -> None:
    assert visibility_of(mode, active=False) is expected


def test_an_inactive_agent_s_rating_leaves_with_every_number_null() -> None:
    rating = rated_with_reviews()
    visibility = visibility_of(ParticipationMode.OPT_IN_PUBLIC, active=False)
    event = public_rating("A-1", rating, visibility, NOW)
    assert event.visibility is Visibility.HIDDEN
    assert all(getattr(event, field) is None for field in NUMBERS)
