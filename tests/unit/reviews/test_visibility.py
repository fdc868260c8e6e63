"""The public stream's all-or-none rule (HAR): which reviews to show and to take down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.reviews.domain.model import ReviewState
from services.reviews.domain.visibility import (
    PublicChanges,
    PublicView,
    is_public,
    reconcile,
    shows_on_publication,
)
from shared.contracts.participation import ParticipationMode

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def view(review_id: str, state: ReviewState, day: int, *, shown: bool = False) -> PublicView:
    return PublicView(review_id, state, T0 + timedelta(days=day), shown)


@pytest.mark.parametrize(
    ("mode", "active", "public"),
    [
        (ParticipationMode.OPT_IN_PUBLIC, True, True),
        (ParticipationMode.OPT_IN_PUBLIC, None, True),
        (ParticipationMode.OPT_IN_PUBLIC, False, False),
        (ParticipationMode.OPT_IN_HIDDEN, True, False),
        (ParticipationMode.OPT_OUT, True, False),
        (None, True, False),
        (None, None, False),
    ],
)
def test_only_an_active_agent_who_chose_public_is_public(
    mode: ParticipationMode | None, active: bool | None, public: bool
) -> None:
    assert is_public(mode, active) is public


def test_an_agent_becoming_public_shows_every_published_review_oldest_first() -> None:
    reviews = [
        view("late", ReviewState.PUBLISHED, 9),
        view("early", ReviewState.PUBLISHED, 1),
        view("middle", ReviewState.PUBLISHED, 5),
    ]
    assert reconcile(True, reviews) == PublicChanges(show=("early", "middle", "late"))


def test_reviews_not_published_are_never_shown() -> None:
    reviews = [
        view("waiting", ReviewState.AWAITING_RESPONSE, 1),
        view("moderation", ReviewState.MODERATION, 2),
        view("rejected", ReviewState.REJECTED, 3),
        view("withdrawn", ReviewState.WITHDRAWN, 4),
    ]
    assert not reconcile(True, reviews)


def test_an_agent_stopping_being_public_takes_down_every_shown_review() -> None:
    reviews = [
        view("b", ReviewState.PUBLISHED, 2, shown=True),
        view("a", ReviewState.PUBLISHED, 1, shown=True),
        view("never-shown", ReviewState.PUBLISHED, 3),
    ]
    assert reconcile(False, reviews) == PublicChanges(take_down=("a", "b"))


def test_a_public_agent_whose_stream_is_complete_changes_nothing() -> None:
    reviews = [view("a", ReviewState.PUBLISHED, 1, shown=True)]
    assert reconcile(True, reviews) == PublicChanges()
    assert not reconcile(False, [])


def test_reconciling_shows_only_what_is_missing_and_takes_down_what_is_no_longer_published() -> (
    None
):
    reviews = [
        view("shown", ReviewState.PUBLISHED, 1, shown=True),
        view("missing", ReviewState.PUBLISHED, 2),
        view("withdrawn-but-shown", ReviewState.WITHDRAWN, 3, shown=True),
    ]
    assert reconcile(True, reviews) == PublicChanges(
        show=("missing",), take_down=("withdrawn-but-shown",)
    )


def test_reviews_of_one_instant_are_shown_in_a_stable_order() -> None:
    reviews = [view("b", ReviewState.PUBLISHED, 1), view("a", ReviewState.PUBLISHED, 1)]
    assert reconcile(True, reviews).show == ("a", "b")


@pytest.mark.parametrize(
    ("public", "state", "shown"),
    [
        (True, ReviewState.PUBLISHED, True),
        (False, ReviewState.PUBLISHED, False),
        (True, ReviewState.AWAITING_RESPONSE, False),
        (True, ReviewState.WITHDRAWN, False),
    ],
)
def test_a_publication_reaches_the_public_stream_only_while_the_agent_is_public(
    public: bool, state: ReviewState, shown: bool
) -> None:
    assert shows_on_publication(public, state) is shown
