"""A new review carries its invitation's facts and where its routing sent it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.reviews.domain.model import (
    Invitation,
    Review,
    ReviewState,
    after_submission,
    submitted_review,
)
from services.reviews.domain.moderation import Flag, Route, Routing

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
WINDOW = timedelta(days=7)
INVITATION = Invitation(
    invitation_id="I-1",
    agent_id="A-1",
    transaction_id="T-1",
    lead_id=None,
    survey="transaction",
    removal_reason=None,
    channel="email",
    issued_at=NOW - timedelta(days=2),
    expires_at=NOW + timedelta(days=28),
    closed_reason=None,
    used=False,
)


def new(routing: Routing, signals: list[str] | None = None) -> Review:
    return submitted_review(
        "R-1",
        INVITATION,
        scores={"overall": 2},
        comment="Slow.",
        display_name=None,
        channel="email",
        routing=routing,
        step=after_submission(routing, NOW, WINDOW),
        signals=signals or [],
        now=NOW,
        entered_by=None,
    )


def test_a_positive_clean_review_is_published_when_submitted() -> None:
    review = new(Routing(Route.PUBLISH, (), positive=True))
    assert review.state is ReviewState.PUBLISHED and review.published_at == NOW
    assert (review.agent_id, review.transaction_id, review.invitation_id) == ("A-1", "T-1", "I-1")


def test_a_negative_review_waits_for_the_agent_until_the_window_ends() -> None:
    review = new(Routing(Route.AWAIT_RESPONSE, (), positive=False))
    assert review.state is ReviewState.AWAITING_RESPONSE and review.published_at is None
    assert review.response_due_at == NOW + WINDOW and not review.positive


def test_a_held_review_keeps_the_flags_and_signals_that_held_it() -> None:
    review = new(Routing(Route.MODERATOR, (Flag.LINK,), positive=True), ["burst"])
    assert review.state is ReviewState.MODERATION
    assert review.flags == ["link"] and review.signals == ["burst"]
