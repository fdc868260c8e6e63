"""An agent's dispute of a published review, and the moderator's answer (docs/design.md 1.10).

An agent may dispute a published review of theirs once, with a reason; a moderator answers
within a stated time (by default 2 business days): uphold (the review stays) or withdraw it, with
a reason either way. Pure: the caller loads, stores, records and publishes.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from services.reviews.domain.model import RefusedError, ReviewState

ANSWER_BUSINESS_DAYS = 2
"""How long a moderator has to answer a dispute, in business days (Monday to Friday, UTC, less
the public holidays the service is given)."""
REASON_MAX_CHARS = 2000
SATURDAY = 5


class DisputeStatus(StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    WITHDRAWN = "withdrawn"
    """Answered by withdrawing the review (also when a moderator withdrew it another way)."""


class DisputeDecision(StrEnum):
    UPHOLD = "uphold"
    WITHDRAW = "withdraw"


@dataclass(frozen=True)
class Dispute:
    dispute_id: str
    review_id: str
    agent_id: str
    reason: str
    opened_at: datetime
    answer_due_at: datetime
    status: DisputeStatus = DisputeStatus.OPEN
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    """The moderator's reason, which the agent reads."""


def is_business_day(day: datetime, holidays: Collection[date] = frozenset()) -> bool:
    """A weekday that is not a public holiday (days are UTC calendar days)."""
    return day.weekday() < SATURDAY and day.date() not in holidays


def answer_due(
    opened_at: datetime,
    business_days: int = ANSWER_BUSINESS_DAYS,
    holidays: Collection[date] = frozenset(),
) -> datetime:
    """The moment `business_days` business days after `opened_at`: the same time of day on the
    n-th business day after it. A dispute opened on a weekend or a holiday counts from the start
    of the next business day."""
    if business_days < 1:
        raise ValueError("a dispute is answered within at least one business day")
    due = opened_at
    if not is_business_day(due, holidays):
        while not is_business_day(due, holidays):
            due += timedelta(days=1)
        due = datetime.combine(due.date(), time(0), tzinfo=due.tzinfo)
    left = business_days
    while left:
        due += timedelta(days=1)
        if is_business_day(due, holidays):
            left -= 1
    return due


def is_overdue(dispute: Dispute, now: datetime) -> bool:
    return dispute.status is DisputeStatus.OPEN and now >= dispute.answer_due_at


def clean_reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise RefusedError("reason_required", "say why: a reason is required")
    if len(text) > REASON_MAX_CHARS:
        raise RefusedError("reason_too_long", f"a reason has at most {REASON_MAX_CHARS} characters")
    return text


def open_dispute(
    *,
    dispute_id: str,
    review_id: str,
    agent_id: str,
    state: ReviewState,
    earlier: Dispute | None,
    reason: str,
    now: datetime,
    business_days: int = ANSWER_BUSINESS_DAYS,
    holidays: Collection[date] = frozenset(),
) -> Dispute:
    """An agent disputes a published review of theirs, once: a second dispute of the same
    review is refused whatever the first one's outcome (docs/design.md 1.10: "once, with a reason")."""
    text = clean_reason(reason)
    if earlier is not None:
        raise RefusedError(
            "already_disputed",
            f"this review was disputed on {earlier.opened_at:%Y-%m-%d}; a review is disputed once",
        )
    if state is not ReviewState.PUBLISHED:
        raise RefusedError("not_published", f"the review is {state.value}: only a published one")
    due = answer_due(now, business_days, holidays)
    return Dispute(dispute_id, review_id, agent_id, text, now, due)


def resolve(
    dispute: Dispute, decision: DisputeDecision, reason: str, *, moderator: str, now: datetime
) -> Dispute:
    """The moderator's answer; the reason is required either way (the agent reads it). To
    withdraw, the caller withdraws the review by the moderators' usual path."""
    text = clean_reason(reason)
    if dispute.status is not DisputeStatus.OPEN:
        raise RefusedError("dispute_closed", f"the dispute is already {dispute.status.value}")
    status = DisputeStatus.UPHELD if decision is DisputeDecision.UPHOLD else DisputeStatus.WITHDRAWN
    return replace(dispute, status=status, resolved_at=now, resolved_by=moderator, resolution=text)


def closed_by_withdrawal(
    dispute: Dispute | None, reason: str, *, moderator: str, now: datetime
) -> Dispute | None:
    """A moderator withdrew a disputed review directly: the open dispute is answered by it;
    None when there is no open dispute to close."""
    if dispute is None or dispute.status is not DisputeStatus.OPEN:
        return None
    return resolve(dispute, DisputeDecision.WITHDRAW, reason, moderator=moderator, now=now)
