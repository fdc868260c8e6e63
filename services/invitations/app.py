"""Composition root of the invitations service: runtime (pool, broker, relays), consumers of
`mls.agents`, `mls.transactions`, `leads.assigned` and `removals.events`, the compliance and
invitation timers, and the HTTP routes."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from fastapi import FastAPI

from services.invitations import handlers
from services.invitations.api import public, router
from services.invitations.settings import InvitationsSettings
from shared.clock import Clock
from shared.mailer import Templates
from shared.runtime import ServiceRuntime, create_http_app, in_batches

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

    # agent reminders and auto opt-outs; client reminders and expiries
    runtime.every(name="compliance")(
        in_batches(partial(handlers.run_compliance, ctx=context), most=MAX_BATCHES_PER_TICK)
    )
    runtime.every(name="invitation_timers")(
        in_batches(partial(handlers.run_invitation_timers, ctx=context), most=MAX_BATCHES_PER_TICK)
    )

    return create_http_app(
        runtime,
        [router, public],
        title="Invitations",
        description="Agents' participation and compliance, survey invitations (PIN and link), "
        "phone-survey tasks, suppression and erasure. Publishes `agents.participation` and "
        "`invitations.events`.",
        context=context,
    )
