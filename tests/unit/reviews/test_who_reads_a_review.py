"""Who may read a review: moderators all of them, the reviewed agent theirs once it is theirs to
see, nobody else."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from services.reviews.domain.model import AGENT_VISIBLE, Review, ReviewState, visible_to

AT = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
REVIEW = Review(
    review_id="R-1",
    invitation_id="I-1",
    agent_id="A-1",
    transaction_id="T-1",
    survey="transaction",
    removal_reason=None,
    channel="email",
    submitted_at=AT,
    scores=dict.fromkeys(("communication", "friendliness"), 5),
    positive=True,
    comment="Great.",
    display_name=None,
    flags=[],
    state=ReviewState.PUBLISHED,
    response_due_at=None,
    agent_response=None,
    responded_at=None,
    published_at=AT,
    agent_notified_at=None,
    entered_by=None,
)


@pytest.mark.parametrize("state", list(ReviewState))
def test_a_moderator_reads_every_review(state: ReviewState) -> None:
    assert visible_to(replace(REVIEW, state=state), agent_id=None, moderator=True)


@pytest.mark.parametrize("state", list(ReviewState))
def test_the_agent_reads_their_review_only_once_it_is_theirs_to_see(state: ReviewState) -> None:
    assert visible_to(replace(REVIEW, state=state), agent_id="A-1") is (state in AGENT_VISIBLE)


def test_another_agent_never_reads_it() -> None:
    assert not visible_to(REVIEW, agent_id="A-2")
