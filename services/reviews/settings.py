"""Configuration of the reviews service, from the environment (documented in the README)."""

from __future__ import annotations

from datetime import date, timedelta

from email_validator import EmailNotValidError, validate_email
from pydantic import Field, field_validator

from services.reviews.domain.disputes import ANSWER_BUSINESS_DAYS
from services.reviews.domain.moderation import OFFENSIVE_THRESHOLD, PHONE_REGION, ContentRules
from services.reviews.domain.signals import (
    ADDRESS_RETENTION,
    BURST_MAX,
    BURST_WINDOW,
    COPY_THRESHOLD,
    SignalRules,
)
from shared.portal import DEFAULT_PORTAL_URL
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
    review_burst_max: int = Field(
        default=BURST_MAX,
        ge=1,
        description="Reviews of one agent within the burst window above which one is held.",
    )
    review_burst_window_hours: float = Field(default=BURST_WINDOW.total_seconds() / 3600, gt=0)
    review_copy_threshold: float = Field(
        default=COPY_THRESHOLD,
        gt=0,
        le=1,
        description="Similarity (difflib ratio over words) with another comment on the agent "
        "from which a review is held as a copy.",
    )
    agent_address_retention_days: float = Field(
        default=ADDRESS_RETENTION.days,
        gt=0,
        description="How long keyed hashes of the addresses agents used here are kept (and a "
        "review sent from one is held).",
    )
    dispute_answer_business_days: int = Field(
        default=ANSWER_BUSINESS_DAYS,
        ge=1,
        le=30,
        description="Business days (Monday to Friday) a moderator has to answer an agent's "
        "dispute of a review.",
    )
    portal_url: str = Field(
        default=DEFAULT_PORTAL_URL,
        description="The agent and staff portal: mails to agents and staff link to its pages.",
    )
    moderator_emails: str = Field(
        default="",
        description="Comma-separated addresses told of each new dispute (the services know no "
        "staff otherwise); empty: no mail, the moderators watch the portal's dispute queue.",
    )

    public_holidays: str = Field(
        default="",
        description="Comma-separated dates (YYYY-MM-DD, UTC days) that are not business days "
        "for a dispute's answer deadline, e.g. `2026-12-25,2027-01-01`; list the coming years'.",
    )

    @field_validator("public_holidays")
    @classmethod
    def _dates(cls, value: str) -> str:
        for day in _comma_separated(value):
            try:
                date.fromisoformat(day)
            except ValueError:
                raise ValueError(f"PUBLIC_HOLIDAYS: {day!r} is no YYYY-MM-DD date") from None
        return value

    @property
    def holidays(self) -> frozenset[date]:
        return frozenset(date.fromisoformat(day) for day in _comma_separated(self.public_holidays))

    @field_validator("moderator_emails")
    @classmethod
    def _addresses(cls, value: str) -> str:
        for address in _comma_separated(value):
            try:
                validate_email(address, check_deliverability=False)
            except EmailNotValidError as wrong:
                raise ValueError(f"MODERATOR_EMAILS: {address!r} is no address: {wrong}") from None
        return value

    @property
    def moderator_addresses(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(_comma_separated(self.moderator_emails)))

    @property
    def response_window(self) -> timedelta:
        return timedelta(days=self.response_window_days)

    @property
    def code_failure_window(self) -> timedelta:
        return timedelta(minutes=self.code_failure_window_minutes)

    @property
    def content_rules(self) -> ContentRules:
        return ContentRules(
            offensive_threshold=self.review_offensive_threshold,
            phone_region=self.review_phone_region.upper(),
        )

    @property
    def signal_rules(self) -> SignalRules:
        return SignalRules(
            burst_max=self.review_burst_max,
            burst_window=timedelta(hours=self.review_burst_window_hours),
            copy_threshold=self.review_copy_threshold,
        )

    @property
    def address_retention(self) -> timedelta:
        return timedelta(days=self.agent_address_retention_days)


def _comma_separated(values: str) -> list[str]:
    return [value.strip() for value in values.split(",") if value.strip()]
