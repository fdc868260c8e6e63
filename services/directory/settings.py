"""Configuration of the directory service, from the environment (documented in the README)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class DirectorySettings(ServiceSettings):
    """`SERVICE_NAME` (default `directory`) also names the consumer group and database schema;
    `HTTP_PORT` defaults to 8006 (8005 is kept for the portal)."""

    service_name: str = "directory"
    http_port: int = 8006
    rebuild_when_empty: bool = Field(
        default=True,
        description="When the schema is new (never rebuilt), move the consumer group's offsets "
        "to the beginning of ratings, reviews.public and mls.agents before consuming, so a "
        "re-created schema rebuilds even under a group id that committed offsets before.",
    )
    page_size: int = Field(default=20, ge=1, le=100, description="Agents per search page.")
    badge_max_age_seconds: int = Field(
        default=60,
        ge=0,
        le=3600,
        description="How long browsers and CDNs may keep a badge or feed before revalidating "
        "(with its ETag): also the longest a badge may show a rating taken down upstream.",
    )
