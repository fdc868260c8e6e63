from datetime import timedelta
from typing import Annotated

import asyncpg
import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI
from pydantic import BaseModel

from shared.auth import Principal, Role, TokenVerifier, issue_token, require_roles
from shared.http import PROBLEM_JSON, ProblemError, install_problem_handlers

SECRET = "unit-test-secret-unit-test-secret"
DATABASE_FAILURES: dict[str, Exception] = {
    "refused": ConnectionRefusedError(111, "Connect call failed"),
    "shutdown": asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    "closed": asyncpg.ConnectionDoesNotExistError("connection was closed in the middle"),
    "mid-dialogue": asyncpg.InternalClientError("cannot switch to state 15"),
    "starting": asyncpg.CannotConnectNowError("the database system is starting up"),
}


class Body(BaseModel):
    score: int


def _app() -> FastAPI:
    app = FastAPI()
    app.state.token_verifier = TokenVerifier(SECRET)
    install_problem_handlers(app)

    @app.get("/moderation")
    async def moderation(
        principal: Annotated[Principal, Depends(require_roles(Role.MODERATOR))],
    ) -> dict[str, str]:
        return {"sub": principal.sub}

    @app.post("/things")
    async def things(body: Body) -> dict[str, int]:
        return {"score": body.score}

    @app.get("/gone")
    async def gone() -> None:
        raise ProblemError(410, "Gone", "this code expired", code="expired")

    @app.get("/database/{failure}")
    async def database(failure: str) -> None:
        raise DATABASE_FAILURES[failure]

    return app


async def _call(method: str, path: str, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)  # type: ignore[arg-type]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_missing_token_is_401_problem_json() -> None:
    response = await _call("GET", "/moderation")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["title"] == "Unauthorized"


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        issue_token("another-secret-another-secret-xx", "m-1", Role.MODERATOR),
        issue_token(SECRET, "m-1", Role.MODERATOR, ttl=timedelta(seconds=-5)),
        jwt.encode({"sub": "m-1", "role": "moderator"}, SECRET, algorithm="HS256"),  # no exp
        jwt.encode({"sub": "m-1", "role": "king", "exp": 4102444800}, SECRET, algorithm="HS256"),
    ],
)
async def test_bad_tokens_are_401(token: str) -> None:
    assert (await _call("GET", "/moderation", headers=_bearer(token))).status_code == 401


async def test_wrong_role_is_403_and_right_role_passes() -> None:
    agent = issue_token(SECRET, "A-1", Role.AGENT)
    moderator = issue_token(SECRET, "m-1", Role.MODERATOR)
    assert (await _call("GET", "/moderation", headers=_bearer(agent))).status_code == 403
    response = await _call("GET", "/moderation", headers=_bearer(moderator))
    assert response.status_code == 200
    assert response.json() == {"sub": "m-1"}


async def test_invalid_body_is_422_problem_json_with_errors() -> None:
    response = await _call("POST", "/things", json={"score": "lots"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["errors"][0]["loc"] == ["body", "score"]


@pytest.mark.parametrize("failure", sorted(DATABASE_FAILURES))
async def test_an_unavailable_database_is_503_with_retry_after(failure: str) -> None:
    response = await _call("GET", f"/database/{failure}")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["retry-after"] == "1"
    assert response.json()["status"] == 503


async def test_problem_error_carries_status_detail_and_extensions() -> None:
    response = await _call("GET", "/gone")
    assert response.status_code == 410
    assert response.json() == {
        "type": "about:blank",
        "title": "Gone",
        "status": 410,
        "detail": "this code expired",
        "instance": "/gone",
        "code": "expired",
    }


def test_principal_owns_only_its_own_agent_data() -> None:
    assert Principal("A-1", Role.AGENT).is_agent("A-1")
    assert not Principal("A-1", Role.AGENT).is_agent("A-2")
    assert not Principal("A-1", Role.MODERATOR).is_agent("A-1")
