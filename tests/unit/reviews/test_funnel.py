"""The reviews part of the agent's funnel: invited -> answered -> negative -> shown publicly."""

from __future__ import annotations

from services.reviews.domain.funnel import Outcome, ReviewedFunnel, reviewed_funnel
from services.reviews.domain.model import ReviewState

P, W, A = ReviewState.PUBLISHED, ReviewState.WITHDRAWN, ReviewState.AWAITING_RESPONSE
M, R = ReviewState.MODERATION, ReviewState.REJECTED


def test_nobody_answered() -> None:
    assert reviewed_funnel(3, []) == ReviewedFunnel(3, 0, 0, 0, 0, 0, 0)


def test_published_reviews_of_a_public_agent_are_shown() -> None:
    funnel = reviewed_funnel(
        4, [Outcome(P, True, True), Outcome(P, False, True), Outcome(A, False, False)]
    )
    assert funnel.answered == 3 and funnel.negative == 2
    assert funnel.published == 2 and funnel.shown_publicly == 2


def test_a_hidden_agent_s_published_reviews_are_not_shown_publicly() -> None:
    funnel = reviewed_funnel(2, [Outcome(P, True, False), Outcome(P, True, False)])
    assert funnel.published == 2 and funnel.shown_publicly == 0


def test_reviews_with_a_moderator_are_counted_but_never_described() -> None:
    funnel = reviewed_funnel(5, [Outcome(M, False, False), Outcome(R, False, False)])
    assert funnel.answered == 2 and funnel.with_moderator == 2
    assert funnel.negative == 0  # not even as a count of negatives


def test_a_withdrawn_review_is_answered_not_shown() -> None:
    funnel = reviewed_funnel(1, [Outcome(W, False, False)])
    assert funnel.withdrawn == 1 and funnel.negative == 1 and funnel.shown_publicly == 0


def test_a_stale_shown_flag_on_a_review_no_longer_published_does_not_count() -> None:
    assert reviewed_funnel(1, [Outcome(W, True, True)]).shown_publicly == 0
