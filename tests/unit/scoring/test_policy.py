"""The scoring policy, one rule branch per test (docs/design.md §1.5)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from services.scoring.domain.months import window_changes
from services.scoring.domain.policy import (
    DEFAULT_POLICY,
    Policy,
    ReviewFact,
    evaluate,
)
from shared.contracts.ratings import Status
from shared.contracts.reviews import CATEGORIES

MICROSECOND = timedelta(microseconds=1)
GOOD = dict.fromkeys(CATEGORIES, 4)
BAD = dict.fromkeys(CATEGORIES, 1)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def review(review_id: str, submitted_at: datetime, scores: dict[str, int] = GOOD) -> ReviewFact:
    return ReviewFact(review_id, submitted_at, scores)


def weekly(
    prefix: str, first: datetime, count: int, scores: dict[str, int] = GOOD
) -> list[ReviewFact]:
    return [review(f"{prefix}{i}", first + timedelta(weeks=i), scores) for i in range(count)]


# Four weekly positives: silver on 26 Jan 2026 10:00, period to 26 Apr 2026 10:00.
SILVER_AT = utc(2026, 1, 26, 10)
SILVER_ENDS = utc(2026, 4, 26, 10)
FIRST_FOUR = weekly("a", utc(2026, 1, 5, 10), 4)


def test_silver_starts_at_the_fourth_positive_review_in_three_months_not_the_third():
    assert evaluate(FIRST_FOUR[:3], None, SILVER_AT).status is Status.NONE
    assert evaluate(FIRST_FOUR, None, SILVER_AT - MICROSECOND).status is Status.NONE
    rating = evaluate(FIRST_FOUR, None, SILVER_AT)
    assert rating.status is Status.SILVER
    assert rating.status_since == SILVER_AT
    assert rating.next_review_at == SILVER_ENDS


def test_silver_from_four_positives_spanning_the_longest_three_month_window():
    # (28 Feb 23:59:59, 31 May 23:59:59]: 92 days, the lower bound clamped from 31 Feb; the
    # walk must not be skipped as if no window could hold them
    last = utc(2026, 5, 31, 23, 59, 59)
    first = utc(2026, 2, 28, 23, 59, 59, 1)
    four = [
        review(f"w{i}", at) for i, at in enumerate([first, utc(2026, 4, 1), utc(2026, 5, 1), last])
    ]
    assert last - first > timedelta(days=91)
    assert evaluate(four, None, last - MICROSECOND).status is Status.NONE
    rating = evaluate(four, None, last)
    assert rating.status is Status.SILVER
    assert rating.status_since == last


def test_negative_reviews_do_not_count_towards_silver():
    history = [*FIRST_FOUR[:3], *weekly("bad", utc(2026, 1, 27, 10), 5, BAD)]
    rating = evaluate(history, None, utc(2026, 3, 1))
    assert rating.status is Status.NONE
    assert rating.positive_reviews_3m == 3
    assert rating.reviews_total == 8


def test_four_positives_spread_over_more_than_three_months_give_no_silver():
    spread = weekly("m", utc(2026, 1, 5, 10), 4, GOOD)
    spread = [
        replace(fact, submitted_at=fact.submitted_at + timedelta(days=31 * i))
        for i, fact in enumerate(spread)
    ]
    assert evaluate(spread, None, utc(2026, 6, 1)).status is Status.NONE


@pytest.mark.parametrize("category", CATEGORIES)
def test_a_review_with_one_category_at_2_is_not_positive(category):
    scores = {**dict.fromkeys(CATEGORIES, 5), category: 2}
    assert not DEFAULT_POLICY.is_positive(scores)
    rating = evaluate([*FIRST_FOUR[:3], review("x", SILVER_AT, scores)], None, SILVER_AT)
    assert rating.status is Status.NONE
    assert rating.positive_reviews_3m == 3


def test_every_category_at_3_is_positive():
    assert DEFAULT_POLICY.is_positive(dict.fromkeys(CATEGORIES, 3))


# Membership from 15 Apr 2026: gold possible from 15 Oct 2026 00:00.
MEMBER_SINCE = date(2026, 4, 15)
ANNIVERSARY = utc(2026, 10, 15)
EIGHT_BEFORE = weekly("g", utc(2026, 8, 3, 10), 8)  # silver on 24 Aug, 8th on 21 Sep


def test_gold_waits_for_the_membership_anniversary_then_starts_exactly_at_it():
    before = evaluate(EIGHT_BEFORE, MEMBER_SINCE, ANNIVERSARY - MICROSECOND)
    assert before.status is Status.SILVER
    assert before.positive_reviews_6m == 8
    assert before.next_change_at == ANNIVERSARY
    rating = evaluate(EIGHT_BEFORE, MEMBER_SINCE, ANNIVERSARY)
    assert rating.status is Status.GOLD
    assert rating.status_since == ANNIVERSARY
    assert rating.next_review_at == utc(2027, 4, 15)
    assert [p.status for p in rating.periods] == [Status.SILVER, Status.GOLD]
    # The silver period ends where gold begins, not at its scheduled end (24 Nov).
    assert rating.periods[0].end == ANNIVERSARY


def test_unknown_membership_never_gives_gold():
    rating = evaluate(weekly("g", utc(2026, 1, 5, 10), 20), None, utc(2026, 6, 1))
    assert rating.status is Status.SILVER
    assert rating.positive_reviews_6m == 20


def test_eight_positives_at_one_instant_cascade_from_none_through_silver_to_gold():
    at = utc(2026, 3, 1, 10)
    rating = evaluate([review(f"r{i}", at) for i in range(8)], date(2025, 1, 1), at)
    assert rating.status is Status.GOLD
    assert rating.status_since == at
    assert [(p.status, p.start) for p in rating.periods] == [(Status.GOLD, at)]


GOLD_PERIOD_ENDS = utc(2027, 4, 15)


def test_gold_is_kept_for_another_period_with_8_positives_in_the_period():
    history = [*EIGHT_BEFORE, *weekly("k", utc(2027, 1, 4, 10), 8)]
    rating = evaluate(history, MEMBER_SINCE, GOLD_PERIOD_ENDS)
    assert rating.status is Status.GOLD
    assert rating.status_since == ANNIVERSARY
    assert rating.next_review_at == utc(2027, 10, 15)
    assert [(p.status, p.start) for p in rating.periods] == [
        (Status.SILVER, utc(2026, 8, 24, 10)),
        (Status.GOLD, ANNIVERSARY),
        (Status.GOLD, GOLD_PERIOD_ENDS),
    ]
    assert rating.periods[-1].reason.startswith("gold kept: 8 positive reviews")


def test_gold_drops_to_silver_with_a_new_3_month_period_when_fewer_than_8_in_the_period():
    history = [*EIGHT_BEFORE, *weekly("k", utc(2027, 1, 4, 10), 7)]
    assert evaluate(history, MEMBER_SINCE, GOLD_PERIOD_ENDS - MICROSECOND).status is Status.GOLD
    rating = evaluate(history, MEMBER_SINCE, GOLD_PERIOD_ENDS)
    assert rating.status is Status.SILVER
    assert rating.status_since == GOLD_PERIOD_ENDS
    assert rating.next_review_at == utc(2027, 7, 15)
    assert rating.periods[-1].reason.startswith("gold lost: 7 positive reviews")


def test_silver_is_kept_for_another_period_with_4_positives_in_the_period():
    history = [*FIRST_FOUR, *weekly("k", utc(2026, 3, 2, 10), 4)]
    rating = evaluate(history, None, SILVER_ENDS)
    assert rating.status is Status.SILVER
    assert rating.status_since == SILVER_AT
    assert rating.next_review_at == utc(2026, 7, 26, 10)
    assert [(p.start, p.end) for p in rating.periods] == [
        (SILVER_AT, SILVER_ENDS),
        (SILVER_ENDS, utc(2026, 7, 26, 10)),
    ]


def test_silver_drops_to_none_when_fewer_than_4_in_the_period():
    history = [*FIRST_FOUR, *weekly("k", utc(2026, 3, 2, 10), 3)]
    assert evaluate(history, None, SILVER_ENDS - MICROSECOND).status is Status.SILVER
    rating = evaluate(history, None, SILVER_ENDS)
    assert rating.status is Status.NONE
    assert rating.status_since == SILVER_ENDS
    assert rating.next_review_at is None
    assert rating.periods[-1].status is Status.NONE
    assert rating.periods[-1].end is None
    assert "silver lost: 3 positive reviews" in rating.periods[-1].reason


def test_silver_starts_again_after_a_drop_and_the_none_period_then_ends():
    history = [*FIRST_FOUR, *weekly("z", utc(2026, 6, 1, 10), 4)]
    rating = evaluate(history, None, utc(2026, 7, 1))
    assert [p.status for p in rating.periods] == [Status.SILVER, Status.NONE, Status.SILVER]
    assert rating.periods[1].end == utc(2026, 6, 22, 10)
    assert rating.status_since == utc(2026, 6, 22, 10)


@pytest.mark.parametrize(
    ("positives", "stars"),
    [(0, 0), (1, 0), (2, 1), (3, 1), (4, 2), (5, 3), (6, 3), (7, 4), (8, 5), (9, 5)],
)
def test_stars_follow_the_threshold_table(positives, stars):
    history = [*weekly("p", utc(2026, 1, 5, 10), positives), *weekly("n", utc(2026, 1, 6), 3, BAD)]
    rating = evaluate(history, None, utc(2026, 3, 31))
    assert rating.positive_reviews_3m == positives
    assert rating.stars == stars


def test_stars_fall_as_reviews_age_out_with_no_new_review():
    history = weekly("s", utc(2026, 1, 5, 10), 2)
    leaves = window_changes(history[0].submitted_at, 3)[1]
    assert leaves == utc(2026, 4, 5, 10)
    assert evaluate(history, None, utc(2026, 3, 1)).next_change_at == leaves
    assert evaluate(history, None, leaves - MICROSECOND).stars == 1
    after = evaluate(history, None, leaves)
    assert (after.stars, after.positive_reviews_3m) == (0, 1)
    assert after.reviews_total == 2


def test_a_late_earlier_review_rewrites_history_whatever_the_input_order():
    on_time = [FIRST_FOUR[0], FIRST_FOUR[2], FIRST_FOUR[3]]
    assert evaluate(on_time, None, utc(2026, 3, 1)).status is Status.NONE
    late = [*on_time, FIRST_FOUR[1]]  # submitted 12 Jan, published after moderation
    rating = evaluate(late, None, utc(2026, 3, 1))
    assert rating.status is Status.SILVER
    assert rating.status_since == SILVER_AT
    shuffled = late[:]
    random.Random(7).shuffle(shuffled)
    assert evaluate(shuffled, None, utc(2026, 3, 1)) == rating


def test_a_withdrawn_review_is_absent_and_lowers_the_status_history():
    with_all = evaluate(FIRST_FOUR, None, utc(2026, 3, 1))
    withdrawn = evaluate(FIRST_FOUR[:1] + FIRST_FOUR[2:], None, utc(2026, 3, 1))
    assert with_all.status is Status.SILVER
    assert withdrawn.status is Status.NONE
    assert withdrawn.periods == ()
    assert withdrawn.status_since is None


def test_the_window_reaches_back_to_the_clamped_month_end():
    # As of 31 May 10:00 the window is (28 Feb 10:00, 31 May 10:00].
    history = [review("on", utc(2026, 2, 28, 10)), review("after", utc(2026, 2, 28, 10, 0, 1))]
    rating = evaluate(history, None, utc(2026, 5, 31, 10))
    assert rating.windows[0].start == utc(2026, 2, 28, 10)
    assert rating.windows[0].review_ids == ("after",)


def test_the_window_reaches_back_to_29_february_in_a_leap_year():
    history = [review("feb28", utc(2028, 2, 28, 23)), review("feb29", utc(2028, 2, 29, 11))]
    rating = evaluate(history, None, utc(2028, 5, 31, 10))
    assert rating.windows[0].start == utc(2028, 2, 29, 10)
    assert rating.windows[0].review_ids == ("feb29",)


def test_a_month_end_review_is_counted_again_in_the_mornings_of_days_its_month_lacks():
    # 29 May 2026 - 3 months = 28 Feb 00:00: the window then holds a review of 28 Feb 12:00.
    history = [review("feb", utc(2026, 2, 28, 12))]
    assert evaluate(history, None, utc(2026, 5, 28, 15)).positive_reviews_3m == 0
    assert evaluate(history, None, utc(2026, 5, 28, 15)).next_change_at == utc(2026, 5, 29)
    assert evaluate(history, None, utc(2026, 5, 29, 11)).positive_reviews_3m == 1
    assert evaluate(history, None, utc(2026, 5, 29, 11)).next_change_at == utc(2026, 5, 29, 12)
    # Then only the 6-month window is left to leave.
    assert evaluate(history, None, utc(2026, 5, 31, 12)).next_change_at == utc(2026, 8, 28, 12)


def test_silver_starts_at_the_midnight_a_month_end_review_comes_back_into_the_window():
    history = [
        review("feb", utc(2026, 2, 28, 12)),
        *(review(f"may{i}", utc(2026, 5, 28, 13, i)) for i in range(3)),
    ]
    assert evaluate(history, None, utc(2026, 5, 28, 23)).status is Status.NONE
    rating = evaluate(history, None, utc(2026, 6, 1))
    assert rating.status is Status.SILVER
    assert rating.status_since == utc(2026, 5, 29)


def test_next_change_at_is_the_earliest_of_leaving_period_end_and_future_reviews():
    # Silver since 26 Jan, period to 26 Apr; the first review leaves the window on 5 Apr 10:00.
    assert evaluate(FIRST_FOUR, None, utc(2026, 3, 1)).next_change_at == utc(2026, 4, 5, 10)
    # After all four have left, only the period end remains.
    assert evaluate(FIRST_FOUR, None, utc(2026, 4, 26, 9)).next_change_at == SILVER_ENDS
    # A future-dated review enters at its own instant, even a negative one.
    future = [*FIRST_FOUR, review("later", utc(2026, 3, 10, 9), BAD)]
    rating = evaluate(future, None, utc(2026, 3, 1))
    assert rating.next_change_at == utc(2026, 3, 10, 9)
    assert rating.reviews_total == 4


def test_nothing_can_change_without_reviews():
    rating = evaluate([], date(2025, 1, 1), utc(2026, 3, 1))
    assert rating.next_change_at is None
    assert (rating.stars, rating.status, rating.reviews_total) == (0, Status.NONE, 0)
    assert rating.category_averages == {}
    assert rating.periods == ()


def test_the_anniversary_is_no_change_when_gold_is_out_of_reach():
    seven = EIGHT_BEFORE[:7]
    rating = evaluate(seven, MEMBER_SINCE, utc(2026, 10, 1))
    assert rating.status is Status.SILVER
    assert rating.next_change_at == window_changes(seven[0].submitted_at, 3)[1]


def test_reviews_after_the_instant_are_ignored_except_for_next_change_at():
    later = review("later", utc(2026, 2, 1, 10))
    assert evaluate(FIRST_FOUR, None, SILVER_AT).same_result(
        evaluate([*FIRST_FOUR, later], None, SILVER_AT)
    )


def test_category_averages_are_rounded_means_over_counted_reviews():
    scores = {
        "communication": 5,
        "friendliness": 4,
        "professionalism": 3,
        "area_knowledge": 2,
        "overall": 1,
    }
    history = [
        review("a", utc(2026, 1, 5), GOOD),
        review("b", utc(2026, 1, 6), scores),
        review("c", utc(2026, 1, 7), GOOD),
    ]
    rating = evaluate(history, None, utc(2026, 2, 1))
    assert rating.category_averages == {
        "communication": 4.33,
        "friendliness": 4.0,
        "professionalism": 3.67,
        "area_knowledge": 3.33,
        "overall": 3.0,
    }


def test_the_explanation_lists_the_counted_review_ids_and_the_periods_with_reasons():
    history = [*FIRST_FOUR, review("neg", utc(2026, 1, 20), BAD)]
    rating = evaluate(history, None, utc(2026, 2, 1))
    stars, gold = rating.windows
    assert (stars.name, gold.name) == ("stars_3m", "gold_6m")
    assert stars.review_ids == ("a0", "a1", "a2", "a3")
    assert (stars.start, stars.end) == (utc(2025, 11, 1), utc(2026, 2, 1))
    assert gold.start == utc(2025, 8, 1)
    (period,) = rating.periods
    assert period.status is Status.SILVER
    assert period.reason == "4 positive reviews in the 3 months up to 2026-01-26T10:00:00Z"


def test_same_result_ignores_the_instant_and_the_windows_only():
    first = evaluate(FIRST_FOUR, None, utc(2026, 2, 1))
    assert first.same_result(evaluate(FIRST_FOUR, None, utc(2026, 2, 2)))
    assert not first.same_result(evaluate(FIRST_FOUR[:3], None, utc(2026, 2, 1)))
    assert not first.same_result(replace(first, policy_version="other"))


def test_naive_instants_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate([], None, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        ReviewFact("x", datetime(2026, 1, 1), GOOD)


def test_a_policy_version_with_its_own_silver_window_explains_that_window_too():
    policy = Policy(version="test", silver_window_months=2)
    rating = evaluate(FIRST_FOUR, None, utc(2026, 2, 1), policy)
    assert rating.policy_version == "test"
    assert [window.name for window in rating.windows] == ["stars_3m", "silver_2m", "gold_6m"]
    assert rating.status is Status.SILVER


def test_a_policy_with_a_zero_month_window_is_refused():
    with pytest.raises(ValueError, match="at least one month"):
        Policy(stars_window_months=0)
