"""Events from the streams and commands from the API: load, decide (domain), save, record the
decision, publish and mail, all in the unit of work's one transaction."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path

from services.reviews.domain.client_view import check_resubmission
from services.reviews.domain.disputes import (
    ANSWER_BUSINESS_DAYS,
    Dispute,
    DisputeDecision,
    closed_by_withdrawal,
    open_dispute,
    resolve,
)
from services.reviews.domain.model import (
    AGENT_VISIBLE,
    SHOWN_TO_AGENT,
    SYSTEM,
    TRUST_SIGNALS_ACTION,
    Agent,
    Decision,
    DecisionRecord,
    Invitation,
    InvitationProblem,
    RefusedError,
    Review,
    ReviewState,
    Step,
    after_submission,
    code_problem,
    counts_as_wrong_code,
    invitation_problem,
    moderate,
    respond,
    response_window_ended,
    routing_reason,
    submission_decisions,
    submitted_review,
    too_many_failures,
    visible_to,
    withdraw,
)
from services.reviews.domain.moderation import ContentRules, route_submission
from services.reviews.domain.signals import (
    ADDRESS_RETENTION,
    Signal,
    SignalRules,
    Submission,
    comparable_address,
    held,
    signals,
)
from services.reviews.domain.visibility import AGENT_NOT_PUBLIC, reconcile, shows_on_publication
from services.reviews.repository import CodeLookup, ReviewsRepository
from shared.contracts import (
    AGENT_UPSERTED,
    ERASURE_REQUESTED,
    INVITATION_CANCELLED,
    INVITATION_EXPIRED,
    INVITATION_ISSUED,
    PARTICIPATION_CHANGED,
    PUBLIC_REVIEW_PUBLISHED,
    PUBLIC_REVIEW_WITHDRAWN,
    REVIEW_PUBLISHED,
    REVIEW_WITHDRAWN,
    SURVEY_ANSWERED,
)
from shared.contracts.erasures import ErasureRequested
from shared.contracts.invitations import InvitationClosed, InvitationIssued
from shared.contracts.mls import AgentUpserted
from shared.contracts.participation import ParticipationChanged
from shared.contracts.removals import RemovalReason
from shared.contracts.reviews import (
    Channel,
    ReviewPublished,
    ReviewWithdrawn,
    Scores,
    SurveyAnswered,
    SurveyKind,
)
from shared.crypto import SecretHasher
from shared.errors import NotFoundError
from shared.mailer import QueuedMail, Templates
from shared.messaging import EventDispatcher
from shared.metrics import TRUST_SIGNALS
from shared.portal import disputes_page, review_page
from shared.uow import UnitOfWork

logger = logging.getLogger(__name__)

MAIL_TEMPLATES = Path(__file__).parent / "templates" / "mail"


@dataclass(frozen=True)
class Context:
    """What the handlers are given beyond the unit of work, built by the composition root."""

    hasher: SecretHasher
    templates: Templates
    response_window: timedelta
    portal_url: str
    failure_limit: int
    global_failure_limit: int
    failure_window: timedelta
    content_rules: ContentRules = field(default_factory=ContentRules)
    signal_rules: SignalRules = field(default_factory=SignalRules)
    address_retention: timedelta = ADDRESS_RETENTION
    dispute_business_days: int = ANSWER_BUSINESS_DAYS
    moderator_emails: tuple[str, ...] = ()
    """Told of each new dispute (`MODERATOR_EMAILS`); none: no mail."""
    holidays: frozenset[date] = frozenset()
    """Public holidays, not business days for a dispute's deadline (`PUBLIC_HOLIDAYS`)."""


@dataclass(frozen=True)
class Answers:
    scores: Scores
    comment: str
    display_name: str | None


@dataclass(frozen=True)
class Actor:
    """Who took a decision, for the record."""

    id: str
    role: str


@dataclass(frozen=True)
class CodeRefused:
    """Why a PIN or link cannot be used; `retry_after` is set when the caller is rate-limited."""

    problem: InvitationProblem | None
    retry_after: timedelta | None = None


def repository(uow: UnitOfWork) -> ReviewsRepository:
    return ReviewsRepository(uow.conn)


def dispatcher(ctx: Context) -> EventDispatcher:
    """The topics and event types the service consumes, each routed to its handler with `ctx`."""
    routes = EventDispatcher(
        "reviews",
        publishes=(
            REVIEW_PUBLISHED,
            REVIEW_WITHDRAWN,
            PUBLIC_REVIEW_PUBLISHED,
            PUBLIC_REVIEW_WITHDRAWN,
            SURVEY_ANSWERED,
        ),
    )
    routes.on(AGENT_UPSERTED)(partial(agent_upserted, ctx=ctx))
    routes.on(PARTICIPATION_CHANGED)(participation_changed)
    routes.on(ERASURE_REQUESTED)(erasure_requested)
    routes.on(INVITATION_ISSUED)(invitation_issued)
    routes.on(INVITATION_EXPIRED)(invitation_closed)
    routes.on(INVITATION_CANCELLED)(invitation_closed)
    return routes


# events


async def agent_upserted(event: AgentUpserted, uow: UnitOfWork, ctx: Context) -> None:
    repo = repository(uow)
    await repo.upsert_agent(event, uow.now)
    for review in await repo.waiting_for_agent_notice(event.agent_id):
        await _notify_agent(uow, ctx, repo, review)
    await _reconcile_public(uow, repo, event.agent_id)


async def participation_changed(event: ParticipationChanged, uow: UnitOfWork) -> None:
    repo = repository(uow)
    await repo.save_participation(event)
    await _reconcile_public(uow, repo, event.agent_id)


async def erasure_requested(event: ErasureRequested, uow: UnitOfWork) -> None:
    """The client's reviews keep their scores (they count for the agent) and lose what the
    client wrote and the name they gave; a published one is published again without them, so
    scoring's log and the public stream carry no more of it from now on."""
    repo = repository(uow)
    erased = await repo.erase_reviews_of(event.invitation_ids, uow.now)
    await repo.erase_from_outbox([review.review_id for review in erased])
    for review in erased:
        await repo.record_decisions(
            review.review_id,
            uow.now,
            [DecisionRecord(SYSTEM, SYSTEM, "erased", f"erasure {event.erasure_id}")],
        )
        if review.state is ReviewState.PUBLISHED:
            await _publish(uow, repo, review)
    if erased:
        logger.info("erasure %s: %d reviews erased", event.erasure_id, len(erased))


async def invitation_issued(event: InvitationIssued, uow: UnitOfWork) -> None:
    if await repository(uow).add_invitation(event):
        logger.info(
            "invitation %s for agent %s (%s, %s)",
            event.invitation_id,
            event.agent_id,
            event.survey.value,
            event.channel.value,
        )


async def invitation_closed(event: InvitationClosed, uow: UnitOfWork) -> None:
    await repository(uow).close_invitation(event.invitation_id, event.at, event.reason)


# the survey


async def find_by_code(
    uow: UnitOfWork,
    ctx: Context,
    *,
    pin: str | None,
    token: str | None,
    address: str,
    lock: bool = False,
) -> Invitation | CodeRefused:
    """The invitation a PIN or link belongs to, if usable. Wrong codes (PINs, and links without
    our MAC) are counted per client address and in total; past either limit every attempt is
    refused for a while. A genuine link whose invitation has not arrived yet is `PREPARING`,
    and not counted. `lock`: the invitation is locked for a submission (give it to `submit` as
    it is)."""
    repo = repository(uow)
    since = uow.now - ctx.failure_window
    code = (
        CodeLookup("pin_hash", ctx.hasher.pin_hashes(pin))
        if pin
        else CodeLookup("token_hash", ctx.hasher.token_hashes(token))
        if token
        else None
    )

    def too_many(mine: int, everyone: int) -> bool:
        return too_many_failures(mine, ctx.failure_limit) or too_many_failures(
            everyone, ctx.global_failure_limit
        )

    async def locked_out() -> bool:
        return too_many(*await repo.code_failures(address, since))

    invitation: Invitation | None = None
    if lock and code:  # a submission: the check, the lock and the read in one statement
        mine, everyone, invitation = await repo.code_failures_and_invitation(address, since, code)
        refused = too_many(mine, everyone)
    else:
        refused = await locked_out()
        if not refused and code:
            invitation = await repo.invitation_by_code(code)
    if refused:
        return CodeRefused(None, retry_after=ctx.failure_window)
    # a link clicked before the invitation event arrived carries its invitation id under our
    # MAC: "being prepared", and never counted as a wrong code
    linked = ctx.hasher.linked_invitation(token) if token and invitation is None else None
    problem = code_problem(
        invitation.view if invitation else None,
        uow.now,
        genuine_link=linked is not None,
        linked_invitation_seen=linked is not None and await repo.invitation(linked) is not None,
    )
    if counts_as_wrong_code(problem, genuine_link=linked is not None):
        # Wrong codes from one address are counted again under its lock, so a concurrent burst
        # cannot all pass the check above; right ones never wait for that lock.
        await repo.lock_code_failures(address)
        if await locked_out():
            return CodeRefused(None, retry_after=ctx.failure_window)
        await repo.add_code_failure(address, uow.now)
        logger.info("wrong survey code from %s", address)
    if problem is not None or invitation is None:
        return CodeRefused(problem)
    return invitation


async def submit(
    uow: UnitOfWork,
    ctx: Context,
    invitation_or_id: Invitation | str,
    answers: Answers,
    *,
    channel: Channel,
    actor: Actor,
    address: str | None = None,
) -> Review:
    """Store the answers for an invitation (one review per invitation) and route them. Give
    the invitation's id, or the invitation as `find_by_code(lock=True)` read it under lock.
    `address`: the client's network address, for the trust signals (never stored)."""
    repo = repository(uow)
    if isinstance(invitation_or_id, str):
        invitation_id = invitation_or_id
        invitation = await repo.invitation(invitation_id, lock=True)
    else:
        invitation_id, invitation = invitation_or_id.invitation_id, invitation_or_id
    problem = invitation_problem(invitation.view if invitation else None, uow.now)
    if invitation is None or problem is InvitationProblem.UNKNOWN:
        raise NotFoundError(f"no invitation {invitation_id}")
    if invitation.channel != channel.value:
        raise RefusedError(
            InvitationProblem.WRONG_CHANNEL.value,
            f"this is a {invitation.channel} survey, not {channel.value}",
        )
    if problem is not None:
        raise RefusedError(problem.value, _PROBLEM_TEXT[problem])
    routing = route_submission(
        answers.scores.as_dict(), answers.comment, answers.display_name, ctx.content_rules
    )
    found = await _trust_signals(ctx, repo, invitation, answers.comment, address, uow.now)
    routing = held(routing, found)
    for flag in routing.flags:
        TRUST_SIGNALS.labels("reviews", flag.value, "held").inc()
    step = after_submission(routing, uow.now, ctx.response_window)
    review = submitted_review(
        str(uuid.uuid4()),
        invitation,
        scores=answers.scores.as_dict(),
        comment=answers.comment,
        display_name=answers.display_name,
        channel=channel.value,
        routing=routing,
        step=step,
        signals=[signal.value for signal in found],
        now=uow.now,
        entered_by=actor.id if channel is Channel.PHONE else None,
    )
    submitted_by = DecisionRecord(actor.id, actor.role, "submitted", f"channel {channel.value}")
    decisions = submission_decisions(submitted_by, review.signals, routing, step)
    # told at once when the review is theirs to see: stored as told with the review itself
    agent = await repo.insert_review(
        review,
        decisions,
        at=uow.now,
        notify=step.state in SHOWN_TO_AGENT,
        lock_public=step.publish,
    )
    await uow.publish(
        SURVEY_ANSWERED,
        SurveyAnswered(
            invitation_id=invitation.invitation_id,
            agent_id=invitation.agent_id,
            review_id=review.review_id,
            channel=channel,
            answered_at=uow.now,
        ),
    )
    if step.publish:
        await _publish(uow, repo, review, locked=True)
    if agent is not None:
        review = replace(review, agent_notified_at=uow.now)
        await _send_notice(uow, ctx, agent, review)
    logger.info("review %s for agent %s: %s", review.review_id, review.agent_id, step.state.value)
    return review


async def _trust_signals(
    ctx: Context,
    repo: ReviewsRepository,
    invitation: Invitation,
    comment: str,
    address: str | None,
    now: datetime,
    *,
    excluding: str = "",
) -> tuple[Signal, ...]:
    """Signs that the agent wrote this review or had it written (docs/design.md §3.3)."""
    rules = ctx.signal_rules
    address = comparable_address(address)
    history = await repo.trust_history(
        invitation.agent_id,
        now - max(rules.burst_window, rules.copy_window),
        ctx.hasher.address_hash(address) if address is not None else None,
        now - ctx.address_retention,
        excluding=excluding,
    )
    found = signals(
        Submission(now, comment, invitation.trust_flags, history.from_agent),
        history.earlier,
        rules,
    )
    for signal in found:
        TRUST_SIGNALS.labels("reviews", signal.value, "held").inc()
    return found


async def resubmit(
    uow: UnitOfWork, ctx: Context, review_id: str, answers: Answers, address: str
) -> Review:
    """The client edits a review a moderator rejected and sends it again, once: it goes
    through the same checks and routing as a first submission (docs/design.md 1.10)."""
    repo = repository(uow)
    review = await _locked(repo, review_id)
    check_resubmission(review.state, review.resubmissions)
    invitation = await repo.invitation(review.invitation_id)
    if invitation is None:  # a review references its invitation
        raise LookupError(f"review {review_id} names no stored invitation")
    routing = route_submission(
        answers.scores.as_dict(), answers.comment, answers.display_name, ctx.content_rules
    )
    found = await _trust_signals(
        ctx, repo, invitation, answers.comment, address, uow.now, excluding=review_id
    )
    routing = held(routing, found)
    step = after_submission(routing, uow.now, ctx.response_window)
    await repo.save_resubmission(
        review_id,
        scores=answers.scores.as_dict(),
        positive=routing.positive,
        comment=answers.comment,
        display_name=answers.display_name,
        flags=[flag.value for flag in routing.flags],
        signals=[signal.value for signal in found],
        at=uow.now,
    )
    if found:
        signals_found = ", ".join(signal.value for signal in found)
        await repo.record_decisions(
            review_id,
            uow.now,
            [DecisionRecord(SYSTEM, SYSTEM, TRUST_SIGNALS_ACTION, signals_found)],
        )
    reason = routing_reason(routing, signalled=bool(found))
    client = Actor("client", "client")
    return await _apply(uow, ctx, repo, review, step, client, reason, action="resubmitted")


async def review_for_status(
    uow: UnitOfWork, ctx: Context, token: str
) -> tuple[Review, list[Decision]]:
    """The review a status link opens, with its decision record; NotFoundError otherwise."""
    repo = repository(uow)
    review_id = ctx.hasher.status_review(token)
    review = await repo.review(review_id) if review_id else None
    if review is None:
        raise NotFoundError("this link does not open a review")
    return review, await repo.decisions(review.review_id)


async def agent_seen(uow: UnitOfWork, ctx: Context, agent_id: str, address: str) -> None:
    """An agent used the API from this address: a review sent from it is held a while."""
    if (comparable := comparable_address(address)) is not None:
        hashed = ctx.hasher.address_hash(comparable)
        await repository(uow).agent_seen_at(agent_id, hashed, uow.now)


async def prune_agent_addresses(uow: UnitOfWork, ctx: Context) -> int:
    return await repository(uow).prune_agent_addresses(uow.now - ctx.address_retention)


_PROBLEM_TEXT = {
    InvitationProblem.UNKNOWN: "This code is not one we issued. Check it and try again.",
    InvitationProblem.PREPARING: "Your survey is being prepared. Please try again in a minute.",
    InvitationProblem.EXPIRED: "This survey has expired.",
    InvitationProblem.CLOSED: "This survey is no longer open.",
    InvitationProblem.USED: "This survey has already been answered. Thank you!",
    InvitationProblem.WRONG_CHANNEL: "This survey is answered another way.",
}


def problem_text(problem: InvitationProblem) -> str:
    return _PROBLEM_TEXT[problem]


# staff and agents


async def review_for(
    uow: UnitOfWork, review_id: str, *, agent_id: str | None, moderator: bool
) -> tuple[Review, list[Decision]]:
    """A review with its decision record, for a reader allowed to see it (`visible_to`)."""
    repo = repository(uow)
    review = await repo.review(review_id)
    if review is None or not visible_to(review, agent_id=agent_id, moderator=moderator):
        raise NotFoundError(f"no review {review_id}")
    return review, await repo.decisions(review_id)


async def decide(
    uow: UnitOfWork, ctx: Context, review_id: str, *, approve: bool, reason: str, actor: Actor
) -> Review:
    repo = repository(uow)
    review = await _locked(repo, review_id)
    step = moderate(
        review.state,
        approve=approve,
        positive=review.positive,
        now=uow.now,
        window=ctx.response_window,
    )
    return await _apply(
        uow, ctx, repo, review, step, actor, reason, action="approved" if approve else "rejected"
    )


async def add_response(
    uow: UnitOfWork, ctx: Context, review_id: str, text: str, actor: Actor
) -> Review:
    repo = repository(uow)
    review = await _locked(repo, review_id)
    if not visible_to(review, agent_id=actor.id):
        raise NotFoundError(f"no review {review_id} for agent {actor.id}")
    step = respond(review.state, review.agent_response)
    await repo.save_response(review_id, text, uow.now)
    return await _apply(
        uow, ctx, repo, review, step, actor, "the agent responded", action="responded"
    )


async def withdraw_review(
    uow: UnitOfWork, ctx: Context, review_id: str, reason: str, actor: Actor
) -> Review:
    repo = repository(uow)
    review = await _locked(repo, review_id)
    step = withdraw(review.state)
    await repo.save_state(review_id, step.state)
    await repo.record_decisions(
        review_id, uow.now, [DecisionRecord(actor.id, actor.role, "withdrawn", reason)]
    )
    dispute = await repo.dispute_of(review_id)
    answered = closed_by_withdrawal(dispute, reason, moderator=actor.id, now=uow.now)
    if answered is not None:
        await repo.save_dispute(answered)
        await _tell_dispute_answered(uow, ctx, repo, answered)
    withdrawn = ReviewWithdrawn(
        review_id=review_id, agent_id=review.agent_id, withdrawn_at=uow.now, reason=reason
    )
    await uow.publish(REVIEW_WITHDRAWN, withdrawn)
    await repo.agent_is_public(review.agent_id)  # the agent's lock: see _publish
    if await repo.take_down([review_id]):
        await uow.publish(PUBLIC_REVIEW_WITHDRAWN, withdrawn)
    return await _reload(repo, review_id)


async def dispute(
    uow: UnitOfWork, ctx: Context, review_id: str, reason: str, actor: Actor
) -> Dispute:
    """The agent disputes a published review of theirs, once, with a reason; a moderator
    answers by the dispute's `answer_due_at` (docs/design.md 1.10)."""
    repo = repository(uow)
    review = await _locked(repo, review_id)
    if review.agent_id != actor.id or review.state not in AGENT_VISIBLE:
        raise NotFoundError(f"no review {review_id} for agent {actor.id}")
    opened = open_dispute(
        dispute_id=str(uuid.uuid4()),
        review_id=review_id,
        agent_id=actor.id,
        state=review.state,
        earlier=await repo.dispute_of(review_id),
        reason=reason,
        now=uow.now,
        business_days=ctx.dispute_business_days,
        holidays=ctx.holidays,
    )
    await repo.save_dispute(opened)
    await repo.record_decisions(
        review_id, uow.now, [DecisionRecord(actor.id, actor.role, "disputed", opened.reason)]
    )
    await _tell_moderators(uow, ctx, repo, opened)
    logger.info("review %s disputed by agent %s", review_id, actor.id)
    return opened


async def _tell_moderators(
    uow: UnitOfWork, ctx: Context, repo: ReviewsRepository, dispute: Dispute
) -> None:
    """A mail to each moderator address: a dispute waits, and by when it must be answered."""
    if not ctx.moderator_emails:
        return
    mail = ctx.templates.render(
        "moderator_dispute_opened",
        agent=await repo.agent(dispute.agent_id),
        dispute=dispute,
        disputes_url=disputes_page(ctx.portal_url),
        review_url=review_page(ctx.portal_url, dispute.review_id),
    )
    await uow.send_mails(
        [
            QueuedMail(address, mail, f"dispute-opened:{dispute.dispute_id}:{n}")
            for n, address in enumerate(ctx.moderator_emails, 1)
        ]
    )


async def answer_dispute(
    uow: UnitOfWork,
    ctx: Context,
    review_id: str,
    decision: DisputeDecision,
    reason: str,
    actor: Actor,
) -> Dispute:
    """A moderator upholds the disputed review or withdraws it, by the usual withdrawal (so
    scoring's log and the public stream take it down), with a reason the agent reads."""
    repo = repository(uow)
    await _locked(repo, review_id)
    dispute = await repo.dispute_of(review_id)
    if dispute is None:
        raise NotFoundError(f"no dispute of review {review_id}")
    answered = resolve(dispute, decision, reason, moderator=actor.id, now=uow.now)
    if decision is DisputeDecision.WITHDRAW:
        await withdraw_review(uow, ctx, review_id, answered.resolution or reason, actor)
        closed = await repo.dispute_of(review_id)
        if closed is None:
            raise LookupError(f"the dispute of review {review_id} vanished in its withdrawal")
        return closed
    await repo.save_dispute(answered)
    await repo.record_decisions(
        review_id,
        uow.now,
        [DecisionRecord(actor.id, actor.role, "dispute_upheld", answered.resolution or "")],
    )
    await _tell_dispute_answered(uow, ctx, repo, answered)
    return answered


async def _tell_dispute_answered(
    uow: UnitOfWork, ctx: Context, repo: ReviewsRepository, dispute: Dispute
) -> None:
    agent = await repo.agent(dispute.agent_id)
    if agent is None:
        return
    mail = ctx.templates.render(
        "agent_dispute_answered",
        agent=agent,
        dispute=dispute,
        review_url=review_page(ctx.portal_url, dispute.review_id),
    )
    await uow.send_mail(
        to=agent.email, mail=mail, dedupe_key=f"dispute-answered:{dispute.dispute_id}"
    )


async def publish_due(uow: UnitOfWork, ctx: Context, limit: int = 100) -> int:
    """Publish reviews whose response window has ended; returns how many."""
    repo = repository(uow)
    due = await repo.due_for_publication(uow.now, limit)
    for review in due:
        step = response_window_ended(review.state, review.response_due_at, uow.now)
        if step is not None:
            await _apply(
                uow, ctx, repo, review, step, Actor(SYSTEM, SYSTEM), "the response window ended"
            )
    return len(due)


async def prune_code_failures(uow: UnitOfWork, ctx: Context) -> int:
    return await repository(uow).prune_code_failures(uow.now - ctx.failure_window)


# the steps every path shares


async def _apply(
    uow: UnitOfWork,
    ctx: Context,
    repo: ReviewsRepository,
    review: Review,
    step: Step,
    actor: Actor,
    reason: str,
    *,
    action: str | None = None,
) -> Review:
    """Store a stored review's step, record it, publish if it says so, and tell the agent when
    the review first becomes theirs to see (`submit` does all of it for a new review). Returns
    the review as stored afterwards."""
    await repo.save_state(
        review.review_id,
        step.state,
        response_due_at=step.response_due_at,
        published_at=uow.now if step.publish else None,
    )
    decisions = []
    if action is not None:
        decisions.append(DecisionRecord(actor.id, actor.role, action, reason))
    if step.state is not review.state or step.publish:
        decisions.append(DecisionRecord(SYSTEM, SYSTEM, f"to_{step.state.value}", reason))
    await repo.record_decisions(review.review_id, uow.now, decisions)
    current = await _reload(repo, review.review_id)
    if step.publish:
        await _publish(uow, repo, current)
    first_shown = current.agent_notified_at is None and current.state in SHOWN_TO_AGENT
    if first_shown and await _notify_agent(uow, ctx, repo, current):
        current = replace(current, agent_notified_at=uow.now)
    return current


async def _publish(
    uow: UnitOfWork, repo: ReviewsRepository, review: Review, *, locked: bool = False
) -> None:
    """Publish a review (again) on the moderated log scoring reads, and on the public stream
    while its agent is public (docs/design.md §2.3). The agent's public-stream lock, taken
    after the review's row lock, keeps this from interleaving with a change of visibility,
    which takes no review row lock. `locked`: the transaction holds that lock already."""
    event = published_event(review)
    await uow.publish(REVIEW_PUBLISHED, event)
    public = await repo.agent_is_public(review.agent_id, locked=locked)
    if shows_on_publication(public, review.state):
        await uow.publish(PUBLIC_REVIEW_PUBLISHED, event)
        await repo.show(review.agent_id, [review.review_id], uow.now)


async def _reconcile_public(uow: UnitOfWork, repo: ReviewsRepository, agent_id: str) -> None:
    """All or none: when the agent becomes public, every published review of theirs appears on
    the public stream in `submitted_at` order; when they stop being public, each review it
    showed is withdrawn there with reason `agent_not_public`."""
    changes = reconcile(await repo.agent_is_public(agent_id), await repo.public_views(agent_id))
    if not changes:
        return
    reviews = await repo.reviews([*changes.show, *changes.take_down])
    for review_id in changes.show:
        await uow.publish(PUBLIC_REVIEW_PUBLISHED, published_event(reviews[review_id]))
    for review_id in changes.take_down:
        await uow.publish(
            PUBLIC_REVIEW_WITHDRAWN,
            ReviewWithdrawn(
                review_id=review_id,
                agent_id=agent_id,
                withdrawn_at=uow.now,
                reason=AGENT_NOT_PUBLIC,
            ),
        )
    await repo.show(agent_id, changes.show, uow.now)
    await repo.take_down(changes.take_down)
    logger.info(
        "public stream of agent %s: %d shown, %d taken down",
        agent_id,
        len(changes.show),
        len(changes.take_down),
    )


def published_event(review: Review) -> ReviewPublished:
    if review.published_at is None:
        raise ValueError(f"review {review.review_id} is not published")
    return ReviewPublished(
        review_id=review.review_id,
        agent_id=review.agent_id,
        transaction_id=review.transaction_id,
        survey=SurveyKind(review.survey),
        removal_reason=RemovalReason(review.removal_reason) if review.removal_reason else None,
        channel=Channel(review.channel),
        submitted_at=review.submitted_at,
        published_at=review.published_at,
        scores=Scores.model_validate(review.scores),
        positive=review.positive,
        comment=review.comment,
        display_name=review.display_name,
        agent_response=review.agent_response,
    )


async def _notify_agent(
    uow: UnitOfWork, ctx: Context, repo: ReviewsRepository, review: Review
) -> bool:
    """Tell the agent about a review they may (published) or should (waiting) answer. An agent
    the roster has not named yet is told when it does."""
    agent = await repo.agent(review.agent_id)
    if agent is None:
        return False
    await _send_notice(uow, ctx, agent, review)
    await repo.mark_notified(review.review_id, uow.now)
    return True


async def _send_notice(uow: UnitOfWork, ctx: Context, agent: Agent, review: Review) -> None:
    template = (
        "agent_review_to_answer"
        if review.state is ReviewState.AWAITING_RESPONSE
        else "agent_review_published"
    )
    mail = ctx.templates.render(
        template,
        agent=agent,
        review=review,
        review_url=review_page(ctx.portal_url, review.review_id),
        due=review.response_due_at,
    )
    await uow.send_mail(to=agent.email, mail=mail, dedupe_key=f"review-notice:{review.review_id}")


async def _locked(repo: ReviewsRepository, review_id: str) -> Review:
    review = await repo.review(review_id, lock=True)
    if review is None:
        raise NotFoundError(f"no review {review_id}")
    return review


async def _reload(repo: ReviewsRepository, review_id: str) -> Review:
    review = await repo.review(review_id)
    if review is None:
        raise LookupError(f"review {review_id} vanished in its own transaction")
    return review
