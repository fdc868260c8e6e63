"""An agent cancels one client's invitation sent to a wrong email and re-sends it to the right
one (docs/design.md 1.10). Pure: the handler loads the invitation, checks here, cancels it
(`invitation.cancelled.v1`, so the old PIN and link stop working in reviews) and issues the new
one, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.invitations.domain.model import InvitationStatus, RefusedError

RESENDS_MAX = 2
"""How often one client's invitation may be re-sent to a corrected email: enough for a typo
and a second try, not a way to mail address after address."""
WRONG_EMAIL = "wrong_email"
"""The reason of the `invitation.cancelled.v1` of an invitation re-sent elsewhere."""


class Origin(StrEnum):
    """How an invitation's contact came: the funnel tells them apart."""

    MLS = "mls"
    AGENT = "agent"
    CODE = "code"


@dataclass(frozen=True)
class Correctable:
    """What the rule needs to know of the invitation to correct."""

    survey: str
    channel: str
    status: InvitationStatus
    corrections: int
    client_index: str


def check_resend(invitation: Correctable, new_indexes: list[str]) -> None:
    """Only an open email invitation of a closing, to another address, at most `RESENDS_MAX`
    times for one client. `new_indexes`: the new address's blind indexes (under every key)."""
    if invitation.survey != "transaction":
        raise RefusedError("not_a_closing", "only an invitation for a closing can be re-sent")
    if invitation.channel != "email":
        raise RefusedError("not_email", "a phone survey has no email to correct")
    if invitation.status is InvitationStatus.DONE:
        raise RefusedError("already_answered", "the client has answered this survey already")
    if invitation.status is not InvitationStatus.OPEN:
        raise RefusedError("not_open", f"the invitation is {invitation.status.value}")
    if invitation.client_index in new_indexes:
        raise RefusedError("same_email", "this is the address the invitation went to")
    if invitation.corrections >= RESENDS_MAX:
        raise RefusedError(
            "too_many_resends",
            f"this client's invitation was re-sent {RESENDS_MAX} times already: contact support",
        )


def masked(email: str) -> str:
    """An address shown to an agent who did not enter it: enough to tell a wrong one, not to
    read it (`p…@example.com`)."""
    local, at, domain = email.partition("@")
    return f"{local[:1]}…{at}{domain}" if at else "…"
