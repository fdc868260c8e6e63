"""Who is shown, and what the badge, stars and JSON-LD say."""

from __future__ import annotations

from datetime import UTC, datetime

from services.directory.domain.profile import (
    ANONYMOUS,
    PublicAgent,
    PublicReview,
    badge_text,
    etag_matches,
    etag_of,
    json_ld,
    stars_text,
)
from shared.contracts.ratings import Status
from shared.contracts.reviews import is_positive

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def agent(stars: int = 3, status: Status = Status.GOLD) -> PublicAgent:
    return PublicAgent(
        agent_id="A-1",
        name="Dana Whitfield",
        office_id="O-1",
        stars=stars,
        status=status,
        status_since=NOW,
        positive_reviews_3m=5,
        reviews_total=9,
        category_averages={"overall": 4.5},
        as_of=NOW,
    )


def review(overall: int, display_name: str | None = None, review_id: str = "R-1") -> PublicReview:
    scores = {
        "communication": 4,
        "friendliness": 4,
        "professionalism": 4,
        "area_knowledge": 4,
        "overall": overall,
    }
    return PublicReview(
        review_id=review_id,
        survey="transaction",
        submitted_at=NOW,
        published_at=NOW,
        updated_at=NOW,
        scores=scores,
        positive=is_positive(scores),
        comment="Fine",
        display_name=display_name,
        agent_response=None,
    )


def test_positive_means_every_category_at_least_3() -> None:
    assert is_positive(review(3).scores)
    assert not is_positive(review(2).scores)


def test_stars_read_as_filled_then_empty_out_of_five() -> None:
    assert stars_text(0) == "☆☆☆☆☆"
    assert stars_text(3) == "★★★☆☆"


def test_the_badge_shows_stars_status_and_public_reviews() -> None:
    assert badge_text(agent(3, Status.GOLD), 12) == ("Client ratings", "★★★☆☆ · Gold · 12 reviews")
    assert badge_text(agent(1, Status.NONE), 1) == ("Client ratings", "★☆☆☆☆ · 1 review")


def test_the_badge_of_an_agent_not_shown_says_nothing_but_not_public() -> None:
    assert badge_text(None, 0) == ("Client ratings", "not public")


def test_json_ld_rates_exactly_the_reviews_on_the_page() -> None:
    document = json_ld(
        agent(), [review(5), review(4, "Kim", "R-2")], "https://d.example/agents/A-1"
    )
    assert document["@type"] == "RealEstateAgent"
    aggregate = document["aggregateRating"]
    assert aggregate == {
        "@type": "AggregateRating",
        "ratingValue": 4.5,
        "bestRating": 5,
        "worstRating": 1,
        "ratingCount": 2,
        "reviewCount": 2,
    }
    authors = [r["author"]["name"] for r in document["review"]]
    assert authors == [ANONYMOUS, "Kim"]


def test_json_ld_claims_no_rating_without_reviews() -> None:
    document = json_ld(agent(), [], "https://d.example/agents/A-1")
    assert "aggregateRating" not in document and "review" not in document


def test_an_etag_changes_with_the_bytes_and_matches_lists_and_weak_forms() -> None:
    etag = etag_of(b"<svg>1</svg>")
    assert etag != etag_of(b"<svg>2</svg>")
    assert etag_matches(etag, etag)
    assert etag_matches(f'"other", W/{etag}', etag)
    assert etag_matches("*", etag)
    assert not etag_matches(None, etag)
    assert not etag_matches('"other"', etag)
