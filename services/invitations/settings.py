"""Configuration of the invitations service, from the environment (documented in the README)."""

from __future__ import annotations

from pydantic import Field

from services.invitations.domain.model import Policy
from services.invitations.domain.trust import (
    CONTACT_REUSE_AGENTS,
    SUPPLIED_CLIENTS_MAX,
    ContactRules,
)
from shared.portal import DEFAULT_PORTAL_URL
from shared.settings import ServiceSettings


class InvitationsSettings(ServiceSettings):
    """`SERVICE_NAME` (default `invitations`) also names the consumer group and database schema;
    `HTTP_PORT` defaults to 8001."""

    service_name: str = "invitations"
    http_port: int = 8001
    reviews_public_base_url: str = Field(
        default="http://127.0.0.1:8002", description="Survey links point at the reviews service."
    )
    portal_url: str = Field(
        default=DEFAULT_PORTAL_URL,
        description="The agent and staff portal: mails to agents and staff link to its pages.",
    )
    compliance_window_days: int = Field(default=14, ge=1)
    agent_reminder_days: int = Field(default=7, ge=1)
    client_reminder_days: int = Field(default=7, ge=1)
    invitation_ttl_days: int = Field(default=30, ge=1)
    agent_supplied_clients_max: int = Field(
        default=SUPPLIED_CLIENTS_MAX,
        ge=1,
        description="Contacts an agent may enter for one side of a closing that names no client.",
    )
    agent_contact_reuse_agents: int = Field(
        default=CONTACT_REUSE_AGENTS,
        ge=2,
        description="Distinct agents who entered one address, from which its review is held.",
    )

    def contact_rules(self) -> ContactRules:
        return ContactRules(
            supplied_clients_max=self.agent_supplied_clients_max,
            reuse_agents=self.agent_contact_reuse_agents,
        )

    def policy(self) -> Policy:
        return Policy.of_days(
            compliance_window=self.compliance_window_days,
            agent_reminder=self.agent_reminder_days,
            client_reminder=self.client_reminder_days,
            invitation_ttl=self.invitation_ttl_days,
        )

    @property
    def survey_base_url(self) -> str:
        return self.reviews_public_base_url.rstrip("/")
