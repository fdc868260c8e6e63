"""An OpenID Connect provider a test starts itself: its own RSA key, discovery document,
authorization endpoint (it signs in the person the test chose, no login form), token endpoint
that checks the PKCE verifier, and JWKS. Enough of the MLS's provider to run the portal's real
Authorization Code flow against it."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from authlib.jose import JsonWebKey, jwt
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

CLIENT_ID = "portal"
CLIENT_SECRET = "provider-issued-client-secret"


@dataclass
class Provider:
    """`claims`: what the next ID token says about the person signing in."""

    issuer: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    key: Any = field(default_factory=lambda: JsonWebKey.generate_key("RSA", 2048, is_private=True))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            return {"keys": [self.key.as_dict(is_private=False)]}

        @app.get("/authorize")
        async def authorize(request: Request) -> Response:
            query = request.query_params
            if query.get("client_id") != CLIENT_ID or query.get("code_challenge_method") != "S256":
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "challenge": query["code_challenge"],
                "nonce": query.get("nonce"),
                "redirect_uri": query["redirect_uri"],
            }
            back = {"code": code, "state": query["state"]}
            return RedirectResponse(f"{query['redirect_uri']}?{urlencode(back)}", status_code=302)

        @app.post("/token")
        async def token(request: Request) -> Response:
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            self.token_requests.append(form)
            issued = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            if (
                issued is None
                or create_s256_code_challenge(verifier) != issued["challenge"]
                or form.get("redirect_uri") != issued["redirect_uri"]
            ):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            now = int(time.time())
            claims = {
                "iss": self.issuer,
                "aud": CLIENT_ID,
                "iat": now,
                "exp": now + 300,
                "nonce": issued["nonce"],
                **self.claims,
            }
            header = {"alg": "RS256", "kid": self.key.as_dict()["kid"]}
            id_token = jwt.encode(header, claims, self.key).decode()
            return JSONResponse(
                {
                    "access_token": secrets.token_urlsafe(16),
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": id_token,
                }
            )

        return app
