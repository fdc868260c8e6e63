"""The reviews part of an agent's funnel over a period (docs/design.md 1.10): of the clients
invited for closings in the period, how many answered, how many answers were negative, and how
many are shown publicly now. Invitations answers the first part (closings, clients, invited by
route); the portal joins the two. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.reviews.domain.model import AGENT_VISIBLE, ReviewState


@dataclass(frozen=True)
class Outcome:
    """One answered invitation of the period, as the funnel needs it."""

    state: ReviewState
    positive: bool
    shown: bool
    """On the public stream `reviews.public` now."""


@dataclass(frozen=True)
class ReviewedFunnel:
    invited: int
    answered: int
    with_moderator: int
    """In moderation, or rejected: counted, never described (the agent never sees them)."""
    negative: int
    published: int
    withdrawn: int
    shown_publicly: int


def reviewed_funnel(invited: int, outcomes: Sequence[Outcome]) -> ReviewedFunnel:
    """Negative counts only reviews the agent may see (waiting for their response, published,
    withdrawn): a review still with a moderator shows no score to its agent, not even as a
    count of negatives."""
    visible = [o for o in outcomes if o.state in AGENT_VISIBLE]
    return ReviewedFunnel(
        invited=invited,
        answered=len(outcomes),
        with_moderator=len(outcomes) - len(visible),
        negative=sum(not o.positive for o in visible),
        published=sum(o.state is ReviewState.PUBLISHED for o in outcomes),
        withdrawn=sum(o.state is ReviewState.WITHDRAWN for o in outcomes),
        shown_publicly=sum(o.shown and o.state is ReviewState.PUBLISHED for o in outcomes),
    )
