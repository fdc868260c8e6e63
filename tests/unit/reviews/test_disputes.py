"""An agent's dispute of a published review: once, with a reason, answered by a moderator
within 2 business days (docs/design.md 1.10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.reviews.domain.disputes import (
    Dispute,
    DisputeDecision,
    DisputeStatus,
    answer_due,
    closed_by_withdrawal,
    is_overdue,
    open_dispute,
    resolve,
)
from services.reviews.domain.model import RefusedError, ReviewState

MONDAY = datetime(2026, 11, 16, 15, 0, tzinfo=UTC)


def at(day_offset: int, hour: int = 15) -> datetime:
    return MONDAY.replace(hour=hour) + timedelta(days=day_offset)


@pytest.mark.parametrize(
    ("opened", "due"),
    [
        (at(0), at(2)),  # Monday 15:00 -> Wednesday 15:00
        (at(2), at(4)),  # Wednesday -> Friday
        (at(3), at(7)),  # Thursday -> Monday (the weekend does not count)
        (at(4), at(8)),  # Friday -> Tuesday
        (at(4, 23), at(8, 23)),  # late on Friday -> late on Tuesday
        (at(5, 10), at(9, 0)),  # Saturday: counted from Monday 00:00 -> Wednesday 00:00
        (at(6, 22), at(9, 0)),  # Sunday evening: the same
        (at(7, 0), at(9, 0)),  # Monday 00:00 -> Wednesday 00:00
    ],
)
def test_a_dispute_is_answered_within_two_business_days(opened: datetime, due: datetime) -> None:
    assert answer_due(opened) == due


def test_the_answer_time_can_be_set_in_business_days() -> None:
    assert answer_due(at(4), 1) == at(7)
    assert answer_due(at(0), 5) == at(7)
    assert answer_due(at(0), 10) == at(14)
    with pytest.raises(ValueError, match="at least one"):
        answer_due(at(0), 0)


def test_an_agent_disputes_a_published_review_with_a_reason() -> None:
    dispute = open_dispute(
        dispute_id="D-1",
        review_id="R-1",
        agent_id="A-1",
        state=ReviewState.PUBLISHED,
        earlier=None,
        reason="  Not my client: I never worked with them.  ",
        now=at(0),
    )
    assert dispute.status is DisputeStatus.OPEN
    assert dispute.reason == "Not my client: I never worked with them."
    assert dispute.answer_due_at == at(2)
    assert not is_overdue(dispute, at(2) - timedelta(seconds=1))
    assert is_overdue(dispute, at(2))


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_a_dispute_without_a_reason_is_refused(reason: str) -> None:
    with pytest.raises(RefusedError) as refused:
        _open(reason=reason)
    assert refused.value.code == "reason_required"


def test_a_reason_too_long_is_refused() -> None:
    with pytest.raises(RefusedError) as refused:
        _open(reason="x" * 2001)
    assert refused.value.code == "reason_too_long"


@pytest.mark.parametrize(
    "state",
    [
        ReviewState.MODERATION,
        ReviewState.AWAITING_RESPONSE,
        ReviewState.REJECTED,
        ReviewState.WITHDRAWN,
    ],
)
def test_only_a_published_review_is_disputed(state: ReviewState) -> None:
    with pytest.raises(RefusedError) as refused:
        _open(state=state)
    assert refused.value.code == "not_published"


@pytest.mark.parametrize("status", list(DisputeStatus))
def test_a_review_is_disputed_once_whatever_came_of_it(status: DisputeStatus) -> None:
    earlier = Dispute("D-0", "R-1", "A-1", "first", at(0), at(2), status)
    with pytest.raises(RefusedError) as refused:
        _open(earlier=earlier)
    assert refused.value.code == "already_disputed"


def test_the_moderator_upholds_the_review_with_a_reason() -> None:
    answered = resolve(
        _open(),
        DisputeDecision.UPHOLD,
        " The client is on the closing. ",
        moderator="M-1",
        now=at(1),
    )
    assert answered.status is DisputeStatus.UPHELD
    assert answered.resolution == "The client is on the closing."
    assert answered.resolved_by == "M-1" and answered.resolved_at == at(1)
    assert not is_overdue(answered, at(9))


def test_the_moderator_withdraws_the_review_with_a_reason() -> None:
    answered = resolve(
        _open(), DisputeDecision.WITHDRAW, "Not a client of yours.", moderator="M-1", now=at(3)
    )
    assert answered.status is DisputeStatus.WITHDRAWN


@pytest.mark.parametrize("decision", list(DisputeDecision))
def test_the_moderator_must_give_a_reason(decision: DisputeDecision) -> None:
    with pytest.raises(RefusedError) as refused:
        resolve(_open(), decision, " ", moderator="M-1", now=at(1))
    assert refused.value.code == "reason_required"


@pytest.mark.parametrize("decision", list(DisputeDecision))
def test_a_dispute_is_answered_once(decision: DisputeDecision) -> None:
    answered = resolve(_open(), DisputeDecision.UPHOLD, "Stays.", moderator="M-1", now=at(1))
    with pytest.raises(RefusedError) as refused:
        resolve(answered, decision, "Again.", moderator="M-2", now=at(2))
    assert refused.value.code == "dispute_closed"


def test_withdrawing_a_disputed_review_answers_its_open_dispute() -> None:
    closed = closed_by_withdrawal(_open(), "Found fraudulent.", moderator="M-1", now=at(1))
    assert closed is not None and closed.status is DisputeStatus.WITHDRAWN
    assert closed.resolution == "Found fraudulent."


def test_withdrawing_an_undisputed_or_answered_review_closes_nothing() -> None:
    assert closed_by_withdrawal(None, "x", moderator="M-1", now=at(1)) is None
    upheld = resolve(_open(), DisputeDecision.UPHOLD, "Stays.", moderator="M-1", now=at(1))
    assert closed_by_withdrawal(upheld, "x", moderator="M-1", now=at(2)) is None


def _open(
    *,
    state: ReviewState = ReviewState.PUBLISHED,
    earlier: Dispute | None = None,
    reason: str = "Not my client.",
) -> Dispute:
    return open_dispute(
        dispute_id="D-1",
        review_id="R-1",
        agent_id="A-1",
        state=state,
        earlier=earlier,
        reason=reason,
        now=at(0),
    )
