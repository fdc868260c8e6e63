"""The life of a review: who may move it where, and when it becomes public.

    submitted ──flagged──▶ moderation ──approve──▶ (publish | awaiting_response)
        │                      └──reject──▶ rejected
        ├──positive──▶ published ──withdraw──▶ withdrawn
        └──negative──▶ awaiting_response ──agent responds / window ends──▶ published

Every function is pure: it checks the move and returns what changes; the caller stores it,
records the decision and publishes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from services.reviews.domain.moderation import Route, Routing, route_after_approval
from shared.errors import DomainError

RESPONSE_MAX_CHARS = 2000


class ReviewState(StrEnum):
    MODERATION = "moderation"
    AWAITING_RESPONSE = "awaiting_response"
    PUBLISHED = "published"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


AGENT_VISIBLE: frozenset[ReviewState] = frozenset(
    {ReviewState.AWAITING_RESPONSE, ReviewState.PUBLISHED, ReviewState.WITHDRAWN}
)
"""What the reviewed agent may see: never a review still with a moderator, or rejected."""


class RefusedError(DomainError):
    """A move the rules do not allow; `code` names it for the API (409 unless said otherwise)."""


@dataclass(frozen=True)
class Step:
    """The outcome of a move: the new state, the response deadline, and whether to publish."""

    state: ReviewState
    response_due_at: datetime | None = None
    publish: bool = False


def _entered(route: Route, now: datetime, window: timedelta) -> Step:
    if route is Route.PUBLISH:
        return Step(ReviewState.PUBLISHED, publish=True)
    if route is Route.AWAIT_RESPONSE:
        return Step(ReviewState.AWAITING_RESPONSE, response_due_at=now + window)
    return Step(ReviewState.MODERATION)


def after_submission(routing: Routing, now: datetime, window: timedelta) -> Step:
    return _entered(routing.route, now, window)


def moderate(
    state: ReviewState, *, approve: bool, positive: bool, now: datetime, window: timedelta
) -> Step:
    """The moderator's decision on a flagged review; the response window starts at approval."""
    if state is not ReviewState.MODERATION:
        raise RefusedError("not_in_moderation", f"the review is {state.value}, not in moderation")
    if not approve:
        return Step(ReviewState.REJECTED)
    return _entered(route_after_approval(positive), now, window)


def respond(state: ReviewState, existing_response: str | None) -> Step:
    """The agent's one public reply: publishes a waiting review, or is added to a published one
    (which is then published again with the reply)."""
    if existing_response is not None:
        raise RefusedError("already_responded", "the agent has already responded to this review")
    if state in (ReviewState.AWAITING_RESPONSE, ReviewState.PUBLISHED):
        return Step(ReviewState.PUBLISHED, publish=True)
    if state is ReviewState.MODERATION:
        raise RefusedError("in_moderation", "the review is still with a moderator")
    raise RefusedError("not_public", f"the review is {state.value}")


def response_window_ended(
    state: ReviewState, response_due_at: datetime | None, now: datetime
) -> Step | None:
    """Publish a waiting review once its window is over; None while it still waits."""
    if state is not ReviewState.AWAITING_RESPONSE or response_due_at is None:
        return None
    if now < response_due_at:
        return None
    return Step(ReviewState.PUBLISHED, publish=True)


def withdraw(state: ReviewState) -> Step:
    """A moderator takes a published review down again (e.g. found fraudulent later)."""
    if state is not ReviewState.PUBLISHED:
        raise RefusedError("not_published", f"the review is {state.value}, not published")
    return Step(ReviewState.WITHDRAWN)


class InvitationProblem(StrEnum):
    """Why a code cannot be used; the API maps these to 404 / 410 / 409, and PREPARING to 503
    (come back in a minute)."""

    UNKNOWN = "unknown"
    PREPARING = "preparing"
    EXPIRED = "expired"
    CLOSED = "closed"
    USED = "used"
    WRONG_CHANNEL = "wrong_channel"


@dataclass(frozen=True)
class InvitationView:
    """What the survey needs to know about an invitation to accept answers for it."""

    expires_at: datetime
    closed_reason: str | None
    used: bool


def invitation_problem(
    invitation: InvitationView | None, now: datetime
) -> InvitationProblem | None:
    if invitation is None:
        return InvitationProblem.UNKNOWN
    if invitation.used:
        return InvitationProblem.USED
    if invitation.closed_reason is not None:
        return InvitationProblem.CLOSED
    if now >= invitation.expires_at:
        return InvitationProblem.EXPIRED
    return None


def code_problem(
    invitation: InvitationView | None,
    now: datetime,
    *,
    genuine_link: bool = False,
    linked_invitation_seen: bool = False,
) -> InvitationProblem | None:
    """`invitation_problem`, except that a genuine link (its token carries our MAC over its
    invitation id) whose invitation this service has not seen yet is being prepared, not
    unknown: the mail can reach the client before the invitation event reaches reviews."""
    if invitation is None and genuine_link and not linked_invitation_seen:
        return InvitationProblem.PREPARING
    return invitation_problem(invitation, now)


def counts_as_wrong_code(problem: InvitationProblem | None, *, genuine_link: bool) -> bool:
    """An unknown code counts towards the rate limit, unless it is a genuine link: nobody can
    guess one, so it is never someone trying codes. A typed PIN cannot carry a MAC, so an
    unknown PIN always counts (and stays a 404)."""
    return problem is InvitationProblem.UNKNOWN and not genuine_link


def too_many_failures(failures: int, limit: int) -> bool:
    """Wrong codes tried from one address (or in total) within the window reach the limit."""
    return failures >= limit


@dataclass(frozen=True)
class Agent:
    """An agent as the roster last named them: who is told of their reviews."""

    agent_id: str
    name: str
    email: str
    active: bool


@dataclass(frozen=True)
class Invitation:
    """A survey invitation as the invitations service issued it, and whether it was used."""

    invitation_id: str
    agent_id: str
    transaction_id: str | None
    lead_id: str | None
    survey: str
    removal_reason: str | None
    channel: str
    issued_at: datetime
    expires_at: datetime
    closed_reason: str | None
    used: bool
    trust_flags: list[str] = field(default_factory=list)
    """What the invitations service noticed about the client's contact details (design.md 3.3):
    read with the invitation, so a submission needs no query of its own for them."""

    @property
    def view(self) -> InvitationView:
        return InvitationView(self.expires_at, self.closed_reason, self.used)


@dataclass(frozen=True)
class Review:
    """A client's answers, where the rules routed them, and what happened to them since."""

    review_id: str
    invitation_id: str
    agent_id: str
    transaction_id: str | None
    survey: str
    removal_reason: str | None
    channel: str
    submitted_at: datetime
    scores: dict[str, int]
    positive: bool
    comment: str
    display_name: str | None
    flags: list[str]
    state: ReviewState
    response_due_at: datetime | None
    agent_response: str | None
    responded_at: datetime | None
    published_at: datetime | None
    agent_notified_at: datetime | None
    entered_by: str | None
    erased_at: datetime | None = None
    signals: list[str] = field(default_factory=list)
    resubmissions: int = 0
    resubmitted_at: datetime | None = None


@dataclass(frozen=True)
class DecisionRecord:
    """One entry of a review's decision record: who did what, and why."""

    actor: str
    actor_role: str
    action: str
    reason: str


@dataclass(frozen=True)
class Decision:
    """A decision record entry as stored, with its time."""

    at: datetime
    actor: str
    actor_role: str
    action: str
    reason: str


SYSTEM = "system"
"""The actor of the decisions the rules take on their own."""

HELD = "held for a moderator"
TRUST_SIGNALS_ACTION = "trust_signals"
"""The decision that lists a review's trust signals: for moderators, never shown to the agent."""

SHOWN_TO_AGENT = (ReviewState.PUBLISHED, ReviewState.AWAITING_RESPONSE)
"""States in which the agent sees a review (and is told of it once)."""


def submitted_review(
    review_id: str,
    invitation: Invitation,
    *,
    scores: dict[str, int],
    comment: str,
    display_name: str | None,
    channel: str,
    routing: Routing,
    step: Step,
    signals: Sequence[str],
    now: datetime,
    entered_by: str | None,
) -> Review:
    """A new review of the invitation's agent, where its routing sent it: published now, waiting
    for the agent's response, or with a moderator (with the flags and signals that held it)."""
    return Review(
        review_id=review_id,
        invitation_id=invitation.invitation_id,
        agent_id=invitation.agent_id,
        transaction_id=invitation.transaction_id,
        survey=invitation.survey,
        removal_reason=invitation.removal_reason,
        channel=channel,
        submitted_at=now,
        scores=scores,
        positive=routing.positive,
        comment=comment,
        display_name=display_name,
        flags=[flag.value for flag in routing.flags],
        state=step.state,
        response_due_at=step.response_due_at,
        agent_response=None,
        responded_at=None,
        published_at=now if step.publish else None,
        agent_notified_at=None,
        entered_by=entered_by,
        signals=list(signals),
    )


def routing_reason(routing: Routing, *, signalled: bool) -> str:
    """Why a new review went where it went, for its decision record: the content checks that
    flagged it, the trust signals that held it, or its scores."""
    if routing.flags:
        return "content checks: " + ", ".join(flag.value for flag in routing.flags)
    if signalled:
        return HELD
    return "positive and clean" if routing.positive else "not positive: the agent answers first"


def submission_decisions(
    submitted_by: DecisionRecord, signals: Sequence[str], routing: Routing, step: Step
) -> list[DecisionRecord]:
    """A new review's decision record: who submitted it, the trust signals found (for
    moderators only), and where the rules sent it, with why."""
    found = [DecisionRecord(SYSTEM, SYSTEM, TRUST_SIGNALS_ACTION, ", ".join(signals))]
    return [
        submitted_by,
        *(found if signals else []),
        DecisionRecord(
            SYSTEM,
            SYSTEM,
            f"to_{step.state.value}",
            routing_reason(routing, signalled=bool(signals)),
        ),
    ]


def visible_to(review: Review, *, agent_id: str | None, moderator: bool = False) -> bool:
    """Moderators see every review; the reviewed agent sees theirs once it is theirs to see
    (`AGENT_VISIBLE`: never while a moderator checks it, nor once rejected); nobody else."""
    return moderator or (review.agent_id == agent_id and review.state in AGENT_VISIBLE)
