"""Bearer-token auth for staff and agent routes: JWT with `sub`, `role`, `exp`.

HS256 with `AUTH_SECRET` by default; set `AUTH_JWKS_URL` to accept RS256 tokens from a real SSO.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import jwt
import jwt.types
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.http import ProblemError


class Role(StrEnum):
    AGENT = "agent"
    MODERATOR = "moderator"
    COORDINATOR = "coordinator"
    SURVEYOR = "surveyor"
    OPS = "ops"


@dataclass(frozen=True)
class Principal:
    sub: str
    role: Role

    def is_agent(self, agent_id: str) -> bool:
        return self.role is Role.AGENT and self.sub == agent_id


class TokenVerifier:
    def __init__(
        self,
        secret: str,
        *,
        jwks_url: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
    ) -> None:
        self.secret = secret
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwt.PyJWKClient(jwks_url) if jwks_url else None

    def verify(self, token: str) -> Principal:
        options: jwt.types.Options = {"require": ["exp", "sub", "role"]}
        try:
            if self.jwks is not None:
                key: Any = self.jwks.get_signing_key_from_jwt(token).key
                algorithms = ["RS256"]
            else:
                key, algorithms = self.secret, ["HS256"]
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                options=options,
                issuer=self.issuer,
                audience=self.audience,
            )
            return Principal(sub=str(claims["sub"]), role=Role(claims["role"]))
        except (jwt.PyJWTError, ValueError) as exc:
            raise ProblemError(401, "Unauthorized", f"invalid bearer token: {exc}") from exc


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Async, so FastAPI runs it on the event loop: a sync dependency costs every request a
    thread hop and, under load, waits for the GIL behind the threads. An HS256 check is a few
    microseconds of CPU; only a JWKS lookup (it may fetch the keys) goes to a thread."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ProblemError(401, "Unauthorized", "a bearer token is required")
    verifier: TokenVerifier = request.app.state.token_verifier
    if verifier.jwks is not None:
        return await asyncio.to_thread(verifier.verify, credentials.credentials)
    return verifier.verify(credentials.credentials)


async def optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    if credentials is None:
        return None
    return await current_principal(request, credentials)


def require_roles(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """Dependency: the caller's principal, 401 without a valid token, 403 with another role."""

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if principal.role not in roles:
            raise ProblemError(403, "Forbidden", f"role {principal.role.value} may not do this")
        return principal

    return dependency


def issue_token(
    secret: str, sub: str, role: Role | str, ttl: timedelta = timedelta(hours=1)
) -> str:
    """Mint an HS256 token (tests, the demo, local tooling)."""
    now = datetime.now(UTC)
    claims = {"sub": sub, "role": str(role), "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm="HS256")
