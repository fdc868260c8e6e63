"""Configuration of the reviews service, from the environment (documented in the README)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from services.reviews.domain.moderation import OFFENSIVE_THRESHOLD, PHONE_REGION, ContentRules
from shared.settings import ServiceSettings


class ReviewsSettings(ServiceSettings):
    """`SERVICE_NAME` (default `reviews`) also names the consumer group and database schema;
    `HTTP_PORT` defaults to 8002."""

    service_name: str = "reviews"
    http_port: int = 8002
    response_window_days: float = Field(
        default=7, gt=0, description="How long the agent may respond before a review publishes."
    )
    code_failure_limit: int = Field(
        default=10, ge=1, description="Wrong PINs/links one client address may try per window."
    )
    code_failure_global_limit: int = Field(
        default=500, ge=1, description="Wrong codes from all addresses together per window."
    )
    code_failure_window_minutes: float = Field(default=15, gt=0)
    review_offensive_threshold: float = Field(
        default=OFFENSIVE_THRESHOLD,
        gt=0,
        le=1,
        description="The offensive-language classifier's probability from which a moderator "
        "reads a comment first.",
    )
    review_phone_region: str = Field(
        default=PHONE_REGION,
        min_length=2,
        max_length=2,
        description="Region (ISO 3166-1 alpha-2) in which phone numbers without a country code "
        "are read.",
    )
    agent_portal_base_url: str | None = Field(
        default=None, description="Where agents read and answer reviews; defaults to this service."
    )

    @property
    def response_window(self) -> timedelta:
        return timedelta(days=self.response_window_days)

    @property
    def code_failure_window(self) -> timedelta:
        return timedelta(minutes=self.code_failure_window_minutes)

    @property
    def portal_url(self) -> str:
        return (self.agent_portal_base_url or self.base_url).rstrip("/")

    @property
    def content_rules(self) -> ContentRules:
        return ContentRules(
            offensive_threshold=self.review_offensive_threshold,
            phone_region=self.review_phone_region.upper(),
        )
