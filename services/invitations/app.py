"""Composition root of the invitations service: runtime (pool, broker, relays), consumers of
`mls.agents`, `mls.transactions`, `leads.assigned` and `removals.events`, the compliance and
invitation timers, and the HTTP routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.invitations import handlers
from services.invitations.api import public, router
from services.invitations.settings import InvitationsSettings
from shared.clock import Clock
from shared.mailer import Templates
from shared.runtime import ServiceRuntime, create_http_app

MIGRATIONS = Path(__file__).parent / "migrations"
MAX_BATCHES_PER_TICK = 50


def create_app(
    settings: InvitationsSettings | None = None, *, clock: Clock | None = None
) -> FastAPI:
    settings = settings or InvitationsSettings()
    context = handlers.Context(
        policy=settings.policy(),
        hasher=settings.secret_hasher(),
        templates=Templates(handlers.TEMPLATES),
        survey_base_url=settings.survey_base_url,
        service_base_url=settings.base_url,
        portal_url=settings.portal_url,
        contact_rules=settings.contact_rules(),
    )
    runtime = ServiceRuntime(
        settings, dispatcher=handlers.dispatcher(context), migrations=MIGRATIONS, clock=clock
    )

    @runtime.every(name="compliance")
    async def run_compliance(runtime: ServiceRuntime) -> None:
        """Agent reminders and auto opt-outs, a batch per transaction until none is due
        (bounded per tick)."""
        for _ in range(MAX_BATCHES_PER_TICK):
            async with runtime.unit_of_work() as uow:
                if await handlers.run_compliance(uow, context) == 0:
                    return

    @runtime.every(name="invitation_timers")
    async def run_invitation_timers(runtime: ServiceRuntime) -> None:
        """Client reminders and expiries, a batch per transaction until none is due
        (bounded per tick)."""
        for _ in range(MAX_BATCHES_PER_TICK):
            async with runtime.unit_of_work() as uow:
                if await handlers.run_invitation_timers(uow, context) == 0:
                    return

    return create_http_app(
        runtime,
        [router, public],
        title="Invitations",
        description="Agents' participation and compliance, survey invitations (PIN and link), "
        "phone-survey tasks, suppression and erasure. Publishes `agents.participation` and "
        "`invitations.events`.",
        context=context,
    )
