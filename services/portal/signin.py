"""Sign-in and sign-out: the MLS's OpenID Connect provider (Authorization Code with PKCE, by
Authlib), and on a developer's machine only a development sign-in that picks person and role."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.portal.backends import Person
from services.portal.pages import ROLES, home_of, render, settings_of
from services.portal.session import checked_form, sign_in, signed_in_person
from services.portal.settings import PortalSettings

logger = logging.getLogger(__name__)

router = APIRouter(tags=["sign-in"])

PROVIDER = "mls"


def oidc_client(settings: PortalSettings) -> Any | None:
    """The provider's client, or None when OIDC is not configured (local development)."""
    if not settings.oidc_discovery_url:
        return None
    oauth = OAuth()
    oauth.register(
        PROVIDER,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret or None,
        server_metadata_url=settings.oidc_discovery_url,
        # PKCE (RFC 7636) even with a client secret: a stolen code is useless without the
        # verifier, which never leaves the portal's signed session
        client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256"},
    )
    return oauth.create_client(PROVIDER)


def claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by name; dots reach into objects (`realm_access.roles`)."""
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def role_from(value: Any) -> str | None:
    """The first portal role the claim names (a string, or a list as most providers give)."""
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return next((str(n) for n in names if str(n) in ROLES), None)


Settings = Annotated[PortalSettings, Depends(settings_of)]


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, settings: Settings) -> Response:
    if signed_in_person(request) is not None:
        return RedirectResponse("/", status_code=303)
    return render(
        request,
        "sign_in.html",
        oidc=settings.oidc_discovery_url is not None,
        development=settings.development_sign_in,
        roles=ROLES,
        chosen_sub=request.query_params.get("sub", "")[:64],
        chosen_role=request.query_params.get("role", "agent"),
    )


@router.get("/sign-in/mls")
async def start_oidc(request: Request) -> Response:
    client = request.app.state.oidc
    if client is None:
        return render(request, "problem.html", 404, problem="no_oidc")
    base = settings_of(request).public_base_url
    redirect_uri = (
        f"{base.rstrip('/')}/auth/callback" if base else str(request.url_for("oidc_callback"))
    )
    response: Response = await client.authorize_redirect(request, redirect_uri)
    return response


@router.get("/auth/callback", name="oidc_callback")
async def oidc_callback(request: Request, settings: Settings) -> Response:
    client = request.app.state.oidc
    if client is None:
        return render(request, "problem.html", 404, problem="no_oidc")
    try:
        token = await client.authorize_access_token(request)
    except OAuthError as exc:
        logger.warning("OIDC sign-in failed", extra={"error": exc.error})
        return render(request, "problem.html", 401, problem="sign_in_failed")
    claims = dict(token.get("userinfo") or {})
    role = role_from(claim(claims, settings.oidc_roles_claim))
    sub = claim(claims, settings.oidc_subject_claim)
    if role is None or not isinstance(sub, str | int) or not str(sub):
        return render(request, "problem.html", 403, problem="no_role")
    name = claims.get("name") or claims.get("preferred_username") or str(sub)
    sign_in(request, Person(sub=str(sub), role=role, name=str(name)))
    return RedirectResponse(home_of(role), status_code=303)


@router.post("/sign-in/development")
async def development_sign_in(request: Request, settings: Settings) -> Response:
    """Local development only: any person, any role. Refused unless ENVIRONMENT=local."""
    if not settings.development_sign_in:
        return render(request, "problem.html", 403, problem="development_refused")
    form = await checked_form(request)
    sub, role = form.get("sub", "").strip()[:64], form.get("role", "")
    if not sub or role not in ROLES:
        return render(request, "problem.html", 422, problem="development_incomplete")
    sign_in(request, Person(sub=sub, role=role, name=sub))
    return RedirectResponse(home_of(role), status_code=303)


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    await checked_form(request)
    request.session.clear()
    return RedirectResponse("/sign-in", status_code=303)
