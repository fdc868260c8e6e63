"""HTTP routes: the public survey (JSON API and server-rendered pages), agents' responses and
listings, the moderator queue and decisions, phone-survey answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.reviews import handlers
from services.reviews.domain.client_view import ClientStatus, Step, client_view
from services.reviews.domain.disputes import (
    REASON_MAX_CHARS,
    Dispute,
    DisputeDecision,
    is_overdue,
)
from services.reviews.domain.funnel import reviewed_funnel
from services.reviews.domain.model import (
    TRUST_SIGNALS_ACTION,
    Decision,
    Invitation,
    InvitationProblem,
    Review,
    ReviewState,
)
from services.reviews.handlers import Actor, Answers, CodeRefused
from services.reviews.repository import ReviewsRepository
from shared.auth import Principal, Role, require_roles
from shared.contracts.base import UtcDatetime
from shared.contracts.removals import RemovalReason
from shared.contracts.reviews import CATEGORIES, Channel, Scores
from shared.errors import NotFoundError
from shared.http import ProblemError, domain_problems
from shared.period import PeriodQuery
from shared.runtime import ServiceRuntime, context_of, runtime_of
from shared.templating import shipped_templates
from shared.uow import UnitOfWork

router = APIRouter(prefix="/api/v1", tags=["reviews"])
pages = APIRouter(tags=["survey pages"])

Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]
Context = Annotated[handlers.Context, Depends(context_of)]


_AGENTS = require_roles(Role.AGENT)
_READERS = require_roles(Role.AGENT, Role.MODERATOR)


async def _remember(
    request: Request, runtime: ServiceRuntime, context: handlers.Context, principal: Principal
) -> Principal:
    """An agent's address is remembered (as a keyed hash): a review later sent from it is held
    for a moderator (docs/design.md §3.3)."""
    if principal.role is Role.AGENT:
        async with runtime.unit_of_work() as uow:
            await handlers.agent_seen(uow, context, principal.sub, _address(request))
    return principal


async def _seen_agent(
    request: Request,
    runtime: Runtime,
    context: Context,
    principal: Annotated[Principal, Depends(_AGENTS)],
) -> Principal:
    return await _remember(request, runtime, context, principal)


async def _seen_reader(
    request: Request,
    runtime: Runtime,
    context: Context,
    principal: Annotated[Principal, Depends(_READERS)],
) -> Principal:
    return await _remember(request, runtime, context, principal)


Agent = Annotated[Principal, Depends(_seen_agent)]
Moderator = Annotated[Principal, Depends(require_roles(Role.MODERATOR))]
Surveyor = Annotated[Principal, Depends(require_roles(Role.SURVEYOR))]
Reader = Annotated[Principal, Depends(_seen_reader)]

T = TypeVar("T")
BodyT = TypeVar("BodyT", bound=BaseModel)

MAX_COMMENT = 5000
CATEGORY_LABELS: tuple[tuple[str, str], ...] = (
    ("communication", "Communication"),
    ("friendliness", "Friendliness of staff"),
    ("professionalism", "Professionalism"),
    ("area_knowledge", "Knowledge of the area"),
    ("overall", "Overall service"),
)
CODE_STATUS = {
    InvitationProblem.UNKNOWN: 404,
    InvitationProblem.PREPARING: 503,
    InvitationProblem.EXPIRED: 410,
    InvitationProblem.CLOSED: 410,
    InvitationProblem.USED: 409,
    InvitationProblem.WRONG_CHANNEL: 409,
}
HANDOFF_REASONS = (RemovalReason.ACTIVE_HANDOFF.value, RemovalReason.BAD_FIT.value)
"""Removal surveys of a client handed on to another agent: the page says so (Redfin)."""
PREPARING_RETRY_SECONDS = 30
"""How soon a client whose survey is being prepared is asked to come back (Retry-After, and the
page's refresh): the invitation event normally follows the mail within seconds."""
PAGES = shipped_templates(Path(__file__).parent / "templates" / "pages")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _clean_text(value: str | None) -> str | None:
    if value is None:
        return None
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value.strip()


def _required_text(value: str) -> str:
    cleaned = _clean_text(value)
    if not cleaned:
        raise ValueError("must not be blank")
    return cleaned


class AnswersBody(Body):
    scores: Scores
    comment: str = Field(default="", max_length=MAX_COMMENT, examples=["Knew the area inside out."])
    display_name: str | None = Field(default=None, max_length=100, examples=[None])

    _clean = field_validator("comment", "display_name")(_clean_text)

    def answers(self) -> Answers:
        return Answers(self.scores, self.comment, self.display_name or None)


class ReviewBody(AnswersBody):
    """Exactly one of `pin` (from the email) or `token` (from the link)."""

    pin: str | None = Field(default=None, min_length=4, max_length=40, examples=["7K3M-Q9XD-2PHT"])
    token: str | None = Field(default=None, min_length=16, max_length=200)

    @model_validator(mode="after")
    def _one_code(self) -> ReviewBody:
        if (self.pin is None) == (self.token is None):
            raise ValueError("give exactly one of pin or token")
        return self


class Submitted(BaseModel):
    review_id: str
    status: str = Field(description="published, awaiting_response or moderation.")
    message: str = Field(
        default="",
        description="What to tell the client: a review in moderation is being checked.",
    )
    status_url: str | None = Field(
        default=None,
        description="The client's lasting link to the review's state (the page; the JSON is "
        "`GET /api/v1/review-status?token=`); the thank-you mail carries it too.",
    )

    @classmethod
    def of(cls, review: Review, status_url: str | None = None) -> Submitted:
        return cls(
            review_id=review.review_id,
            status=review.state.value,
            message=_SAID[review.state],
            status_url=status_url,
        )


_SAID = {
    ReviewState.PUBLISHED: "Thank you: your review is published.",
    ReviewState.AWAITING_RESPONSE: "Thank you: your agent may respond first, then your review "
    "is published.",
    ReviewState.MODERATION: "Thank you: your review is being checked before it is published. "
    "Your link shows its state.",
    ReviewState.REJECTED: "",
    ReviewState.WITHDRAWN: "",
}


class ResponseBody(Body):
    text: str = Field(min_length=1, max_length=2000)

    _clean = field_validator("text")(_clean_text)


class ResubmissionBody(AnswersBody):
    token: str = Field(
        min_length=3, max_length=200, description="The token of the review's status link."
    )


class ClientReviewView(BaseModel):
    """A review as its client sees it from the status link."""

    review_id: str
    status: ClientStatus = Field(
        description="`held` (a moderator checks it, or the agent may respond first), "
        "`published`, `rejected` (not published: see `reason`) or `removed` (published, then "
        "withdrawn by a moderator: see `reason`)."
    )
    explanation: str = Field(description="The status in plain words, for the client.")
    reason: str | None = Field(description="The moderator's reason (rejected or removed).")
    may_resubmit: bool = Field(
        description="A rejected review may be edited and sent again once: "
        "`POST /api/v1/review-status/resubmission`."
    )
    agent_name: str
    submitted_at: UtcDatetime
    resubmitted_at: UtcDatetime | None
    response_due_at: UtcDatetime | None = Field(
        description="While held for the agent's response: when it is published at the latest."
    )
    scores: dict[str, int]
    comment: str
    display_name: str | None
    agent_response: str | None


class DecisionBody(Body):
    decision: Literal["approve", "reject"]
    reason: str = Field(min_length=1, max_length=1000)


class WithdrawalBody(Body):
    reason: str = Field(min_length=1, max_length=1000)


class DisputeBody(Body):
    reason: str = Field(
        min_length=1,
        max_length=REASON_MAX_CHARS,
        description="Why the review should not stand (required); the moderator reads it.",
        examples=["This client never worked with me: the closing names another agent."],
    )

    _clean = field_validator("reason")(_required_text)


class DisputeDecisionBody(Body):
    decision: DisputeDecision = Field(
        description="`uphold`: the review stays published. `withdraw`: the review is withdrawn "
        "(as by `POST /reviews/{review_id}/withdrawal`: scoring and the public stream take it "
        "down)."
    )
    reason: str = Field(
        min_length=1,
        max_length=REASON_MAX_CHARS,
        description="The moderator's answer, which the agent reads (required either way).",
        examples=["The review is about the agent's service and breaks no rule."],
    )

    _clean = field_validator("reason")(_required_text)


class DisputeView(BaseModel):
    dispute_id: str
    review_id: str
    agent_id: str
    reason: str = Field(description="The agent's reason.")
    status: str = Field(
        description="`open`, `upheld` (the review stays) or `withdrawn` (the review was taken "
        "down)."
    )
    opened_at: UtcDatetime
    answer_due_at: UtcDatetime = Field(
        description="When a moderator answers by at the latest: 2 business days (Monday to "
        "Friday, UTC) after it was opened, by default."
    )
    overdue: bool = Field(description="Still open after `answer_due_at`.")
    resolved_at: UtcDatetime | None
    resolution: str | None = Field(description="The moderator's reason, once answered.")

    @classmethod
    def of(cls, dispute: Dispute, now: datetime) -> DisputeView:
        return cls(
            dispute_id=dispute.dispute_id,
            review_id=dispute.review_id,
            agent_id=dispute.agent_id,
            reason=dispute.reason,
            status=dispute.status.value,
            opened_at=dispute.opened_at,
            answer_due_at=dispute.answer_due_at,
            overdue=is_overdue(dispute, now),
            resolved_at=dispute.resolved_at,
            resolution=dispute.resolution,
        )


class DisputedReview(BaseModel):
    dispute: DisputeView
    review: ReviewView


class DisputeQueue(BaseModel):
    items: list[DisputedReview] = Field(description="Open disputes, oldest first.")


class DecisionView(BaseModel):
    at: UtcDatetime
    actor: str
    actor_role: str
    action: str
    reason: str


class ReviewView(BaseModel):
    review_id: str
    agent_id: str
    transaction_id: str | None
    survey: str
    removal_reason: str | None
    channel: str
    status: str
    submitted_at: UtcDatetime
    scores: dict[str, int]
    positive: bool
    comment: str
    display_name: str | None
    flags: list[str]
    signals: list[str] = Field(
        default_factory=list,
        description="Trust signals that held the review for a moderator (burst, copied_comment, "
        "flagged_contact, agent_address); moderators only.",
    )
    response_due_at: UtcDatetime | None
    agent_response: str | None
    published_at: UtcDatetime | None
    decisions: list[DecisionView] | None = Field(
        default=None, description="The record of every step (single-review reads only)."
    )

    @classmethod
    def of(
        cls, review: Review, decisions: list[Decision] | None = None, *, for_agent: bool = False
    ) -> ReviewView:
        """`for_agent`: without the trust signals, which are for moderators only."""
        if for_agent and decisions is not None:
            decisions = [d for d in decisions if d.action != TRUST_SIGNALS_ACTION]
        return cls(
            review_id=review.review_id,
            agent_id=review.agent_id,
            transaction_id=review.transaction_id,
            survey=review.survey,
            removal_reason=review.removal_reason,
            channel=review.channel,
            status=review.state.value,
            submitted_at=review.submitted_at,
            scores=review.scores,
            positive=review.positive,
            comment=review.comment,
            display_name=review.display_name,
            flags=review.flags,
            signals=[] if for_agent else review.signals,
            response_due_at=review.response_due_at,
            agent_response=review.agent_response,
            published_at=review.published_at,
            decisions=(
                [DecisionView(**d.__dict__) for d in decisions] if decisions is not None else None
            ),
        )


class UnderReview(BaseModel):
    """A review of the agent that a moderator is checking: that it exists, nothing of it."""

    review_id: str
    submitted_at: UtcDatetime
    status: Literal["under_review"] = "under_review"


class ReviewList(BaseModel):
    reviews: list[ReviewView]
    under_review: list[UnderReview] = Field(
        default_factory=list,
        description="Reviews a moderator is checking: neither content nor reasons are shown.",
    )


class Queue(BaseModel):
    items: list[ReviewView]


STATUSES = {"expired": 410, "closed": 410}
"""Refusals answered 410 Gone; the others are 409 Conflict."""


def _translated() -> AbstractAsyncContextManager[None]:
    return domain_problems(STATUSES, default=409)


async def _in_uow(runtime: ServiceRuntime, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    async with _translated(), runtime.unit_of_work() as uow:
        return await work(uow)


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _code_problem(refused: CodeRefused) -> ProblemError:
    if refused.problem is None:
        seconds = int(refused.retry_after.total_seconds()) if refused.retry_after else 60
        return ProblemError(
            429,
            "Too Many Requests",
            "too many wrong codes; try again later",
            headers={"Retry-After": str(seconds)},
        )
    status = CODE_STATUS[refused.problem]
    titles = {404: "Not Found", 409: "Conflict", 410: "Gone", 503: "Service Unavailable"}
    return ProblemError(
        status,
        titles[status],
        handlers.problem_text(refused.problem),
        code=refused.problem.value,
        headers={"Retry-After": str(PREPARING_RETRY_SECONDS)} if status == 503 else None,
    )


async def _invitation_for(
    runtime: ServiceRuntime,
    context: handlers.Context,
    *,
    pin: str | None,
    token: str | None,
    address: str,
) -> Invitation:
    # the wrong-code record must commit even though the request then fails
    async with runtime.unit_of_work() as uow:
        found = await handlers.find_by_code(uow, context, pin=pin, token=token, address=address)
    if isinstance(found, CodeRefused):
        raise _code_problem(found)
    return found


async def _submit_with_code(
    runtime: ServiceRuntime, context: handlers.Context, body: ReviewBody, address: str
) -> Review:
    """The code check and the review in one transaction (one commit per submission); a refused
    code commits its wrong-code record before the problem is answered."""
    async with _translated(), runtime.unit_of_work() as uow:
        found = await handlers.find_by_code(
            uow, context, pin=body.pin, token=body.token, address=address, lock=True
        )
        if not isinstance(found, CodeRefused):
            return await handlers.submit(
                uow,
                context,
                found,
                body.answers(),
                channel=Channel.EMAIL,
                actor=Actor("client", "client"),
                address=address,
            )
    raise _code_problem(found)


# JSON API


@router.post("/reviews", status_code=201, response_model=Submitted)
async def submit_review(
    body: ReviewBody, request: Request, runtime: Runtime, context: Context
) -> Submitted:
    """A client's answers, with the PIN or link token as the credential. 404 unknown code,
    410 expired or closed, 409 already answered, 429 after too many wrong codes, 503 with
    Retry-After for a genuine link whose survey is still being prepared."""
    review = await _submit_with_code(runtime, context, body, _address(request))
    return Submitted.of(review, status_url(runtime, context, review.review_id))


@router.get("/review-status", response_model=ClientReviewView)
async def review_status(
    runtime: Runtime, context: Context, token: Annotated[str, Query(min_length=3, max_length=200)]
) -> ClientReviewView:
    """The client's review and its state, from the lasting link of the thank-you mail (the
    token is the credential: no sign-in). 404 for a link that opens no review."""
    return await _in_uow(runtime, lambda uow: _client_review(runtime, context, uow, token))


@router.post("/review-status/resubmission", response_model=ClientReviewView)
async def resubmit_review(
    body: ResubmissionBody, request: Request, runtime: Runtime, context: Context
) -> ClientReviewView:
    """The client edits a review a moderator rejected and sends it again, once; it is checked
    and routed like a first submission. 404 for a bad link, 409 `not_rejected` or
    `already_resubmitted`."""

    async def resend(uow: UnitOfWork) -> ClientReviewView:
        review_id = context.hasher.status_review(body.token)
        if review_id is None:
            raise NotFoundError("this link does not open a review")
        await handlers.resubmit(uow, context, review_id, body.answers(), _address(request))
        return await _client_review(runtime, context, uow, body.token)

    return await _in_uow(runtime, resend)


async def _client_review(
    runtime: ServiceRuntime, context: handlers.Context, uow: UnitOfWork, token: str
) -> ClientReviewView:
    review, decisions = await handlers.review_for_status(uow, context, token)
    view = client_view(
        review.state,
        [Step(d.action, d.reason) for d in decisions],
        resubmissions=review.resubmissions,
        response_due_at=review.response_due_at,
    )
    agent = await ReviewsRepository(uow.conn).agent(review.agent_id)
    return ClientReviewView(
        review_id=review.review_id,
        status=view.status,
        explanation=view.explanation,
        reason=view.reason,
        may_resubmit=view.may_resubmit,
        agent_name=agent.name if agent else "your agent",
        submitted_at=review.submitted_at,
        resubmitted_at=review.resubmitted_at,
        response_due_at=review.response_due_at,
        scores=review.scores,
        comment=review.comment,
        display_name=review.display_name,
        agent_response=review.agent_response,
    )


def status_path(context: handlers.Context, review_id: str) -> str:
    """The path of the client's lasting link to the review's state page."""
    token = context.hasher.status_token(review_id)
    return "/review-status?" + urlencode({"token": token})


def status_url(runtime: ServiceRuntime, context: handlers.Context, review_id: str) -> str:
    return runtime.settings.base_url.rstrip("/") + status_path(context, review_id)


@router.post("/phone-surveys/{invitation_id}/answers", status_code=201, response_model=Submitted)
async def enter_phone_answers(
    invitation_id: str, body: AnswersBody, surveyor: Surveyor, runtime: Runtime, context: Context
) -> Submitted:
    """A surveyor enters the answers a client gave on the phone (channel `phone`)."""
    review = await _in_uow(
        runtime,
        lambda uow: handlers.submit(
            uow,
            context,
            invitation_id,
            body.answers(),
            channel=Channel.PHONE,
            actor=Actor(surveyor.sub, surveyor.role.value),
        ),
    )
    return Submitted.of(review)


@router.post("/reviews/{review_id}/response", response_model=ReviewView)
async def respond_to_review(
    review_id: str, body: ResponseBody, agent: Agent, runtime: Runtime, context: Context
) -> ReviewView:
    """The agent's one public reply; publishes a review that was waiting for it."""
    review = await _in_uow(
        runtime,
        lambda uow: handlers.add_response(
            uow, context, review_id, body.text, Actor(agent.sub, agent.role.value)
        ),
    )
    return ReviewView.of(review, for_agent=True)


@router.get("/reviews/{review_id}", response_model=ReviewView)
async def read_review(review_id: str, reader: Reader, runtime: Runtime) -> ReviewView:
    """A review with its full decision record (moderators; the agent for its own reviews)."""

    moderator = reader.role is Role.MODERATOR
    agent_id = reader.sub if reader.role is Role.AGENT else None
    review, decisions = await _in_uow(
        runtime,
        lambda uow: handlers.review_for(uow, review_id, agent_id=agent_id, moderator=moderator),
    )
    return ReviewView.of(review, decisions, for_agent=not moderator)


@router.get("/agents/{agent_id}/reviews", response_model=ReviewList)
async def agent_reviews(
    agent_id: str,
    agent: Agent,
    runtime: Runtime,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ReviewList:
    """The agent's own reviews: waiting for a response, published and withdrawn; and, by id and
    date only, those a moderator is checking (`under_review`)."""
    if not agent.is_agent(agent_id):
        raise ProblemError(403, "Forbidden", "agents see only their own reviews")

    async def load(uow: UnitOfWork) -> ReviewList:
        repo = ReviewsRepository(uow.conn)
        reviews = await repo.reviews_of_agent(agent_id, limit)
        held = await repo.held_for_agent(agent_id, limit)
        return ReviewList(
            reviews=[ReviewView.of(r, for_agent=True) for r in reviews],
            under_review=[UnderReview(review_id=i, submitted_at=at) for i, at in held],
        )

    return await _in_uow(runtime, load)


class ReviewedFunnelView(BaseModel):
    """The reviews part of the agent's funnel, over the same period as the invitations part."""

    model_config = ConfigDict(populate_by_name=True)

    agent_id: str
    from_: UtcDatetime = Field(alias="from", description="Start of the period (inclusive).")
    to: UtcDatetime = Field(description="End of the period (exclusive).")
    invited: int = Field(
        description="Survey invitations for closings issued to your clients in the period (a "
        "client re-sent to a corrected email counts once)."
    )
    answered: int
    with_moderator: int = Field(
        description="Answers a moderator is checking or did not publish: counted only."
    )
    negative: int = Field(
        description="Answers you may see (waiting for your response, published, withdrawn) "
        "with a category below 3."
    )
    published: int
    withdrawn: int
    shown_publicly: int = Field(
        description="Published and on the public stream now (only while you show your "
        "ratings: opt_in_public)."
    )


@router.get("/agents/{agent_id}/funnel", response_model=ReviewedFunnelView)
async def agent_funnel(
    agent_id: str, agent: Agent, runtime: Runtime, asked: PeriodQuery
) -> ReviewedFunnelView:
    """Your funnel's second part over a period (default: the 90 days up to now): of your
    clients invited for closings in it, how many answered, how many answers were negative, and
    how many are shown publicly now. The first part (closings -> clients -> invited by email,
    phone or code) is `GET /api/v1/agents/{agent_id}/funnel` of the invitations service."""
    if not agent.is_agent(agent_id):
        raise ProblemError(403, "Forbidden", "agents see only their own funnel")
    async with runtime.unit_of_work() as uow, domain_problems({}):
        chosen = asked.at(uow.now)
        invited, outcomes = await ReviewsRepository(uow.conn).funnel(
            agent_id, chosen.start, chosen.end
        )
    counted = reviewed_funnel(invited, outcomes)
    return ReviewedFunnelView(agent_id=agent_id, from_=chosen.start, to=chosen.end, **vars(counted))


@router.get("/moderation/queue", response_model=Queue)
async def moderation_queue(
    moderator: Moderator, runtime: Runtime, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> Queue:
    """Reviews the automatic checks held back, oldest first, with the reasons (`flags` for
    content, `signals` for trust)."""

    async def load(uow: UnitOfWork) -> Queue:
        reviews = await ReviewsRepository(uow.conn).moderation_queue(limit)
        return Queue(items=[ReviewView.of(r) for r in reviews])

    return await _in_uow(runtime, load)


@router.post("/moderation/{review_id}/decision", response_model=ReviewView)
async def moderation_decision(
    review_id: str, body: DecisionBody, moderator: Moderator, runtime: Runtime, context: Context
) -> ReviewView:
    """Approve (then it follows the normal path) or reject (never published), with a reason."""
    review = await _in_uow(
        runtime,
        lambda uow: handlers.decide(
            uow,
            context,
            review_id,
            approve=body.decision == "approve",
            reason=body.reason,
            actor=Actor(moderator.sub, moderator.role.value),
        ),
    )
    return ReviewView.of(review)


@router.post("/reviews/{review_id}/withdrawal", response_model=ReviewView)
async def withdraw_review(
    review_id: str, body: WithdrawalBody, moderator: Moderator, runtime: Runtime, context: Context
) -> ReviewView:
    """Take a published review down (publishes `review.withdrawn.v1`)."""
    review = await _in_uow(
        runtime,
        lambda uow: handlers.withdraw_review(
            uow, context, review_id, body.reason, Actor(moderator.sub, moderator.role.value)
        ),
    )
    return ReviewView.of(review)


@router.post("/reviews/{review_id}/dispute", status_code=201, response_model=DisputeView)
async def dispute_review(
    review_id: str, body: DisputeBody, agent: Agent, runtime: Runtime, context: Context
) -> DisputeView:
    """The agent disputes a published review of theirs, once, with a reason; a moderator
    answers by `answer_due_at` (2 business days by default). 404 for a review not the agent's,
    409 `not_published` or `already_disputed`, 422 without a reason."""

    async def open_one(uow: UnitOfWork) -> DisputeView:
        opened = await handlers.dispute(
            uow, context, review_id, body.reason, Actor(agent.sub, agent.role.value)
        )
        return DisputeView.of(opened, uow.now)

    return await _in_uow(runtime, open_one)


@router.get("/reviews/{review_id}/dispute", response_model=DisputeView)
async def read_dispute(review_id: str, reader: Reader, runtime: Runtime) -> DisputeView:
    """The dispute of a review and its answer (moderators; the agent for its own reviews)."""

    async def load(uow: UnitOfWork) -> DisputeView:
        repo = ReviewsRepository(uow.conn)
        review = await repo.review(review_id)
        dispute = await repo.dispute_of(review_id)
        visible = review is not None and (
            reader.role is Role.MODERATOR or reader.is_agent(review.agent_id)
        )
        if dispute is None or not visible:
            raise NotFoundError(f"no dispute of review {review_id}")
        return DisputeView.of(dispute, uow.now)

    return await _in_uow(runtime, load)


@router.get("/moderation/disputes", response_model=DisputeQueue)
async def dispute_queue(
    moderator: Moderator, runtime: Runtime, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> DisputeQueue:
    """Agents' disputes waiting for an answer, oldest first, each with its review and the time
    it must be answered by (`overdue` once past)."""

    async def load(uow: UnitOfWork) -> DisputeQueue:
        found = await ReviewsRepository(uow.conn).open_disputes(limit)
        return DisputeQueue(
            items=[
                DisputedReview(dispute=DisputeView.of(d, uow.now), review=ReviewView.of(r))
                for d, r in found
            ]
        )

    return await _in_uow(runtime, load)


@router.post("/moderation/disputes/{review_id}/decision", response_model=DisputeView)
async def dispute_decision(
    review_id: str,
    body: DisputeDecisionBody,
    moderator: Moderator,
    runtime: Runtime,
    context: Context,
) -> DisputeView:
    """Answer the dispute of a review: uphold it, or withdraw the review (published as
    `review.withdrawn.v1` with the reason); the agent is mailed the answer. 409
    `dispute_closed` when already answered."""

    async def answer(uow: UnitOfWork) -> DisputeView:
        answered = await handlers.answer_dispute(
            uow,
            context,
            review_id,
            body.decision,
            body.reason,
            Actor(moderator.sub, moderator.role.value),
        )
        return DisputeView.of(answered, uow.now)

    return await _in_uow(runtime, answer)


# pages (no JavaScript needed; every value is escaped by the templates)


def _page(
    name: str, status: int = 200, headers: dict[str, str] | None = None, **context: object
) -> HTMLResponse:
    html = PAGES.get_template(name).render(**context)
    return HTMLResponse(
        html, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})}
    )


def _problem_page(error: ProblemError, token: str | None = None) -> HTMLResponse:
    if error.status == 503 and token:
        # the link is genuine but its invitation has not reached this service yet: the page
        # comes back by itself (meta refresh), or with the button, no JavaScript needed
        return _page(
            "preparing.html",
            503,
            headers=error.headers,
            retry_url="/survey?" + urlencode({"token": token}),
            retry_seconds=PREPARING_RETRY_SECONDS,
        )
    if error.status in (404, 429):
        return _page("pin.html", error.status, error=error.detail)
    return _page(
        "problem.html", error.status, title=error.title, message=error.detail, offer_pin=True
    )


async def _agent_name(runtime: ServiceRuntime, agent_id: str) -> str:
    async with runtime.unit_of_work() as uow:
        agent = await ReviewsRepository(uow.conn).agent(agent_id)
    return agent.name if agent else "your agent"


async def _form_page(
    runtime: ServiceRuntime,
    invitation: Invitation,
    *,
    pin: str | None,
    token: str | None,
    values: dict[str, str] | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    return _page(
        "form.html",
        status,
        agent_name=await _agent_name(runtime, invitation.agent_id),
        removal=invitation.survey == "removal",
        handoff=invitation.removal_reason in HANDOFF_REASONS,
        categories=CATEGORY_LABELS,
        pin=pin,
        token=token,
        values=values or {},
        errors=errors or [],
        max_comment=MAX_COMMENT,
    )


async def _form(request: Request) -> dict[str, str]:
    raw = (await request.body())[: 4 * MAX_COMMENT].decode(errors="replace")
    return {key: values[0] for key, values in parse_qs(raw, keep_blank_values=True).items()}


@pages.get("/survey", response_class=HTMLResponse)
async def survey_page(
    request: Request,
    runtime: Runtime,
    context: Context,
    token: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """PIN entry, or straight to the questions with the link's `?token=`."""
    if not token:
        return _page("pin.html", error=None)
    try:
        invitation = await _invitation_for(
            runtime, context, pin=None, token=token, address=_address(request)
        )
    except ProblemError as error:
        return _problem_page(error, token)
    return await _form_page(runtime, invitation, pin=None, token=token)


@pages.post("/survey", response_class=HTMLResponse)
async def survey_pin(request: Request, runtime: Runtime, context: Context) -> HTMLResponse:
    pin = (await _form(request)).get("pin", "").strip()[:40]
    if not pin:
        return _page("pin.html", 422, error="Please enter the PIN from your email.")
    try:
        invitation = await _invitation_for(
            runtime, context, pin=pin, token=None, address=_address(request)
        )
    except ProblemError as error:
        return _problem_page(error)
    return await _form_page(runtime, invitation, pin=pin, token=None)


@pages.post("/survey/answers", response_class=HTMLResponse)
async def survey_answers(request: Request, runtime: Runtime, context: Context) -> HTMLResponse:
    form = await _form(request)
    pin, token = form.get("pin") or None, form.get("token") or None
    body, errors = _answers_of(form, lambda answers: ReviewBody(pin=pin, token=token, **answers))
    try:
        if body is None:
            invitation = await _invitation_for(
                runtime, context, pin=pin, token=token, address=_address(request)
            )
            return await _form_page(
                runtime, invitation, pin=pin, token=token, values=form, errors=errors, status=422
            )
        review = await _submit_with_code(runtime, context, body, _address(request))
    except ProblemError as error:
        return _problem_page(error, token)
    return _page(
        "thanks.html",
        agent_name=await _agent_name(runtime, review.agent_id),
        comment=review.comment,
        review_id=review.review_id,
        published=review.state.value == "published",
        status_url=status_path(context, review.review_id),  # the page's own host, whatever it is
    )


STATUS_LABELS = {
    "held": "Being checked",
    "published": "Published",
    "rejected": "Not published",
    "removed": "Removed",
}


async def _status_page(
    runtime: ServiceRuntime,
    context: handlers.Context,
    token: str,
    *,
    values: dict[str, str] | None = None,
    errors: list[str] | None = None,
    saved: bool = False,
    status: int = 200,
) -> HTMLResponse:
    try:
        review = await _in_uow(runtime, lambda uow: _client_review(runtime, context, uow, token))
    except ProblemError as error:
        return _page(
            "problem.html", error.status, title=error.title, message=error.detail, offer_pin=False
        )
    filled = (
        values
        if values is not None
        else {
            **{category: str(score) for category, score in review.scores.items()},
            "comment": review.comment,
            "display_name": review.display_name or "",
        }
    )
    return _page(
        "status.html",
        status,
        view=review,
        token=token,
        agent_name=review.agent_name,
        review_id=review.review_id,
        scores=review.scores,
        comment=review.comment,
        agent_response=review.agent_response,
        categories=CATEGORY_LABELS,
        values=filled,
        errors=errors or [],
        saved=saved,
        max_comment=MAX_COMMENT,
        STATUS_LABELS=STATUS_LABELS,
    )


@pages.get("/review-status", response_class=HTMLResponse)
async def review_status_page(
    runtime: Runtime, context: Context, token: Annotated[str, Query(max_length=200)] = ""
) -> HTMLResponse:
    """The client's review and its state, from the link in the thank-you mail; a rejected
    review's form to edit and send it again."""
    return await _status_page(runtime, context, token)


@pages.post("/review-status", response_class=HTMLResponse)
async def review_status_resubmission(
    request: Request, runtime: Runtime, context: Context
) -> HTMLResponse:
    form = await _form(request)
    token = form.get("token", "")[:200]
    body, errors = _answers_of(form, lambda answers: ResubmissionBody(token=token, **answers))
    if body is None:
        return await _status_page(runtime, context, token, values=form, errors=errors, status=422)
    resubmission = body

    async def resend(uow: UnitOfWork) -> None:
        review_id = context.hasher.status_review(resubmission.token)
        if review_id is None:
            raise NotFoundError("this link does not open a review")
        await handlers.resubmit(uow, context, review_id, resubmission.answers(), _address(request))

    try:
        await _in_uow(runtime, resend)
    except ProblemError as error:
        if error.status != 409:
            return _page(
                "problem.html",
                error.status,
                title=error.title,
                message=error.detail,
                offer_pin=False,
            )
        return await _status_page(runtime, context, token, errors=[error.detail], status=409)
    return await _status_page(runtime, context, token, saved=True)


def _answers_of(
    form: dict[str, str], body: Callable[[dict[str, Any]], BodyT]
) -> tuple[BodyT | None, list[str]]:
    """The survey form's answers (scores, comment, display name) as the route's `body`, or the
    messages to show beside the form: one per score left out, else pydantic's, in plain words."""
    missing = [label for category, label in CATEGORY_LABELS if not form.get(category)]
    if missing:
        return None, [f"Choose a score from 1 to 5 for “{label}”." for label in missing]
    try:
        return body(
            {
                "scores": Scores.model_validate({c: _int(form.get(c)) for c in CATEGORIES}),
                "comment": form.get("comment", ""),
                "display_name": form.get("display_name") or None,
            }
        ), []
    except ValidationError as exc:
        return None, [_message(error) for error in exc.errors()]


def _int(value: str | None) -> int | str | None:
    # ASCII only: str.isdigit() also admits "²", which int() refuses
    return int(value) if value is not None and value.isascii() and value.isdigit() else value


def _message(error: object) -> str:
    details = error if isinstance(error, dict) else {}
    field = ".".join(str(part) for part in details.get("loc", ()) if part != "scores")
    label = dict(CATEGORY_LABELS).get(field, field.replace("_", " ") or "the form")
    return f"{label}: {details.get('msg', 'invalid')}"
