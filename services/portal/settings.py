"""Configuration of the portal, from the environment (documented in the README)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings, secret_setting

SESSION_SECRET_PLACEHOLDER = "dev-only-portal-session-secret-change-me"  # noqa: S105 - refused in production


class PortalSettings(ServiceSettings):
    """`HTTP_PORT` defaults to 8007. The portal has no database and no Kafka client of its own:
    it calls the four services' HTTP APIs with a short-lived token for the signed-in person."""

    service_name: str = "portal"
    http_port: int = 8007
    invitations_url: str = Field(
        default="http://127.0.0.1:8001", description="Base URL of the invitations service."
    )
    reviews_url: str = Field(
        default="http://127.0.0.1:8002", description="Base URL of the reviews service."
    )
    scoring_url: str = Field(
        default="http://127.0.0.1:8003", description="Base URL of the scoring service."
    )
    removals_url: str = Field(
        default="http://127.0.0.1:8004", description="Base URL of the removals service."
    )
    session_secret: str = secret_setting(
        SESSION_SECRET_PLACEHOLDER, "Signs the portal's session cookie (and so its CSRF token)."
    )
    session_max_age_seconds: int = Field(
        default=8 * 3600, ge=60, le=7 * 24 * 3600, description="A sign-in lasts this long."
    )
    api_token_seconds: int = Field(
        default=300,
        ge=10,
        le=3600,
        description="Life of the token the portal mints for each call to a service on behalf "
        "of the signed-in person (HS256 with AUTH_SECRET).",
    )
    oidc_discovery_url: str | None = Field(
        default=None,
        description="The MLS's OpenID Connect discovery document "
        "(`…/.well-known/openid-configuration`). Required in production.",
    )
    oidc_client_id: str = Field(default="", description="The portal's client id at the MLS.")
    oidc_client_secret: str = secret_setting(
        "", "The portal's client secret at the MLS (issued by the MLS).", generated_here=False
    )
    oidc_scopes: str = Field(default="openid profile email", description="Scopes asked for.")
    oidc_roles_claim: str = Field(
        default="roles",
        description="The ID token claim (a string or a list) naming the person's role: agent, "
        "moderator, coordinator or surveyor. Dots reach into objects (`realm_access.roles`).",
    )
    oidc_subject_claim: str = Field(
        default="sub",
        description="The ID token claim holding the agent id (or staff id) the services know.",
    )

    def secrets_in_use(self) -> dict[str, str]:
        """The portal holds no PII key or token pepper: only the token key, the session key and,
        with OIDC, its client secret."""
        secrets = {"AUTH_SECRET": self.auth_secret, "SESSION_SECRET": self.session_secret}
        if self.oidc_discovery_url:
            secrets["OIDC_CLIENT_SECRET"] = self.oidc_client_secret
        return secrets

    def production_refusals(self) -> list[str]:
        refused = super().production_refusals()
        if not self.oidc_discovery_url or not self.oidc_client_id:
            refused.append(
                "the portal needs OIDC_DISCOVERY_URL and OIDC_CLIENT_ID in production (the "
                "development sign-in is refused there)"
            )
        return refused

    def _generated_here(self, variable: str) -> bool:
        return variable != "OIDC_CLIENT_SECRET"

    @property
    def development_sign_in(self) -> bool:
        """Pick any person and role: only on a developer's machine (ENVIRONMENT=local)."""
        return self.environment == "local"
