"""With ENVIRONMENT=production a service refuses, at settings validation, secrets anyone can
read in the repository, short or shared secrets, and any moved clock (docs/design.md 3.1)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from pydantic import ValidationError

from services.invitations.settings import InvitationsSettings
from shared.settings import (
    COMMITTED_SECRETS,
    PLACEHOLDER_SECRETS,
    ServiceSettings,
    secret_setting,
)

ENCRYPTED_KAFKA: dict[str, Any] = {"kafka_security_protocol": "SSL"}


def _generated() -> dict[str, Any]:
    """Distinct generated secrets, and Kafka over TLS: what production accepts."""
    generated = {
        name: secrets.token_urlsafe(48) for name in ("auth_secret", "pii_key", "token_pepper")
    }
    return generated | ENCRYPTED_KAFKA


def _refusal(**settings: Any) -> str:
    with pytest.raises(ValidationError) as refused:
        ServiceSettings(**{"environment": "production", **_generated(), **settings})
    return str(refused.value)


def test_production_accepts_distinct_generated_secrets_on_the_real_clock() -> None:
    settings = ServiceSettings(environment="production", **_generated())
    assert settings.environment == "production"


@pytest.mark.parametrize("value", sorted(COMMITTED_SECRETS))
@pytest.mark.parametrize("name", ["auth_secret", "pii_key", "token_pepper"])
def test_production_refuses_a_secret_committed_in_the_repository(name: str, value: str) -> None:
    """The CHANGE-ME example once in deploy/k8s was 44 bytes: only this rule catches it."""
    assert f"{name.upper()} is a value committed in the repository" in _refusal(**{name: value})


def test_the_development_defaults_are_among_the_refused_committed_values() -> None:
    defaults = {ServiceSettings.model_fields[name].default for name in ("auth_secret", "pii_key")}
    assert defaults | {ServiceSettings.model_fields["token_pepper"].default} == PLACEHOLDER_SECRETS
    assert PLACEHOLDER_SECRETS <= COMMITTED_SECRETS


def test_production_refuses_a_secret_shorter_than_32_bytes() -> None:
    thirty_one_bytes = "é" * 15 + "x"  # 16 characters, but the key material is bytes
    message = _refusal(token_pepper=thirty_one_bytes)
    assert "TOKEN_PEPPER is shorter than 32 bytes" in message
    ServiceSettings(environment="production", **{**_generated(), "token_pepper": "é" * 16})


def test_production_refuses_two_equal_secrets() -> None:
    shared = secrets.token_urlsafe(48)
    assert "AUTH_SECRET and PII_KEY are equal" in _refusal(auth_secret=shared, pii_key=shared)


def test_production_refuses_a_service_secret_equal_to_a_common_one() -> None:
    class WithItsOwnSecret(ServiceSettings):
        webhook_secret: str = secret_setting("", "A secret only this service has.")

    common = _generated()
    with pytest.raises(ValidationError, match="PII_KEY and WEBHOOK_SECRET are equal"):
        WithItsOwnSecret(environment="production", **common, webhook_secret=common["pii_key"])


@pytest.mark.parametrize(
    ("setting", "value", "variable"),
    [
        ("clock_fixed_at", "2026-01-01T00:00:00Z", "CLOCK_FIXED_AT"),
        ("clock_offset_seconds", 86_400.0, "CLOCK_OFFSET_SECONDS"),
        ("clock_file", "/tmp/clock.json", "CLOCK_FILE"),
    ],
)
def test_production_refuses_any_clock_override(setting: str, value: object, variable: str) -> None:
    assert f"{variable} " in _refusal(**{setting: value})


def test_the_refusal_is_read_from_the_environment_and_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in _generated().items():
        monkeypatch.setenv(name.upper(), value)
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("TOKEN_PEPPER", "dev-only-token-pepper-change-me")
    with pytest.raises(ValidationError, match="TOKEN_PEPPER is a value committed"):
        InvitationsSettings()


def test_the_refusal_never_echoes_a_secret() -> None:
    short = "s3cr3t-but-short"
    assert short not in _refusal(pii_key=short)


def test_an_sso_issuer_makes_auth_secret_unused_and_unchecked() -> None:
    generated = _generated()
    ServiceSettings(
        environment="production",
        auth_jwks_url="https://sso.example/.well-known/jwks.json",
        pii_key=generated["pii_key"],
        token_pepper=generated["token_pepper"],
        **ENCRYPTED_KAFKA,
    )


def test_local_development_keeps_the_placeholders_and_may_move_the_clock() -> None:
    ServiceSettings(environment="local", clock_offset_seconds=3600)
    ServiceSettings(environment="test", clock_fixed_at="2026-01-01T00:00:00Z")


def test_production_refuses_an_smtp_login_sent_in_the_clear() -> None:
    message = _refusal(smtp_username="mailer", smtp_password=secrets.token_urlsafe(48))
    assert "SMTP_TLS=none would send the SMTP login in the clear" in message


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_production_takes_an_encrypted_smtp_login_with_the_providers_password(tls: str) -> None:
    """The mail provider issues the password: it is not held to our 32-byte rule."""
    settings = ServiceSettings(
        environment="production",
        **_generated(),
        smtp_tls=tls,
        smtp_username="mailer",
        smtp_password="sixteen-chars-pw",
    )
    assert "SMTP_PASSWORD" in settings.secrets_in_use()
    assert "SMTP_PASSWORD is a value committed" in _refusal(
        smtp_tls=tls, smtp_username="mailer", smtp_password="dev-only-pii-key-change-me"
    )


def test_without_a_login_the_smtp_password_is_not_in_use() -> None:
    assert "SMTP_PASSWORD" not in ServiceSettings(**_generated()).secrets_in_use()
    ServiceSettings(environment="production", **_generated(), smtp_port=25)
