"""The first part of an agent's funnel over a period (docs/design.md 1.10): closings, their
clients, and how many were invited by email, by phone and by agent code. Reviews answers the
rest (answered, negative, shown publicly); the portal joins the two. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ClosingCount:
    """One of the agent's sides of a closing in the period."""

    clients_listed: int
    """Clients the MLS listed for the agent (0: none listed, or erased)."""
    email: int
    """Invitations by email of a contact from the MLS or the agent (a corrected one once)."""
    phone: int
    code: int


@dataclass(frozen=True)
class InvitedFunnel:
    closings: int
    clients: int
    email: int
    phone: int
    code: int

    @property
    def invited(self) -> int:
        return self.email + self.phone + self.code

    @property
    def not_invited(self) -> int:
        return self.clients - self.invited


def invited_funnel(closings: Sequence[ClosingCount]) -> InvitedFunnel:
    """A closing has at least the clients the MLS listed, and at least as many as were invited
    (an agent may supply clients the MLS did not list). A client re-sent to a corrected email
    is one client invited (the caller counts only invitations not replaced)."""
    clients = sum(max(c.clients_listed, c.email + c.phone + c.code) for c in closings)
    return InvitedFunnel(
        closings=len(closings),
        clients=clients,
        email=sum(c.email for c in closings),
        phone=sum(c.phone for c in closings),
        code=sum(c.code for c in closings),
    )
