"""The downstream example keeps a site's copy right through going public, hidden and withdrawals."""

from __future__ import annotations

from examples.public_site import SiteCopy, record_type


def published(review_id: str, agent_id: str = "A-1", **extra: object) -> dict[str, object]:
    return {
        "review_id": review_id,
        "agent_id": agent_id,
        "submitted_at": "2026-01-01T00:00:00Z",
    } | extra


def test_reviews_appear_are_replaced_and_disappear() -> None:
    site = SiteCopy()
    site.apply("review.published.v1", published("r1"))
    site.apply("review.published.v1", published("r2"))
    site.apply("review.published.v1", published("r1", agent_response="Thanks"))
    assert site.reviews["r1"]["agent_response"] == "Thanks" and len(site.reviews) == 2
    site.apply(
        "review.withdrawn.v1", {"review_id": "r1", "agent_id": "A-1", "reason": "agent_not_public"}
    )
    site.apply(
        "review.withdrawn.v1", {"review_id": "r1", "agent_id": "A-1", "reason": "agent_not_public"}
    )
    assert list(site.reviews) == ["r2"]


def test_a_rating_that_stops_being_public_is_taken_down() -> None:
    site = SiteCopy()
    site.apply("rating.updated.v1", {"agent_id": "A-1", "visibility": "public", "stars": 3})
    assert site.ratings["A-1"]["stars"] == 3
    site.apply("rating.updated.v1", {"agent_id": "A-1", "visibility": "hidden", "stars": None})
    assert "A-1" not in site.ratings


def test_unknown_types_are_skipped_and_the_type_is_read_from_the_headers() -> None:
    site = SiteCopy()
    site.apply("review.disputed.v9", {"review_id": "r1"})
    assert site == SiteCopy()
    assert record_type([("content-type", b"application/json"), ("ce_type", b"x.v1")]) == "x.v1"
    assert record_type([]) is None
