"""Configuration of the scoring service, from the environment (documented in the README)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    """`SERVICE_NAME` (default `scoring`) also names the consumer group and database schema;
    `HTTP_PORT` defaults to 8003."""

    service_name: str = "scoring"
    http_port: int = 8003
    scoring_policy_version: str | None = Field(
        default=None, description="Policy to rate with; defaults to the newest (see policies)."
    )
    consumer_batch_size: int = Field(
        default=2000,
        ge=1,
        le=10_000,
        description="Reviews re-rated per transaction when catching up: 4x the default batch "
        "coalesces an agent's reviews and amortizes each commit (docs/performance.md).",
    )
    consumer_concurrency: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Consumers of reviews.published in this process, each with its own "
        "partitions: while one waits on PostgreSQL the other rates (docs/performance.md).",
    )
    rating_scheduler_seconds: float = Field(
        default=15.0, gt=0, description="How often agents due for a change are re-evaluated."
    )
