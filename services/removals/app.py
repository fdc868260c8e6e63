"""Composition root of the removals service: runtime (pool, broker, outbox relay), consumers of
`leads.assigned`, `mls.transactions` and `clients.erasures`, and the HTTP routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.removals.api import router
from services.removals.handlers import dispatcher
from services.removals.settings import RemovalsSettings
from shared.clock import Clock
from shared.runtime import ServiceRuntime, create_http_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: RemovalsSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or RemovalsSettings()
    runtime = ServiceRuntime(settings, dispatcher=dispatcher, migrations=MIGRATIONS, clock=clock)
    return create_http_app(
        runtime,
        [router],
        title="Removals",
        description="Agents end client relationships (leads) with a reason; coordinators decide "
        "hand-offs and prior-client claims. Publishes `removals.events`.",
    )
