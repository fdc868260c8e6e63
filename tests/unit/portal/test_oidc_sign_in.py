"""The production sign-in: OpenID Connect Authorization Code with PKCE against a provider the
test starts (its own keys, discovery document, token endpoint and JWKS), roles from a claim."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from services.portal.settings import PortalSettings
from tests.support.browser import served
from tests.support.oidc import CLIENT_ID, CLIENT_SECRET, Provider
from tests.unit.portal.conftest import FakeServices


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    found = Provider()
    async with served(found.app()) as url:
        found.issuer = url
        yield found


def oidc(provider: Provider, **overrides: Any) -> dict[str, Any]:
    return {
        "environment": "test",
        "oidc_discovery_url": f"{provider.issuer}/.well-known/openid-configuration",
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        **overrides,
    }


async def through_the_provider(client: httpx.AsyncClient) -> httpx.Response:
    """Follow the real redirects: portal → provider's authorize → portal's callback."""
    start = await client.get("/sign-in/mls")
    assert start.status_code == 302
    authorize = start.headers["location"]
    assert "code_challenge_method=S256" in authorize and "code_challenge=" in authorize
    async with httpx.AsyncClient() as browser:
        back = await browser.get(authorize)
    assert back.status_code == 302
    callback = urlsplit(back.headers["location"])
    assert callback.path == "/auth/callback"
    return await client.get(f"{callback.path}?{callback.query}")


async def test_a_person_signs_in_with_the_mls_and_the_services_see_their_id_and_role(
    portal_factory: Callable[..., Any], services: FakeServices, provider: Provider
) -> None:
    provider.claims = {
        "sub": "mls-user-77",
        "agent_id": "A-7",
        "name": "Dana W.",
        "groups": ["staff", "agent"],
    }
    services.routes[("GET", "invitations.test", r"/api/v1/agents/A-7/contact-requests")] = {
        "items": []
    }
    services.routes[("GET", "invitations.test", r"/api/v1/agents/A-7/invitations")] = {"items": []}
    async with portal_factory(
        **oidc(provider, oidc_roles_claim="groups", oidc_subject_claim="agent_id")
    ) as client:
        page = await client.get("/sign-in")
        assert "Sign in with your MLS account" in page.text
        assert "Development sign-in" not in page.text
        signed = await through_the_provider(client)
        assert signed.status_code == 303 and signed.headers["location"] == "/agent"
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        clients = await client.get("/agent/clients")
    assert clients.status_code == 200
    assert "Signed in as Dana W." in clients.text
    _, _, claims, _ = services.calls[-1]
    assert (claims["sub"], claims["role"]) == ("A-7", "agent")
    assert provider.token_requests[0]["code_verifier"], (
        "PKCE: the verifier went to the token endpoint"
    )


async def test_a_person_without_a_portal_role_is_refused(
    portal_factory: Callable[..., Any], provider: Provider
) -> None:
    provider.claims = {"sub": "mls-user-78", "roles": ["member"]}
    async with portal_factory(**oidc(provider)) as client:
        refused = await through_the_provider(client)
        assert refused.status_code == 403
        assert "no role in this portal" in refused.text
        assert (await client.get("/agent")).status_code == 303  # still signed out


async def test_a_callback_without_the_state_the_portal_sent_is_refused(
    portal_factory: Callable[..., Any], provider: Provider
) -> None:
    provider.claims = {"sub": "A-1", "roles": "agent"}
    async with portal_factory(**oidc(provider)) as client:
        forged = await client.get("/auth/callback?code=stolen&state=made-up")
    assert forged.status_code == 401
    assert provider.token_requests == []


def test_production_needs_the_oidc_provider() -> None:
    strong: dict[str, Any] = {
        "environment": "production",
        "auth_secret": "a" * 40,
        "session_secret": "b" * 40,
        "kafka_allow_plaintext": True,
    }
    with pytest.raises(ValueError, match="OIDC_DISCOVERY_URL"):
        PortalSettings(**strong)
    PortalSettings(
        **strong,
        oidc_discovery_url="https://mls.example/.well-known/openid-configuration",
        oidc_client_id="portal",
    )
    with pytest.raises(ValueError, match="SESSION_SECRET is a value committed"):
        PortalSettings(
            **{**strong, "session_secret": PortalSettings().session_secret},
            oidc_discovery_url="https://x",
            oidc_client_id="p",
        )
