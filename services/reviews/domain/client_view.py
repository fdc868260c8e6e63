"""What the client sees of their review from the link in their thank-you mail, and their one
resubmission of a review a moderator rejected (docs/design.md 1.10). Review platforms reject
silently; here the client reads the moderator's reason and may edit and send again, once.
Pure: the caller loads the review and its decision record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.reviews.domain.model import RefusedError, ReviewState

RESUBMISSIONS_MAX = 1


class ClientStatus(StrEnum):
    HELD = "held"
    """Being checked by a moderator, or waiting for the agent's response."""
    PUBLISHED = "published"
    REJECTED = "rejected"
    """A moderator did not publish it: the reason is shown, and it may be sent again once."""
    REMOVED = "removed"
    """Published, then withdrawn by a moderator: the reason is shown."""


_STATUS = {
    ReviewState.MODERATION: ClientStatus.HELD,
    ReviewState.AWAITING_RESPONSE: ClientStatus.HELD,
    ReviewState.PUBLISHED: ClientStatus.PUBLISHED,
    ReviewState.REJECTED: ClientStatus.REJECTED,
    ReviewState.WITHDRAWN: ClientStatus.REMOVED,
}
_REASON_ACTION = {ClientStatus.REJECTED: "rejected", ClientStatus.REMOVED: "withdrawn"}


@dataclass(frozen=True)
class Step:
    """One entry of the review's decision record, as far as the client's view needs it."""

    action: str
    reason: str


@dataclass(frozen=True)
class ClientView:
    status: ClientStatus
    explanation: str
    reason: str | None
    """The moderator's reason for a rejection or a removal; None otherwise."""
    may_resubmit: bool


def client_status(state: ReviewState) -> ClientStatus:
    return _STATUS[state]


def may_resubmit(state: ReviewState, resubmissions: int) -> bool:
    return state is ReviewState.REJECTED and resubmissions < RESUBMISSIONS_MAX


def check_resubmission(state: ReviewState, resubmissions: int) -> None:
    if state is not ReviewState.REJECTED:
        raise RefusedError(
            "not_rejected", f"only a rejected review may be sent again; this one is {state.value}"
        )
    if resubmissions >= RESUBMISSIONS_MAX:
        raise RefusedError("already_resubmitted", "a rejected review may be sent again once")


def moderator_reason(status: ClientStatus, record: Sequence[Step]) -> str | None:
    """The reason of the latest decision that put the review where it is (rejected or
    withdrawn), as the moderator wrote it for the client."""
    action = _REASON_ACTION.get(status)
    if action is None:
        return None
    return next((step.reason for step in reversed(record) if step.action == action), None)


def client_view(
    state: ReviewState,
    record: Sequence[Step],
    *,
    resubmissions: int,
    response_due_at: datetime | None,
) -> ClientView:
    status = client_status(state)
    resubmit = may_resubmit(state, resubmissions)
    if state is ReviewState.MODERATION:
        explanation = "A moderator is checking your review before it is published."
    elif state is ReviewState.AWAITING_RESPONSE:
        due = f" until {response_due_at:%d %B %Y}" if response_due_at else ""
        explanation = (
            f"Your agent may respond first{due}; then your review is published, with the "
            "response if there is one."
        )
    elif state is ReviewState.PUBLISHED:
        explanation = (
            "Your review is published: it counts for your agent's rating, and it is shown "
            "publicly while your agent shows their ratings."
        )
    elif state is ReviewState.REJECTED:
        explanation = "A moderator did not publish your review, for the reason below. " + (
            "You may edit it and send it again, once."
            if resubmit
            else "It was already sent again once, so it cannot be sent again."
        )
    else:
        explanation = (
            "Your review was published, then removed by a moderator for the reason below. It "
            "no longer counts for your agent's rating."
        )
    return ClientView(status, explanation, moderator_reason(status, record), resubmit)
