"""Composition root of the reviews service: runtime (pool, broker, relays), consumers of
`invitations.events` and `mls.agents`, the response-window timer, and the HTTP routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.reviews import handlers
from services.reviews.api import pages, router
from services.reviews.domain import language
from services.reviews.settings import ReviewsSettings
from shared.clock import Clock
from shared.mailer import Templates
from shared.runtime import ServiceRuntime, create_http_app

MIGRATIONS = Path(__file__).parent / "migrations"
MAX_BATCHES_PER_TICK = 50


def create_app(settings: ReviewsSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or ReviewsSettings()
    handlers.configure(
        handlers.Context(
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
        )
    )
    language.load()  # the classifier's model, read once before the first comment arrives
    runtime = ServiceRuntime(
        settings, dispatcher=handlers.dispatcher, migrations=MIGRATIONS, clock=clock
    )
    runtime.every(name="response_windows")(publish_due_reviews)
    runtime.every(seconds=300, name="prune_code_failures")(prune_code_failures)
    runtime.every(seconds=3600, name="prune_agent_addresses")(prune_agent_addresses)
    return create_http_app(
        runtime,
        [router, pages],
        title="Reviews",
        description="The client survey (PIN or link), moderation, agents' responses and the "
        "published review stream `reviews.published`.",
    )


async def publish_due_reviews(runtime: ServiceRuntime) -> None:
    """Publish reviews whose agent-response window ended (state in PostgreSQL, time from the
    clock, so it survives restarts), a batch per transaction (bounded per tick)."""
    for _ in range(MAX_BATCHES_PER_TICK):
        async with runtime.unit_of_work() as uow:
            if await handlers.publish_due(uow) == 0:
                return


async def prune_code_failures(runtime: ServiceRuntime) -> None:
    async with runtime.unit_of_work() as uow:
        await handlers.prune_code_failures(uow)


async def prune_agent_addresses(runtime: ServiceRuntime) -> None:
    """Keyed hashes of agents' addresses are kept `AGENT_ADDRESS_RETENTION_DAYS`, no longer."""
    async with runtime.unit_of_work() as uow:
        await handlers.prune_agent_addresses(uow)
