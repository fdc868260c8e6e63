"""What leaves the system: the public form of a rating, by the agent's participation mode and
whether the roster marks the agent active.

Hidden and opted-out ratings keep their numbers inside the service (the agent reads them with
its own token); on the stream and to everyone else every rating field is null.
"""

from __future__ import annotations

from datetime import datetime

from services.scoring.domain.policy import DEFAULT_POLICY, Policy, Rating
from shared.contracts.participation import ParticipationMode
from shared.contracts.ratings import RatingUpdated, Visibility

POLICIES: dict[str, Policy] = {DEFAULT_POLICY.version: DEFAULT_POLICY}
"""Every policy version this build can rate with; add a new one here to roll it out by replay."""

VISIBILITY = {
    ParticipationMode.OPT_IN_PUBLIC: Visibility.PUBLIC,
    ParticipationMode.OPT_IN_HIDDEN: Visibility.HIDDEN,
    ParticipationMode.OPT_OUT: Visibility.OPTED_OUT,
}


def policy_for(version: str | None) -> Policy:
    if version is None:
        return DEFAULT_POLICY
    try:
        return POLICIES[version]
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise ValueError(f"unknown scoring policy {version!r}; known: {known}") from None


def visibility_of(mode: ParticipationMode, *, active: bool) -> Visibility:
    """The mode's visibility, except that an agent the roster marks inactive (who left the MLS)
    is never public (docs/design.md 1.7): `public` becomes `hidden`, which already
    means "kept, shown to the agent only"; `opted_out` stays, it is still the agent's choice. The
    mode itself is untouched, so marked active again the agent is public again."""
    visibility = VISIBILITY[mode]
    if not active and visibility is Visibility.PUBLIC:
        return Visibility.HIDDEN
    return visibility


def public_rating(
    agent_id: str, rating: Rating, visibility: Visibility, as_of: datetime
) -> RatingUpdated:
    """`rating.updated.v1` as the contract shows it: numbers only when public."""
    if visibility is not Visibility.PUBLIC:
        return RatingUpdated(
            agent_id=agent_id,
            as_of=as_of,
            visibility=visibility,
            policy_version=rating.policy_version,
        )
    return RatingUpdated(
        agent_id=agent_id,
        as_of=as_of,
        visibility=visibility,
        policy_version=rating.policy_version,
        stars=rating.stars,
        status=rating.status,
        status_since=rating.status_since,
        next_review_at=rating.next_review_at,
        positive_reviews_3m=rating.positive_reviews_3m,
        positive_reviews_6m=rating.positive_reviews_6m,
        reviews_total=rating.reviews_total,
        category_averages=rating.category_averages,
    )


def published_form(event: RatingUpdated) -> str:
    """The event as JSON, as the stream carries it: the store keeps it and compares it without
    `as_of` (jsonb `- 'as_of'`), so two ratings that only differ in their instant say the same,
    and the same text is the outbox payload (one dump a rating, not two)."""
    return event.model_dump_json()
