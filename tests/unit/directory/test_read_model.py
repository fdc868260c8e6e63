"""The net effect of a batch of public events on the read model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.directory.domain.read_model import latest_ratings, review_changes
from shared.contracts.ratings import RatingUpdated, Visibility
from shared.contracts.reviews import Channel, ReviewPublished, ReviewWithdrawn, Scores

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
SCORES = Scores(communication=5, friendliness=5, professionalism=5, area_knowledge=5, overall=5)


def published(review_id: str, comment: str = "Good") -> ReviewPublished:
    return ReviewPublished(
        review_id=review_id,
        agent_id="A-1",
        transaction_id="T-1",
        survey="transaction",
        channel=Channel.EMAIL,
        submitted_at=NOW,
        published_at=NOW,
        scores=SCORES,
        positive=True,
        comment=comment,
    )


def withdrawn(review_id: str) -> ReviewWithdrawn:
    return ReviewWithdrawn(review_id=review_id, agent_id="A-1", withdrawn_at=NOW, reason="x")


def rating(visibility: Visibility, as_of: datetime) -> RatingUpdated:
    return RatingUpdated(agent_id="A-1", as_of=as_of, visibility=visibility, policy_version="p")


def test_a_republication_replaces_the_earlier_copy_in_the_same_batch() -> None:
    changes = review_changes([(published("R-1", "old"), NOW), (published("R-1", "new"), NOW)])
    assert changes.upserts["R-1"].event.comment == "new"
    assert changes.deletions == set()


def test_a_withdrawal_removes_the_review_even_when_published_in_the_same_batch() -> None:
    changes = review_changes([(published("R-1"), NOW), (withdrawn("R-1"), NOW)])
    assert changes.upserts == {} and changes.deletions == {"R-1"}


def test_a_review_published_again_after_its_withdrawal_is_back() -> None:
    later = NOW + timedelta(days=1)
    changes = review_changes(
        [(published("R-1"), NOW), (withdrawn("R-1"), NOW), (published("R-1"), later)]
    )
    assert changes.deletions == set()
    assert changes.upserts["R-1"].updated_at == later


def test_applying_a_batch_twice_gives_the_same_changes() -> None:
    batch = [(published("R-1"), NOW), (withdrawn("R-2"), NOW)]
    once = review_changes(batch)
    twice = review_changes(batch + batch)
    assert once.upserts.keys() == twice.upserts.keys() and once.deletions == twice.deletions


def test_the_newest_rating_of_an_agent_wins_whatever_the_order() -> None:
    public, hidden = rating(Visibility.PUBLIC, NOW), rating(Visibility.HIDDEN, NOW + timedelta(1))
    assert latest_ratings([hidden, public])["A-1"] is hidden
    assert latest_ratings([public, hidden])["A-1"] is hidden
