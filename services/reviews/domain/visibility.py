"""Which reviews the public stream `reviews.public` shows: HAR's all-or-none promise.

An agent's reviews are shown publicly only while the agent is public: participating with
`opt_in_public` and not marked inactive by the roster. Then every published review of theirs is
shown; otherwise none is. Everything here is pure; the handlers store and publish the outcome
(docs/design.md §2.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.reviews.domain.model import ReviewState
from shared.contracts.participation import ParticipationMode

AGENT_NOT_PUBLIC = "agent_not_public"
"""The reason of the `review.withdrawn.v1` that takes a review down from the public stream
because its agent stopped being public (hidden, opted out, or inactive on the roster)."""


def is_public(mode: ParticipationMode | None, active: bool | None) -> bool:
    """HAR: ratings are hidden by default (`opt_in_hidden`, also when no participation event has
    arrived yet), shown only by the agent's choice; an agent who left the MLS is never public.
    An agent the roster has not named yet (`active` unknown) is judged by participation alone."""
    return mode is ParticipationMode.OPT_IN_PUBLIC and active is not False


@dataclass(frozen=True)
class PublicView:
    """What the public stream needs to know of one review."""

    review_id: str
    state: ReviewState
    submitted_at: datetime
    shown: bool


@dataclass(frozen=True)
class PublicChanges:
    """Reviews to show (in `submitted_at` order) and reviews to take down."""

    show: tuple[str, ...] = ()
    take_down: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.show or self.take_down)


def reconcile(agent_public: bool, reviews: Sequence[PublicView]) -> PublicChanges:
    """Make what the public stream shows of one agent equal what it should show: every
    published review while the agent is public, nothing otherwise."""
    wanted = {r.review_id for r in reviews if agent_public and r.state is ReviewState.PUBLISHED}
    show = sorted(
        (r for r in reviews if r.review_id in wanted and not r.shown),
        key=lambda r: (r.submitted_at, r.review_id),
    )
    take_down = sorted(
        (r for r in reviews if r.shown and r.review_id not in wanted),
        key=lambda r: (r.submitted_at, r.review_id),
    )
    return PublicChanges(tuple(r.review_id for r in show), tuple(r.review_id for r in take_down))


def shows_on_publication(agent_public: bool, state: ReviewState) -> bool:
    """A review published (or published again, with the agent's response or after an erasure)
    goes to the public stream too while its agent is public."""
    return agent_public and state is ReviewState.PUBLISHED
