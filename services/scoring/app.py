"""Composition root of the scoring service: runtime (pool, broker, outbox relay), consumers of
`reviews.published` (in batches), `mls.agents` and `agents.participation`, the clock-driven
re-rating scheduler, and the HTTP routes."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from fastapi import FastAPI

from services.scoring import handlers
from services.scoring.api import router
from services.scoring.domain.publication import policy_for
from services.scoring.settings import ScoringSettings
from shared.clock import Clock
from shared.runtime import ServiceRuntime, create_http_app, in_batches

MIGRATIONS = Path(__file__).parent / "migrations"
MAX_BATCHES_PER_TICK = 100
BATCH = 500


def create_app(settings: ScoringSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or ScoringSettings()
    policy = policy_for(settings.scoring_policy_version)
    runtime = ServiceRuntime(
        settings, dispatcher=handlers.dispatcher(policy), migrations=MIGRATIONS, clock=clock
    )

    # agents whose rating changes with time alone, a batch per transaction
    runtime.every(seconds=settings.rating_scheduler_seconds, name="rerate_due")(
        in_batches(
            partial(handlers.rerate_due, policy=policy), most=MAX_BATCHES_PER_TICK, full=BATCH
        )
    )

    return create_http_app(
        runtime,
        [router],
        title="Scoring",
        description="Stars and Silver/Gold status per agent by a versioned policy, exact as-of "
        "ratings with explanations, the public ranking, and the `ratings` stream.",
        context=policy,
    )
