"""What a public agent page shows, and the machine-readable forms of it (pure).

Every function here takes what the read model holds and returns what to show: no I/O, so the
rules of display (who is shown, how stars read, what the JSON-LD claims) are unit-tested alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.contracts.ratings import Status

CATEGORY_LABELS: dict[str, str] = {
    "communication": "Communication",
    "friendliness": "Friendliness of staff",
    "professionalism": "Professionalism",
    "area_knowledge": "Knowledge of the area",
    "overall": "Overall service",
}
STATUS_LABELS: dict[Status, str] = {Status.GOLD: "Gold", Status.SILVER: "Silver", Status.NONE: ""}
ANONYMOUS = "A verified client"


@dataclass(frozen=True)
class PublicAgent:
    """An agent the directory shows: on the roster, active, with a public rating."""

    agent_id: str
    name: str
    office_id: str
    stars: int
    status: Status
    status_since: datetime | None
    positive_reviews_3m: int
    reviews_total: int
    category_averages: dict[str, float]
    as_of: datetime


@dataclass(frozen=True)
class PublicReview:
    review_id: str
    survey: str
    submitted_at: datetime
    published_at: datetime
    updated_at: datetime
    scores: dict[str, int]
    positive: bool
    comment: str
    display_name: str | None
    agent_response: str | None

    @property
    def author(self) -> str:
        return self.display_name or ANONYMOUS


def stars_text(stars: int) -> str:
    return "★" * stars + "☆" * (5 - stars)


def stars_label(stars: int) -> str:
    return f"{stars} of 5 stars"


def average_scores(reviews: Sequence[PublicReview], category: str = "overall") -> float | None:
    if not reviews:
        return None
    return round(sum(r.scores[category] for r in reviews) / len(reviews), 2)


def json_ld(agent: PublicAgent, reviews: Sequence[PublicReview], url: str) -> dict[str, Any]:
    """schema.org `RealEstateAgent` with `AggregateRating` and `Review`s. The aggregate is the
    average *overall service* score of exactly the reviews on the page (search engines require
    the rating to describe the reviews shown), not the stars, which count recent positive
    reviews and are a different scale."""
    document: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "RealEstateAgent",
        "@id": url,
        "name": agent.name,
        "url": url,
    }
    overall = average_scores(reviews)
    if overall is not None:
        document["aggregateRating"] = {
            "@type": "AggregateRating",
            "ratingValue": overall,
            "bestRating": 5,
            "worstRating": 1,
            "ratingCount": len(reviews),
            "reviewCount": len(reviews),
        }
        document["review"] = [
            {
                "@type": "Review",
                "author": {"@type": "Person", "name": review.author},
                "datePublished": review.published_at.date().isoformat(),
                "reviewBody": review.comment,
                "reviewRating": {
                    "@type": "Rating",
                    "ratingValue": review.scores["overall"],
                    "bestRating": 5,
                    "worstRating": 1,
                },
            }
            for review in reviews
        ]
    return document


def badge_text(agent: PublicAgent | None, public_reviews: int) -> tuple[str, str]:
    """The badge's two halves: the program's name, then what it says of the agent. A neutral
    message when the agent is not shown: the badge says nothing of why."""
    if agent is None:
        return "Client ratings", "not public"
    status = STATUS_LABELS[agent.status]
    reviews = f"{public_reviews} review" + ("" if public_reviews == 1 else "s")
    parts = [stars_text(agent.stars), status, reviews]
    return "Client ratings", " · ".join(part for part in parts if part)


def etag_of(body: bytes) -> str:
    """A strong validator of the exact bytes served (the badge, the feed)."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates
