"""The events the invitations service consumes: the MLS roster and closings, leads, removals and
answered surveys. Each loads, decides (domain), saves and publishes in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from services.invitations.domain.model import (
    ClientContact,
    clock_for_roster,
    participation_for_new_agent,
)
from services.invitations.handlers.context import Context, repository
from services.invitations.handlers.issuing import announce, plan, removal_survey
from services.invitations.handlers.mails import thank_client
from shared.contracts import (
    AGENT_UPSERTED,
    ERASURE_REQUESTED,
    INVITATION_CANCELLED,
    INVITATION_EXPIRED,
    INVITATION_ISSUED,
    LEAD_ASSIGNED,
    PARTICIPATION_CHANGED,
    REMOVAL_COMPLETED,
    SURVEY_ANSWERED,
)
from shared.contracts.leads import LeadAssigned
from shared.contracts.mls import AgentUpserted, TransactionClosed
from shared.contracts.removals import RemovalCompleted
from shared.contracts.reviews import Channel, SurveyAnswered
from shared.messaging import Delivery, EventDispatcher
from shared.topics import Topic
from shared.uow import UnitOfWork

logger = logging.getLogger(__name__)


def dispatcher(ctx: Context) -> EventDispatcher:
    """The topics and event types the service consumes, each routed to its handler with `ctx`."""
    routes = EventDispatcher(
        "invitations",
        publishes=(
            PARTICIPATION_CHANGED,
            INVITATION_ISSUED,
            INVITATION_EXPIRED,
            INVITATION_CANCELLED,
            ERASURE_REQUESTED,
        ),
    )
    routes.on(AGENT_UPSERTED)(partial(agent_upserted, ctx=ctx))
    routes.on_batch(Topic.MLS_TRANSACTIONS)(partial(transactions_closed, ctx=ctx))
    routes.on(LEAD_ASSIGNED)(partial(lead_assigned, ctx=ctx))
    routes.on(REMOVAL_COMPLETED)(partial(removal_completed, ctx=ctx))
    routes.on(SURVEY_ANSWERED)(partial(survey_answered, ctx=ctx))
    return routes


async def agent_upserted(event: AgentUpserted, uow: UnitOfWork, ctx: Context) -> None:
    repo = repository(uow)
    await repo.serialise(f"agent:{event.agent_id}")
    # the agent's open compliance clocks stop while the roster marks them inactive and run on
    # when it marks them active again; requests are locked before the agent row, as the
    # compliance timer does (no deadlock between the two)
    requests = await repo.open_requests_of(event.agent_id, for_update=True)
    clocks = [clock_for_roster(r, active=event.active, now=uow.now) for r in requests]
    await repo.save_clocks([new for new, old in zip(clocks, requests, strict=True) if new != old])
    if await repo.upsert_agent(event, uow.now):
        mode, reason = participation_for_new_agent()
        await announce(uow, event.agent_id, mode, reason)
    agent = await repo.agent(event.agent_id)
    if agent is None:
        raise LookupError(f"agent {event.agent_id} not found right after its upsert")
    waiting = await repo.unplanned_representations_of_agent(event.agent_id)
    await plan(uow, ctx, repo, [(representation, agent) for representation in waiting])
    for held in await repo.take_held_removals_of_agent(event.agent_id):
        await removal_survey(
            uow, ctx, repo, held.lead_id, event.agent_id, held.reason, handed_to=held.handed_to
        )


async def transactions_closed(
    deliveries: Sequence[Delivery], uow: UnitOfWork, ctx: Context
) -> None:
    """A batch of closings planned together: a constant number of statements per batch, every
    agent they name locked first in one sorted statement. Replays (same or new ce_id) find the
    representations planned, or hit the unique index. Agents the roster does not name yet are
    planned when it does (`agent_upserted`)."""
    events = [d.event for d in deliveries if isinstance(d.event, TransactionClosed)]
    repo = repository(uow)
    await repo.serialise(*(f"agent:{r.agent_id}" for e in events for r in e.representations))
    await repo.save_transactions(events)
    waiting = await repo.unplanned_representations_of([e.transaction_id for e in events])
    agents = await repo.agents(r.agent_id for r in waiting)
    await plan(uow, ctx, repo, [(r, agents[r.agent_id]) for r in waiting if r.agent_id in agents])


async def lead_assigned(event: LeadAssigned, uow: UnitOfWork, ctx: Context) -> None:
    repo = repository(uow)
    client = ClientContact(
        event.client.name, event.client.email and str(event.client.email), event.client.phone
    )
    await repo.serialise(f"agent:{event.agent_id}", f"lead:{event.lead_id}:{event.agent_id}")
    await repo.save_lead(event.lead_id, event.agent_id, client)
    if await repo.agent(event.agent_id) is None:
        return  # a removal held for this lead waits for the roster to name the agent
    held = await repo.take_held_removal(event.lead_id, event.agent_id)
    if held is not None:
        await removal_survey(
            uow, ctx, repo, event.lead_id, event.agent_id, held.reason, handed_to=held.handed_to
        )


async def removal_completed(event: RemovalCompleted, uow: UnitOfWork, ctx: Context) -> None:
    repo = repository(uow)
    await repo.serialise(f"agent:{event.agent_id}", f"lead:{event.lead_id}:{event.agent_id}")
    # the lead, or the roster entry naming its agent, may come later (the topics are not
    # ordered together): hold the survey until both are known
    known = await repo.lead_known(event.lead_id, event.agent_id)
    if not known or await repo.agent(event.agent_id) is None:
        await repo.hold_removal(
            event.lead_id,
            event.agent_id,
            event.reason.value,
            event.completed_at,
            event.handed_to_agent_id,
        )
        return
    await removal_survey(
        uow,
        ctx,
        repo,
        event.lead_id,
        event.agent_id,
        event.reason,
        handed_to=event.handed_to_agent_id,
    )


async def survey_answered(event: SurveyAnswered, uow: UnitOfWork, ctx: Context) -> None:
    repo = repository(uow)
    if await repo.mark_answered(event.invitation_id, event.answered_at):
        logger.info("invitation %s answered (%s)", event.invitation_id, event.channel.value)
        if event.channel is Channel.EMAIL:
            await thank_client(uow, ctx, repo, event)
