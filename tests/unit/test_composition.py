"""Each app gets the dependencies its own settings describe: two apps of one service, built with
different settings in one process, never share or overwrite each other's."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request

from services.invitations.app import create_app as create_invitations
from services.invitations.settings import InvitationsSettings
from services.reviews.app import create_app as create_reviews
from services.reviews.settings import ReviewsSettings
from shared.runtime import context_of
from tests.support.kafka import dispatcher_of


def bound_dependencies(app: FastAPI) -> list[Any]:
    """What the app's event handlers were given beside the event and the unit of work."""
    dispatcher = dispatcher_of(app)
    handlers = [*dispatcher.handlers.values(), *dispatcher.batch_handlers.values()]
    return [value for h in handlers if isinstance(h, partial) for value in h.keywords.values()]


async def route_context(app: FastAPI) -> Any:
    """What the app's routes are given (their `context_of` dependency)."""
    return await context_of(Request({"type": "http", "app": app}))


async def test_two_invitations_apps_in_one_process_each_invite_under_their_own_settings() -> None:
    short = create_invitations(InvitationsSettings(environment="test", invitation_ttl_days=10))
    long = create_invitations(InvitationsSettings(environment="test", invitation_ttl_days=40))
    for app, days in ((short, 10), (long, 40)):
        context = await route_context(app)
        assert context.policy.invitation_ttl == timedelta(days=days)
        dependencies = bound_dependencies(app)
        assert dependencies and all(given is context for given in dependencies)


async def test_two_reviews_apps_in_one_process_each_keep_their_own_response_window() -> None:
    quick = create_reviews(ReviewsSettings(environment="test", response_window_days=1))
    slow = create_reviews(ReviewsSettings(environment="test", response_window_days=9))
    for app, days in ((quick, 1), (slow, 9)):
        context = await route_context(app)
        assert context.response_window == timedelta(days=days)
        dependencies = bound_dependencies(app)
        assert dependencies and all(given is context for given in dependencies)
