"""Composition root of the reviews service: runtime (pool, broker, relays), consumers of
`invitations.events` and `mls.agents`, the response-window timer, and the HTTP routes."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from fastapi import FastAPI

from services.reviews import handlers
from services.reviews.api import pages, router
from services.reviews.domain import language
from services.reviews.settings import ReviewsSettings
from shared.clock import Clock
from shared.mailer import Templates
from shared.runtime import ServiceRuntime, create_http_app, in_batches

MIGRATIONS = Path(__file__).parent / "migrations"
MAX_BATCHES_PER_TICK = 50


def create_app(settings: ReviewsSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or ReviewsSettings()
    context = handlers.Context(
        hasher=settings.secret_hasher(),
        templates=Templates(handlers.MAIL_TEMPLATES),
        response_window=settings.response_window,
        portal_url=settings.portal_url,
        failure_limit=settings.code_failure_limit,
        global_failure_limit=settings.code_failure_global_limit,
        failure_window=settings.code_failure_window,
        content_rules=settings.content_rules,
        signal_rules=settings.signal_rules,
        address_retention=settings.address_retention,
        dispute_business_days=settings.dispute_answer_business_days,
        moderator_emails=settings.moderator_addresses,
        holidays=settings.holidays,
    )
    language.load()  # the classifier's model, read once before the first comment arrives
    runtime = ServiceRuntime(
        settings, dispatcher=handlers.dispatcher(context), migrations=MIGRATIONS, clock=clock
    )

    # reviews whose agent-response window ended (state in PostgreSQL, time from the clock, so
    # it survives restarts)
    runtime.every(name="response_windows")(
        in_batches(partial(handlers.publish_due, ctx=context), most=MAX_BATCHES_PER_TICK)
    )
    runtime.every(seconds=300, name="prune_code_failures")(
        in_batches(partial(handlers.prune_code_failures, ctx=context), most=1)
    )
    # keyed hashes of agents' addresses are kept AGENT_ADDRESS_RETENTION_DAYS, no longer
    runtime.every(seconds=3600, name="prune_agent_addresses")(
        in_batches(partial(handlers.prune_agent_addresses, ctx=context), most=1)
    )

    return create_http_app(
        runtime,
        [router, pages],
        title="Reviews",
        description="The client survey (PIN or link), moderation, agents' responses and the "
        "published review stream `reviews.published`.",
        context=context,
    )
