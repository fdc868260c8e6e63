"""What every invitations handler is given beyond its unit of work, built by the composition
root (`services.invitations.app`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from services.invitations.domain.model import Policy
from services.invitations.domain.trust import ContactRules
from services.invitations.repository import InvitationsRepository
from shared.crypto import SecretHasher
from shared.errors import NotFoundError
from shared.mailer import Templates
from shared.uow import UnitOfWork

TEMPLATES = Path(__file__).parent.parent / "templates"


@dataclass(frozen=True)
class Context:
    """The app's policy, secrets, mail templates and public addresses."""

    policy: Policy
    hasher: SecretHasher
    templates: Templates
    survey_base_url: str
    service_base_url: str
    portal_url: str
    contact_rules: ContactRules = field(default_factory=ContactRules)


__all__ = ["TEMPLATES", "Context", "NotFoundError", "repository"]


def repository(uow: UnitOfWork) -> InvitationsRepository:
    return InvitationsRepository(uow.conn, uow.cipher)
