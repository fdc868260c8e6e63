"""The portal in-process with the four services faked at the HTTP level: each fake answers
from canned JSON and records who called (the claims of the token the portal minted)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest

from services.portal.app import create_app
from services.portal.settings import PortalSettings

SECRET = "unit-test-auth-secret-of-enough-length"
URLS = {
    "invitations_url": "http://invitations.test",
    "reviews_url": "http://reviews.test",
    "scoring_url": "http://scoring.test",
    "removals_url": "http://removals.test",
}

Answer = Callable[[httpx.Request, dict[str, Any]], httpx.Response]


@dataclass
class FakeServices:
    """`routes[(METHOD, host, path regex)] = json or answer(request, claims)`."""

    routes: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    calls: list[tuple[str, str, dict[str, Any], bytes]] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])
        self.calls.append(
            (request.method, f"{request.url.host}{request.url.path}", claims, request.content)
        )
        for (method, host, pattern), answer in self.routes.items():
            if (
                method == request.method
                and host == request.url.host
                and re.fullmatch(pattern, request.url.path)
            ):
                if callable(answer):
                    response: httpx.Response = answer(request, claims)
                    return response
                return httpx.Response(200, json=answer)
        return httpx.Response(404, json={"title": "Not Found", "status": 404, "detail": "none"})


def portal_settings(**overrides: Any) -> PortalSettings:
    values: dict[str, Any] = {"environment": "local", "auth_secret": SECRET, **URLS}
    values.update(overrides)
    return PortalSettings(**values)


@pytest.fixture
def services() -> FakeServices:
    return FakeServices()


@pytest.fixture
def portal_factory(services: FakeServices) -> Callable[..., Any]:
    """`async with portal_factory(**settings) as client:` — the portal, its services faked."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(
            portal_settings(**overrides), transport=httpx.MockTransport(services.handle)
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as c:
                yield c

    return start


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, sub: str, role: str) -> httpx.Response:
    page = await client.get("/sign-in")
    return await client.post(
        "/sign-in/development", data={"csrf": csrf_of(page.text), "sub": sub, "role": role}
    )
