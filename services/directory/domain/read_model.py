"""How a batch of public events changes the read model (pure): the net effect, so that one
batch is a few set-based statements and applying it twice changes nothing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from shared.contracts.ratings import RatingUpdated
from shared.contracts.reviews import ReviewPublished, ReviewWithdrawn


@dataclass(frozen=True)
class ReviewCopy:
    """A public review as last published, and when that publication happened."""

    event: ReviewPublished
    updated_at: datetime


@dataclass
class ReviewChanges:
    upserts: dict[str, ReviewCopy] = field(default_factory=dict)
    deletions: set[str] = field(default_factory=set)


def review_changes(events: Iterable[tuple[object, datetime]]) -> ReviewChanges:
    """In stream order, the last word on each review wins: a republication replaces the copy,
    a withdrawal removes it, and a publication after a withdrawal (the agent went public again)
    brings it back. `events` pairs each event with its publication time."""
    changes = ReviewChanges()
    for event, at in events:
        if isinstance(event, ReviewPublished):
            changes.upserts[event.review_id] = ReviewCopy(event, at)
            changes.deletions.discard(event.review_id)
        elif isinstance(event, ReviewWithdrawn):
            changes.upserts.pop(event.review_id, None)
            changes.deletions.add(event.review_id)
    return changes


def latest_ratings(events: Iterable[object]) -> dict[str, RatingUpdated]:
    """The newest rating per agent (by `as_of`; the later in the stream on a tie)."""
    latest: dict[str, RatingUpdated] = {}
    for event in events:
        if isinstance(event, RatingUpdated):
            kept = latest.get(event.agent_id)
            if kept is None or event.as_of >= kept.as_of:
                latest[event.agent_id] = event
    return latest
