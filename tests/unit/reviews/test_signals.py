"""Trust signals on a submitted review (docs/design.md §3.3), rule by rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.reviews.domain.moderation import Flag, Route, Routing
from services.reviews.domain.signals import (
    EarlierReview,
    Signal,
    SignalRules,
    Submission,
    comparable_address,
    held,
    is_copy,
    signals,
    similarity,
)

NOW = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)
RULES = SignalRules(burst_max=5, burst_window=timedelta(hours=24))
HONEST = "Knew the schools and the flood maps, and got us the house under asking."


def earlier(hours_ago: float, comment: str = "") -> EarlierReview:
    return EarlierReview(NOW - timedelta(hours=hours_ago), comment)


def submission(comment: str = HONEST, **facts: object) -> Submission:
    return Submission(NOW, comment, **facts)  # type: ignore[arg-type]


def test_a_review_with_nothing_odd_has_no_signal() -> None:
    assert signals(submission(), [earlier(48, "Great agent!")], RULES) == ()


def test_more_than_the_burst_maximum_in_the_window_is_a_burst() -> None:
    four = [earlier(h) for h in (1, 2, 3, 23)]
    assert signals(submission(), four, RULES) == ()  # the fifth review: at the maximum
    assert signals(submission(), [*four, earlier(5)], RULES) == (Signal.BURST,)


def test_reviews_outside_the_burst_window_do_not_count() -> None:
    assert signals(submission(), [earlier(h) for h in (1, 2, 3, 4, 24, 30)], RULES) == ()


def test_a_copied_comment_is_caught_even_lightly_edited() -> None:
    original = "Pat was amazing, sold our house in three days above asking. Highly recommend!"
    edited = "Pat was amazing, sold our home in 3 days above asking price. Highly recommend!"
    assert is_copy(edited, original, RULES)
    assert signals(submission(edited), [earlier(200, original)], RULES) == (Signal.COPIED_COMMENT,)


def test_honest_comments_that_share_common_phrases_are_not_copies() -> None:
    a = "Great agent, very responsive and knew the neighborhood well. Would recommend."
    b = "Very responsive agent who knew the area well. Would definitely recommend to friends."
    assert similarity(a, b) < RULES.copy_threshold
    assert not is_copy(a, b, RULES)


def test_short_comments_are_never_compared() -> None:
    assert not is_copy("Great agent, highly recommend!", "Great agent, highly recommend!", RULES)


def test_comments_older_than_the_copy_window_are_not_compared() -> None:
    old = earlier(RULES.copy_window.total_seconds() / 3600 + 1, HONEST)
    assert signals(submission(HONEST), [old], RULES) == ()
    assert signals(submission(HONEST), [earlier(1, HONEST)], RULES) == (Signal.COPIED_COMMENT,)


def test_a_contact_invitations_flagged_is_a_signal() -> None:
    found = signals(submission(contact_flags=("contact_reused_across_agents",)), [], RULES)
    assert found == (Signal.FLAGGED_CONTACT,)


def test_a_review_sent_from_an_address_the_agent_used_is_a_signal() -> None:
    assert signals(submission(from_agent_address=True), [], RULES) == (Signal.AGENT_ADDRESS,)


def test_any_signal_holds_the_review_for_a_moderator_whatever_its_route() -> None:
    clean = Routing(Route.PUBLISH, (), True)
    assert held(clean, (Signal.BURST,)) == Routing(Route.MODERATOR, (), True)
    assert held(clean, ()) is clean
    flagged = Routing(Route.MODERATOR, (Flag.LINK,), False)
    assert held(flagged, (Signal.AGENT_ADDRESS,)) == flagged


def test_a_loopback_or_unreadable_address_is_never_compared() -> None:
    assert comparable_address("203.0.113.7") == "203.0.113.7"
    assert comparable_address("2001:db8::1") == "2001:db8::1"
    assert comparable_address("127.0.0.1") is None
    assert comparable_address("::1") is None
    assert comparable_address("unknown") is None
    assert comparable_address(None) is None
