"""RFC 9457 problem+json errors for every service's API."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import DomainError, NotFoundError
from shared.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS

KEEP_ALIVE = httpx.Limits(keepalive_expiry=2.0)
"""For every client of the services' HTTP APIs: an idle connection is dropped before uvicorn
drops it (5 s, the same as httpx's default). With equal timeouts a request can go out on a
connection the server is closing at that moment and fail with "Server disconnected without
sending a response" (the demo hit it under load)."""

PROBLEM_JSON = "application/problem+json"


logger = logging.getLogger(__name__)


class ProblemError(Exception):
    """Raise from a route to answer with a problem+json body."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.headers = headers or {}
        self.status, self.title, self.detail, self.type, self.extra = (
            status,
            title,
            detail,
            type_,
            extra,
        )


TITLES = {
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    410: "Gone",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
}


@asynccontextmanager
async def domain_problems(
    statuses: Mapping[str, int],
    *,
    default: int = 422,
    extra: Callable[[DomainError], dict[str, Any]] | None = None,
) -> AsyncIterator[None]:
    """Answer a refused command as a problem: 404 when its subject is not there, else the
    status the service gives the error's code in `statuses` (`default` for the others), with
    the code and any `extra` members."""
    try:
        yield
    except NotFoundError as exc:
        raise ProblemError(404, TITLES[404], exc.message) from exc
    except DomainError as exc:
        status = statuses.get(exc.code, default)
        members = extra(exc) if extra else {}
        raise ProblemError(status, TITLES[status], exc.message, code=exc.code, **members) from exc


def problem_response(
    status: int,
    title: str,
    detail: str = "",
    *,
    instance: str = "",
    type_: str = "about:blank",
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        headers = dict(exc.headers)
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        response = problem_response(
            exc.status,
            exc.title,
            exc.detail,
            instance=request.url.path,
            type_=exc.type,
            **exc.extra,
        )
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(part) for part in error.get("loc", ())], "msg": error.get("msg", "")}
            for error in exc.errors()
        ]
        return problem_response(
            422,
            "Unprocessable Content",
            "the request does not match the schema",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(asyncpg.CharacterNotInRepertoireError)
    @app.exception_handler(asyncpg.UntranslatableCharacterError)
    async def _unstorable(request: Request, exc: asyncpg.DataError) -> JSONResponse:
        # text PostgreSQL cannot hold (a NUL, in a path, query or body): the client's mistake
        return problem_response(
            422,
            "Unprocessable Content",
            "the request contains characters that cannot be stored (such as NUL)",
            instance=request.url.path,
        )

    @app.exception_handler(ConnectionError)
    @app.exception_handler(asyncpg.PostgresConnectionError)
    @app.exception_handler(asyncpg.OperatorInterventionError)
    @app.exception_handler(asyncpg.InterfaceError)
    @app.exception_handler(asyncpg.InternalClientError)
    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # the database is restarting or unreachable (asyncpg raises these when a connection is
        # refused, terminated by an admin shutdown or closed mid-dialogue): the request may be
        # retried, so say so instead of a 500
        logger.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        response = problem_response(
            503,
            "Service Unavailable",
            "the database is unavailable; try again shortly",
            instance=request.url.path,
        )
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), instance=request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(
            500,
            "Internal Server Error",
            "an unexpected error occurred; it has been logged",
            instance=request.url.path,
        )


UNMATCHED_ROUTE = "unmatched"
"""The route label of a request no route matched (a scanner's guesses stay one series)."""


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request by route template, method and status.

    The route is the template the router matched (`/agents/{agent_id}`), read from the scope
    after the app has answered; the raw path would make a series per agent or token."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before responding

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", None)
            labels = (self.service, template or UNMATCHED_ROUTE, scope["method"], str(status))
            HTTP_REQUESTS.labels(*labels).inc()
            HTTP_REQUEST_SECONDS.labels(*labels).observe(time.perf_counter() - started)
