"""The review lifecycle: every allowed move, and the refused ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.reviews.domain.model import (
    InvitationProblem,
    InvitationView,
    RefusedError,
    ReviewState,
    after_submission,
    code_problem,
    counts_as_wrong_code,
    invitation_problem,
    moderate,
    respond,
    response_window_ended,
    too_many_failures,
    withdraw,
)
from services.reviews.domain.moderation import Flag, Route, Routing

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def test_positive_clean_submission_is_published_now() -> None:
    step = after_submission(Routing(Route.PUBLISH, (), True), NOW, WEEK)
    assert (step.state, step.publish, step.response_due_at) == (ReviewState.PUBLISHED, True, None)


def test_negative_submission_waits_a_response_window() -> None:
    step = after_submission(Routing(Route.AWAIT_RESPONSE, (), False), NOW, WEEK)
    assert (step.state, step.publish) == (ReviewState.AWAITING_RESPONSE, False)
    assert step.response_due_at == NOW + WEEK


def test_flagged_submission_waits_for_a_moderator_with_no_deadline() -> None:
    step = after_submission(Routing(Route.MODERATOR, (Flag.LINK,), True), NOW, WEEK)
    assert (step.state, step.publish, step.response_due_at) == (ReviewState.MODERATION, False, None)


@pytest.mark.parametrize(
    ("positive", "state", "publish"),
    [(True, ReviewState.PUBLISHED, True), (False, ReviewState.AWAITING_RESPONSE, False)],
)
def test_approval_follows_the_scores(positive: bool, state: ReviewState, publish: bool) -> None:
    later = NOW + timedelta(days=2)
    step = moderate(ReviewState.MODERATION, approve=True, positive=positive, now=later, window=WEEK)
    assert (step.state, step.publish) == (state, publish)
    if not positive:
        assert step.response_due_at == later + WEEK, "the window starts when the agent is asked"


def test_rejection_is_final_and_never_published() -> None:
    step = moderate(ReviewState.MODERATION, approve=False, positive=True, now=NOW, window=WEEK)
    assert (step.state, step.publish) == (ReviewState.REJECTED, False)


@pytest.mark.parametrize("state", [s for s in ReviewState if s is not ReviewState.MODERATION])
def test_only_reviews_in_moderation_take_a_decision(state: ReviewState) -> None:
    with pytest.raises(RefusedError) as refused:
        moderate(state, approve=True, positive=True, now=NOW, window=WEEK)
    assert refused.value.code == "not_in_moderation"


@pytest.mark.parametrize("state", [ReviewState.AWAITING_RESPONSE, ReviewState.PUBLISHED])
def test_a_response_publishes_the_review_with_it(state: ReviewState) -> None:
    step = respond(state, None)
    assert (step.state, step.publish) == (ReviewState.PUBLISHED, True)


def test_one_response_per_review() -> None:
    with pytest.raises(RefusedError) as refused:
        respond(ReviewState.PUBLISHED, "Thanks")
    assert refused.value.code == "already_responded"


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (ReviewState.MODERATION, "in_moderation"),
        (ReviewState.REJECTED, "not_public"),
        (ReviewState.WITHDRAWN, "not_public"),
    ],
)
def test_no_response_to_reviews_not_shown_to_the_agent(state: ReviewState, code: str) -> None:
    with pytest.raises(RefusedError) as refused:
        respond(state, None)
    assert refused.value.code == code


def test_the_window_publishes_only_once_it_has_ended() -> None:
    due = NOW + WEEK
    assert (
        response_window_ended(ReviewState.AWAITING_RESPONSE, due, due - timedelta(seconds=1))
        is None
    )
    step = response_window_ended(ReviewState.AWAITING_RESPONSE, due, due)
    assert step is not None and step.publish and step.state is ReviewState.PUBLISHED


@pytest.mark.parametrize(
    "state", [s for s in ReviewState if s is not ReviewState.AWAITING_RESPONSE]
)
def test_the_window_does_nothing_to_reviews_not_waiting(state: ReviewState) -> None:
    assert response_window_ended(state, NOW, NOW + WEEK) is None


def test_only_published_reviews_are_withdrawn() -> None:
    assert withdraw(ReviewState.PUBLISHED).state is ReviewState.WITHDRAWN
    for state in (ReviewState.MODERATION, ReviewState.AWAITING_RESPONSE, ReviewState.WITHDRAWN):
        with pytest.raises(RefusedError):
            withdraw(state)


@pytest.mark.parametrize(
    ("invitation", "now", "problem"),
    [
        (None, NOW, InvitationProblem.UNKNOWN),
        (InvitationView(NOW + WEEK, None, False), NOW, None),
        (InvitationView(NOW + WEEK, None, True), NOW, InvitationProblem.USED),
        (InvitationView(NOW + WEEK, "unsubscribed", False), NOW, InvitationProblem.CLOSED),
        (InvitationView(NOW, None, False), NOW, InvitationProblem.EXPIRED),
        (InvitationView(NOW, None, True), NOW + WEEK, InvitationProblem.USED),
    ],
)
def test_invitation_problems(
    invitation: InvitationView | None, now: datetime, problem: InvitationProblem | None
) -> None:
    assert invitation_problem(invitation, now) is problem


def test_rate_limit_reached_at_the_limit() -> None:
    assert not too_many_failures(9, 10)
    assert too_many_failures(10, 10)


def test_a_genuine_link_whose_invitation_has_not_arrived_is_being_prepared() -> None:
    problem = code_problem(None, NOW, genuine_link=True, linked_invitation_seen=False)
    assert problem is InvitationProblem.PREPARING
    assert not counts_as_wrong_code(problem, genuine_link=True)


def test_a_genuine_link_of_a_usable_invitation_has_no_problem() -> None:
    usable = InvitationView(NOW + WEEK, None, False)
    assert code_problem(usable, NOW, genuine_link=True) is None


def test_a_genuine_link_of_an_invitation_seen_under_another_token_is_unknown_not_counted() -> None:
    problem = code_problem(None, NOW, genuine_link=True, linked_invitation_seen=True)
    assert problem is InvitationProblem.UNKNOWN
    assert not counts_as_wrong_code(problem, genuine_link=True)


def test_an_unknown_pin_or_forged_link_is_unknown_and_counts() -> None:
    problem = code_problem(None, NOW)
    assert problem is InvitationProblem.UNKNOWN
    assert counts_as_wrong_code(problem, genuine_link=False)


def test_only_unknown_codes_count_as_wrong() -> None:
    used = code_problem(InvitationView(NOW + WEEK, None, True), NOW)
    assert used is InvitationProblem.USED
    assert not counts_as_wrong_code(used, genuine_link=False)
    assert not counts_as_wrong_code(None, genuine_link=False)
