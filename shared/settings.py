"""Settings common to every service, read from the environment (documented in the README)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.clock import Clock, clock_from_config
from shared.crypto import PiiCipher, SecretHasher

PLACEHOLDER_SECRETS = frozenset(
    {
        "dev-only-auth-secret-change-me-now",
        "dev-only-pii-key-change-me",
        "dev-only-token-pepper-change-me",
    }
)

COMMITTED_SECRETS = PLACEHOLDER_SECRETS | {
    # Once the example value of deploy/k8s/common.yaml, applied as is it would have passed.
    "CHANGE-ME-at-least-32-characters-long-secret",
    # The portal's development session key (services/portal/settings.py).
    "dev-only-portal-session-secret-change-me",
}
"""Every secret value this repository has ever committed: public, so never a production secret.
tests/unit/test_deploy_files.py fails if deploy/ or docker-compose.yml gives a value not here."""

MIN_SECRET_BYTES = 32

HOW_TO_GENERATE = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


def _listed(values: str) -> list[str]:
    """A comma-separated setting's values, blanks dropped."""
    return [value.strip() for value in values.split(",") if value.strip()]


def secret_setting(default: str, description: str, *, generated_here: bool = True) -> Any:
    """A setting holding a secret: production refuses it if committed, short or shared.

    One issued by another party (a mail provider's SMTP password) is not ours to lengthen:
    `generated_here=False` spares it the length rule."""
    return Field(
        default=default,
        description=description,
        json_schema_extra={"secret": True, "generated_here": generated_here},
    )


SmtpTls = Literal["none", "starttls", "implicit"]
KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(BaseSettings):
    """How to reach Kafka: what every Kafka client reads, services and command-line tools alike
    (`shared.kafka_security` turns it into client arguments)."""

    # Errors never echo the input: it holds the secrets.
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    environment: Literal["local", "test", "production"] = Field(
        default="local",
        description="`production` refuses committed, short or shared secrets, a moved clock "
        "and unencrypted Kafka or SMTP.",
    )
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: KafkaSecurityProtocol = Field(
        default="PLAINTEXT",
        description="SSL or SASL_SSL encrypt the connection; production refuses PLAINTEXT and "
        "SASL_PLAINTEXT unless KAFKA_ALLOW_PLAINTEXT=true.",
    )
    kafka_sasl_mechanism: KafkaSaslMechanism = Field(
        default="SCRAM-SHA-512", description="With SASL_SSL or SASL_PLAINTEXT."
    )
    kafka_sasl_username: str = Field(default="", description="With SASL_SSL or SASL_PLAINTEXT.")
    kafka_sasl_password: str = secret_setting(
        "",
        "With SASL_SSL or SASL_PLAINTEXT (issued with the Kafka user, e.g. by Strimzi).",
        generated_here=False,
    )
    kafka_ssl_ca_file: str | None = Field(
        default=None,
        description="PEM file of the CA that signed the brokers' certificates (default: the "
        "system's trusted CAs). With SSL or SASL_SSL.",
    )
    kafka_ssl_cert_file: str | None = Field(
        default=None, description="PEM client certificate, for brokers that require one (mTLS)."
    )
    kafka_ssl_key_file: str | None = Field(
        default=None, description="PEM private key of KAFKA_SSL_CERT_FILE."
    )
    kafka_allow_plaintext: bool = Field(
        default=False,
        description="Lets production talk to Kafka unencrypted (a broker on a trusted private "
        "network): an explicit decision, never a default.",
    )

    @property
    def kafka_uses_sasl(self) -> bool:
        return self.kafka_security_protocol.startswith("SASL_")

    @property
    def kafka_uses_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        if self.environment == "production":
            refused = self.production_refusals()
            if refused:
                raise ValueError(
                    "ENVIRONMENT=production refuses this configuration: "
                    + "; ".join(refused)
                    + f". Generate each secret on its own, e.g. `{HOW_TO_GENERATE}`."
                )
        return self

    def production_refusals(self) -> list[str]:
        """Unencrypted Kafka, unless allowed explicitly: events carry names and comments, and
        SASL_PLAINTEXT would send the password itself in the clear (PLAIN) or let anyone on the
        path read every event after a SCRAM login."""
        if self.kafka_uses_tls or self.kafka_allow_plaintext:
            return []
        return [
            f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} is unencrypted (use SSL "
            "or SASL_SSL, or set KAFKA_ALLOW_PLAINTEXT=true to accept it explicitly)"
        ]

    def kafka_secrets_in_use(self) -> list[str]:
        """Secret settings of Kafka's that this configuration uses: the password only with SASL."""
        return ["kafka_sasl_password"] if self.kafka_uses_sasl else []


class ServiceSettings(KafkaSettings):
    """Subclass per service and set `service_name` and `http_port` defaults."""

    service_name: str = "service"
    kafka_group_id: str | None = Field(default=None, description="Defaults to the service name.")
    database_url: str = "postgresql://ratings:ratings@127.0.0.1:5432/ratings"
    database_schema: str | None = Field(default=None, description="Defaults to the service name.")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_from: str = "Agent Ratings <no-reply@ratings.example>"
    smtp_connections: int = Field(
        default=4, ge=1, le=32, description="Mails in flight at once, one SMTP connection each."
    )
    smtp_tls: SmtpTls = Field(
        default="none",
        description="`starttls` (submission, port 587) or `implicit` (port 465) encrypt the "
        "connection; production refuses `none` with a login.",
    )
    smtp_username: str | None = Field(default=None, description="Log in to the SMTP server.")
    smtp_password: str = secret_setting(
        "", "Password of SMTP_USERNAME (given by the mail provider).", generated_here=False
    )
    smtp_ca_file: str | None = Field(
        default=None, description="PEM CA of the SMTP server's certificate (default: system CAs)."
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    public_base_url: str | None = Field(default=None, description="This service's public URL.")
    auth_secret: str = secret_setting(
        "dev-only-auth-secret-change-me-now", "HS256 key of bearer tokens (unused with JWKS)."
    )
    auth_jwks_url: str | None = Field(default=None, description="RS256 issuer's JWKS; else HS256.")
    auth_issuer: str | None = None
    auth_audience: str | None = None
    pii_key: str = secret_setting(
        "dev-only-pii-key-change-me",
        "Secret from which the PII encryption and blind-index keys are derived.",
    )
    token_pepper: str = secret_setting(
        "dev-only-token-pepper-change-me",
        "Shared by invitations and reviews: keys the PIN and token hashes.",
    )
    pii_keys_retired: str = secret_setting(
        "",
        "Comma-separated former PII_KEYs: still decrypt and match until `rekey` has run "
        "(docs/operations.md, Rotate keys).",
    )
    token_peppers_retired: str = secret_setting(
        "",
        "Comma-separated former TOKEN_PEPPERs: PINs and links issued under them stay valid "
        "until they expire.",
    )
    clock_fixed_at: str | None = Field(default=None, description="Refused in production.")
    clock_offset_seconds: float = Field(default=0.0, description="Refused in production.")
    clock_file: str | None = Field(default=None, description="Refused in production.")
    log_level: str = "INFO"
    tracing_enabled: bool = Field(
        default=False,
        description="Trace HTTP requests, consumed and published events and mail sends with "
        "OpenTelemetry, exported over OTLP/HTTP as the standard OTEL_* variables say "
        "(OTEL_EXPORTER_OTLP_ENDPOINT; OTEL_SERVICE_NAME defaults to the service name).",
    )
    scheduler_interval_seconds: float = Field(default=1.0, gt=0)
    outbox_poll_seconds: float = Field(default=0.2, gt=0)
    outbox_batch_size: int = Field(
        default=2000,
        ge=1,
        le=10_000,
        description="Most outbox rows one Kafka transaction of the relay carries. Its fixed "
        "cost is a handful of round trips, each waiting its turn in an event loop busy "
        "consuming: at 500 the relay fell behind a backlog (docs/performance.md).",
    )
    outbox_linger_seconds: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="While events keep coming, how long the outbox relay waits after a part "
        "batch so that one Kafka transaction carries more (docs/performance.md).",
    )
    outbox_retention_hours: float = Field(
        default=168,
        gt=0,
        description="How long a published outbox row is kept (for inspection) before it is "
        "deleted; the relay needs none of them.",
    )
    metrics_interval_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How often the queue, readiness and consumer-lag gauges of /metrics are "
        "measured (a few small queries to PostgreSQL and Kafka each time).",
    )
    consumer_max_attempts: int = Field(default=5, ge=1, description="Tries before the DLQ.")
    trusted_proxies: str = Field(
        default="127.0.0.1",
        description="Comma-separated addresses (or CIDR ranges) of the reverse proxies whose "
        "X-Forwarded-For / X-Forwarded-Proto headers are believed: the client address then "
        "comes from them (the wrong-PIN limit counts per client). Others' headers are ignored, "
        "so a client cannot pick its own address. `*` trusts everyone (only behind a proxy "
        "that overwrites the header).",
    )
    consumer_batch_size: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Most events a batch consumer takes at once from a backlog (it never waits "
        "to fill a batch, so latency under light load is unchanged).",
    )
    consumer_concurrency: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Group members per batch-consumed topic in this process, each with its "
        "own partitions: one works in Python while another waits on PostgreSQL.",
    )

    def secrets_in_use(self) -> dict[str, str]:
        """The secret settings this configuration uses, by environment variable name."""
        names = [
            name
            for name, field in type(self).model_fields.items()
            if isinstance(field.json_schema_extra, dict)
            and field.json_schema_extra.get("secret")
            and name not in KafkaSettings.model_fields
            and (name != "smtp_password" or self.smtp_username)
        ] + self.kafka_secrets_in_use()
        if self.auth_jwks_url:
            names.remove("auth_secret")  # tokens are verified with the issuer's keys instead
        in_use = {
            name.upper(): getattr(self, name) for name in names if not name.endswith("_retired")
        }
        # a retired key is checked like any other: each value on its own, numbered from 1
        for name in names:
            if name.endswith("_retired"):
                for n, value in enumerate(_listed(getattr(self, name)), start=1):
                    in_use[f"{name.upper()}[{n}]"] = value
        return in_use

    def pii_cipher(self) -> PiiCipher:
        """The current PII key and the retired ones still readable (design.md 3.5)."""
        return PiiCipher(self.pii_key, _listed(self.pii_keys_retired))

    def secret_hasher(self) -> SecretHasher:
        """The current token pepper and the retired ones still accepted (design.md 3.5)."""
        return SecretHasher(self.token_pepper, _listed(self.token_peppers_retired))

    def production_refusals(self) -> list[str]:
        """What production refuses: a secret anyone can read in the repository, a short one,
        one shared by two settings (one leak would open both), any moved clock, and a password
        sent in the clear (Kafka's: see KafkaSettings; SMTP's)."""
        secrets = self.secrets_in_use()
        refused = super().production_refusals()
        if self.smtp_tls == "none" and (self.smtp_username or self.smtp_password):
            refused.append(
                "SMTP_TLS=none would send the SMTP login in the clear (set SMTP_TLS=starttls "
                "or implicit)"
            )
        refused += [
            f"{variable} is a value committed in the repository (a development placeholder)"
            for variable, value in secrets.items()
            if value in COMMITTED_SECRETS
        ]
        refused += [
            f"{variable} is shorter than {MIN_SECRET_BYTES} bytes"
            for variable, value in secrets.items()
            if len(value.encode()) < MIN_SECRET_BYTES and self._generated_here(variable)
        ]
        sharing: defaultdict[str, list[str]] = defaultdict(list)
        for variable, value in secrets.items():
            sharing[value].append(variable)
        refused += [
            f"{' and '.join(variables)} are equal"
            for variables in sharing.values()
            if len(variables) > 1
        ]
        # Time travel is for tests and demos: in production it would expire invitations,
        # opt agents out and age reviews out of windows on a made-up date.
        if self.clock_fixed_at:
            refused.append("CLOCK_FIXED_AT is set (production runs on the real clock)")
        if self.clock_offset_seconds:
            refused.append("CLOCK_OFFSET_SECONDS is not 0 (production runs on the real clock)")
        if self.clock_file:
            refused.append("CLOCK_FILE is set (production runs on the real clock)")
        return refused

    def _generated_here(self, variable: str) -> bool:
        extra = type(self).model_fields[variable.lower().split("[")[0]].json_schema_extra
        return not isinstance(extra, dict) or extra.get("generated_here") is not False

    @property
    def group_id(self) -> str:
        return self.kafka_group_id or self.service_name

    @property
    def db_schema(self) -> str:
        return self.database_schema or self.service_name

    @property
    def base_url(self) -> str:
        return (self.public_base_url or f"http://127.0.0.1:{self.http_port}").rstrip("/")

    def clock(self) -> Clock:
        return clock_from_config(self.clock_fixed_at, self.clock_offset_seconds, self.clock_file)
