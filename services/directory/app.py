"""Composition root of the directory: runtime (pool, broker), consumers of `ratings`,
`reviews.public` and `mls.agents`, the rebuild of a new schema from offset 0, and the pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.directory import handlers
from services.directory.api import pages
from services.directory.rebuild import rebuild_if_new
from services.directory.settings import DirectorySettings
from shared.clock import Clock
from shared.runtime import ServiceRuntime, create_http_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: DirectorySettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or DirectorySettings()
    runtime = ServiceRuntime(
        settings,
        dispatcher=handlers.dispatcher,
        migrations=MIGRATIONS,
        clock=clock,
        publishes=False,
    )
    runtime.before_consuming.append(rebuild_if_new)
    return create_http_app(
        runtime,
        [pages],
        title="Directory",
        description="The public agent directory: search, agent profiles with every public "
        "review, embeddable badges and Atom feeds, built only from the public streams.",
    )
