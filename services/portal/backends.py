"""The four services' public HTTP APIs, called on behalf of the signed-in person.

Each call carries a token minted for that person only (their subject and role, a few minutes
long), so the services apply their own rules to them exactly as to any other caller: the portal
holds no authorisation rule of its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import httpx

from services.portal.settings import PortalSettings
from shared.auth import issue_token
from shared.http import KEEP_ALIVE

Service = Literal["invitations", "reviews", "scoring", "removals"]


@dataclass(frozen=True)
class Person:
    """Who is signed in: the id the services know (agent id or staff id) and the role."""

    sub: str
    role: str
    name: str


class ApiProblem(Exception):
    """A service answered with a problem (its RFC 9457 detail, and code where it gives one)."""

    def __init__(self, status: int, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.code = status, detail, code


class Backends:
    def __init__(
        self, settings: PortalSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        urls = {
            "invitations": settings.invitations_url,
            "reviews": settings.reviews_url,
            "scoring": settings.scoring_url,
            "removals": settings.removals_url,
        }
        self.clients = {
            name: httpx.AsyncClient(
                base_url=url.rstrip("/"), timeout=10, transport=transport, limits=KEEP_ALIVE
            )
            for name, url in urls.items()
        }

    def token_for(self, person: Person) -> str:
        return issue_token(
            self.settings.auth_secret,
            person.sub,
            person.role,
            ttl=timedelta(seconds=self.settings.api_token_seconds),
        )

    async def call(
        self,
        person: Person,
        service: Service,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        response = await self.raw(person, service, method, path, json=json, params=params)
        return response.json() if response.content else None

    async def raw(
        self,
        person: Person,
        service: Service,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """The service's answer as it is (a file, say); a problem raises `ApiProblem`."""
        headers = {"Authorization": f"Bearer {self.token_for(person)}"}
        if content is not None:
            headers["Content-Type"] = "application/octet-stream"
        response = await self.clients[service].request(
            method, path, json=json, content=content, params=params, headers=headers
        )
        if response.status_code >= 400:
            raise _problem(response)
        return response

    async def get(self, person: Person, service: Service, path: str, **params: Any) -> Any:
        return await self.call(person, service, "GET", path, params=params or None)

    async def find(self, person: Person, service: Service, path: str, **params: Any) -> Any:
        """As `get`, but None where the service has nothing (404): no rating yet, no dispute."""
        try:
            return await self.get(person, service, path, **params)
        except ApiProblem as problem:
            if problem.status == 404:
                return None
            raise

    async def post(self, person: Person, service: Service, path: str, body: Any) -> Any:
        return await self.call(person, service, "POST", path, json=body)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()


def _problem(response: httpx.Response) -> ApiProblem:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    detail = body.get("detail")
    if isinstance(detail, list):  # FastAPI's validation errors: say which field and why
        detail = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg', '')}"
            for d in detail
            if isinstance(d, dict)
        )
    return ApiProblem(
        response.status_code,
        str(detail or body.get("title") or response.reason_phrase),
        body.get("code"),
    )
