"""Composition root of the portal: the session cookie, the OIDC client, the services' HTTP
clients (created in the lifespan) and the pages. No database, no Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.middleware.sessions import SessionMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from services.portal import agent, signin, staff
from services.portal.backends import ApiProblem, Backends
from services.portal.pages import home_of, refused, render
from services.portal.session import CsrfRefused, SignInNeeded, signed_in_person
from services.portal.settings import PortalSettings
from shared.clock import Clock
from shared.http import RequestMetrics
from shared.tracing import HTTP_TELEMETRY

SESSION_COOKIE = "portal_session"


def create_app(
    settings: PortalSettings | None = None,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """`transport`: how the services are reached (tests may route them in-process)."""
    settings = settings or PortalSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.backends = Backends(settings, transport)
        try:
            yield
        finally:
            await app.state.backends.close()

    app = FastAPI(
        title="Portal",
        description="The pages of agents, moderators, coordinators and phone surveyors.",
        version="1.0.0",
        lifespan=lifespan,
        telemetry=HTTP_TELEMETRY,
        openapi_url=None,  # pages, not an API
    )
    app.state.settings = settings
    app.state.clock = clock or settings.clock()
    app.state.oidc = signin.oidc_client(settings)
    # Lax, not Strict: the provider's redirect back to /auth/callback is a cross-site
    # navigation, and under Strict the cookie holding the OIDC state would not come with it.
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret,
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_age_seconds,
        same_site="lax",
        https_only=settings.environment == "production",
    )
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    app.add_middleware(RequestMetrics, service=settings.service_name)

    @app.exception_handler(SignInNeeded)
    async def sign_in_first(request: Request, exc: SignInNeeded) -> Response:
        return RedirectResponse("/sign-in", status_code=303)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, exc: CsrfRefused) -> Response:
        return render(request, "problem.html", 403, problem="csrf")

    @app.exception_handler(ApiProblem)
    async def api_problem(request: Request, exc: ApiProblem) -> Response:
        return refused(request, exc)

    @app.exception_handler(httpx.HTTPError)
    async def unreachable(request: Request, exc: httpx.HTTPError) -> Response:
        return render(request, "problem.html", 503, problem="unreachable")

    @app.get("/", include_in_schema=False)
    async def home(request: Request) -> Response:
        person = signed_in_person(request)
        return RedirectResponse(home_of(person.role) if person else "/sign-in", status_code=303)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": settings.service_name}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> dict[str, str]:
        """Ready as soon as it serves: a service that is down makes only its pages fail."""
        return {"status": "ready"}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return HTMLResponse(status_code=204)

    for router in (signin.router, agent.router, staff.router):
        app.include_router(router)
    return app
