"""Settings common to every service, read from the environment (documented in the README)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.clock import Clock, clock_from_config

PLACEHOLDER_SECRETS = frozenset(
    {
        "dev-only-auth-secret-change-me-now",
        "dev-only-pii-key-change-me",
        "dev-only-token-pepper-change-me",
    }
)


class ServiceSettings(BaseSettings):
    """Subclass per service and set `service_name` and `http_port` defaults."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    service_name: str = "service"
    environment: Literal["local", "test", "production"] = Field(
        default="local", description="Placeholder secrets are refused in production."
    )
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_group_id: str | None = Field(default=None, description="Defaults to the service name.")
    database_url: str = "postgresql://ratings:ratings@127.0.0.1:5432/ratings"
    database_schema: str | None = Field(default=None, description="Defaults to the service name.")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_from: str = "Agent Ratings <no-reply@ratings.example>"
    smtp_connections: int = Field(
        default=4, ge=1, le=32, description="Mails in flight at once, one SMTP connection each."
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    public_base_url: str | None = Field(default=None, description="This service's public URL.")
    auth_secret: str = "dev-only-auth-secret-change-me-now"  # noqa: S105 - refused in production
    auth_jwks_url: str | None = Field(default=None, description="RS256 issuer's JWKS; else HS256.")
    auth_issuer: str | None = None
    auth_audience: str | None = None
    pii_key: str = Field(
        default="dev-only-pii-key-change-me",
        description="Secret from which the PII encryption and blind-index keys are derived.",
    )
    token_pepper: str = Field(
        default="dev-only-token-pepper-change-me",
        description="Shared by invitations and reviews: keys the PIN and token hashes.",
    )
    clock_fixed_at: str | None = None
    clock_offset_seconds: float = 0.0
    clock_file: str | None = None
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

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> ServiceSettings:
        if self.environment == "production":
            weak = [
                name
                for name in ("auth_secret", "pii_key", "token_pepper")
                if getattr(self, name) in PLACEHOLDER_SECRETS or len(getattr(self, name)) < 32
            ]
            if weak and not (weak == ["auth_secret"] and self.auth_jwks_url):
                raise ValueError(f"set real secrets in production: {', '.join(weak)}")
        return self

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
