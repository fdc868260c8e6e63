"""The client's view of their review from the thank-you mail's link, and the one resubmission
of a rejected review (docs/design.md 1.10)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.reviews.domain.client_view import (
    ClientStatus,
    Step,
    check_resubmission,
    client_status,
    client_view,
    may_resubmit,
    moderator_reason,
)
from services.reviews.domain.model import RefusedError, ReviewState

DUE = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (ReviewState.MODERATION, ClientStatus.HELD),
        (ReviewState.AWAITING_RESPONSE, ClientStatus.HELD),
        (ReviewState.PUBLISHED, ClientStatus.PUBLISHED),
        (ReviewState.REJECTED, ClientStatus.REJECTED),
        (ReviewState.WITHDRAWN, ClientStatus.REMOVED),
    ],
)
def test_each_state_reads_as_the_client_understands_it(
    state: ReviewState, status: ClientStatus
) -> None:
    assert client_status(state) is status


def test_a_rejected_review_shows_the_moderator_s_latest_reason_and_may_be_sent_again() -> None:
    record = [
        Step("submitted", "channel email"),
        Step("to_moderation", "content checks: phone_number"),
        Step("rejected", "Please leave out the phone number."),
    ]
    view = client_view(ReviewState.REJECTED, record, resubmissions=0, response_due_at=None)
    assert view.status is ClientStatus.REJECTED and view.may_resubmit
    assert view.reason == "Please leave out the phone number."
    assert "send it again, once" in view.explanation


def test_after_the_one_resubmission_a_second_rejection_is_final() -> None:
    record = [
        Step("rejected", "Please leave out the phone number."),
        Step("resubmitted", "edited by the client"),
        Step("rejected", "Still names a person."),
    ]
    view = client_view(ReviewState.REJECTED, record, resubmissions=1, response_due_at=None)
    assert view.reason == "Still names a person." and not view.may_resubmit
    assert "cannot be sent again" in view.explanation


def test_a_removed_review_shows_why() -> None:
    record = [Step("to_published", "positive and clean"), Step("withdrawn", "Not a client.")]
    view = client_view(ReviewState.WITHDRAWN, record, resubmissions=0, response_due_at=None)
    assert view.status is ClientStatus.REMOVED and view.reason == "Not a client."
    assert not view.may_resubmit


@pytest.mark.parametrize(
    "state", [ReviewState.MODERATION, ReviewState.AWAITING_RESPONSE, ReviewState.PUBLISHED]
)
def test_held_and_published_reviews_show_no_moderator_reason(state: ReviewState) -> None:
    record = [Step("rejected", "an old reason"), Step("withdrawn", "another")]
    view = client_view(state, record, resubmissions=1, response_due_at=DUE)
    assert view.reason is None and not view.may_resubmit


def test_a_review_waiting_for_the_agent_says_until_when() -> None:
    view = client_view(ReviewState.AWAITING_RESPONSE, [], resubmissions=0, response_due_at=DUE)
    assert "27 November 2026" in view.explanation


def test_a_rejection_without_a_recorded_reason_shows_none() -> None:
    assert moderator_reason(ClientStatus.REJECTED, [Step("submitted", "x")]) is None


@pytest.mark.parametrize("state", [s for s in ReviewState if s is not ReviewState.REJECTED])
def test_only_a_rejected_review_is_sent_again(state: ReviewState) -> None:
    assert not may_resubmit(state, 0)
    with pytest.raises(RefusedError) as refused:
        check_resubmission(state, 0)
    assert refused.value.code == "not_rejected"


def test_a_rejected_review_is_sent_again_once() -> None:
    check_resubmission(ReviewState.REJECTED, 0)
    with pytest.raises(RefusedError) as refused:
        check_resubmission(ReviewState.REJECTED, 1)
    assert refused.value.code == "already_resubmitted"
