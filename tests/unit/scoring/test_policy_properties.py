"""Properties of the scoring policy over random multi-year histories, against brute force."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.domain import policy as policy_module
from services.scoring.domain.months import add_months, days_in_month, membership_anniversary
from services.scoring.domain.policy import DEFAULT_POLICY, Rating, ReviewFact, evaluate
from shared.contracts.ratings import Status
from shared.contracts.reviews import CATEGORIES

MICROSECOND = timedelta(microseconds=1)
START = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 3 * 365
POLICY = DEFAULT_POLICY
PROPERTIES = settings(max_examples=200, deadline=None)


def _instant(span_days: int, code: int) -> datetime:
    """Anywhere in the span, or (one time in four each) a midnight or a month's last day, where
    calendar clamping bites. One integer per instant keeps generating 60 reviews cheap."""
    kind, seconds = divmod(code, span_days * 86400)
    at = START + timedelta(seconds=seconds)
    if kind == 2:
        return at.replace(hour=0, minute=0, second=0)
    if kind == 3:
        return at.replace(day=days_in_month(at.year, at.month))
    return at


def _scores(code: int, positive: bool) -> dict[str, int]:
    digits = [(code // 5**i) % 5 for i in range(len(CATEGORIES))]
    values = [3 + d % 3 if positive else 1 + d for d in digits]
    return dict(zip(CATEGORIES, values, strict=True))


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[ReviewFact], date | None, datetime]:
    """0-60 reviews over up to 3 years, two in three forced positive, sometimes packed into a
    span short enough to reach gold; a membership often old enough for gold; an instant in or
    shortly after the span."""
    span = draw(st.sampled_from([120, 365, DAYS]))
    # Drawing 60 tuples one by one is slow and Hypothesis keeps lists short, so the size is drawn
    # and the reviews come from a seeded generator (shrinking then works on size and seed).
    size = draw(st.integers(0, 60))
    rng = random.Random(draw(st.integers(0, 2**32)))
    reviews = [
        ReviewFact(
            f"r{i:02d}",
            _instant(span, rng.randrange(4 * span * 86400)),
            _scores(rng.randrange(5 ** len(CATEGORIES)), rng.random() < 2 / 3),
        )
        for i in range(size)
    ]
    member_since = draw(
        st.one_of(
            st.none(),
            st.dates(date(2023, 1, 1), date(2023, 8, 31)),
            st.dates(date(2023, 1, 1), date(2026, 12, 31)),
        )
    )
    instant = _instant(span + 240, rng.randrange(4 * (span + 240) * 86400))
    return reviews, member_since, instant


def positives_in_window(
    reviews: list[ReviewFact], t: datetime, months: int
) -> list[tuple[datetime, str]]:
    lower = add_months(t, -months)
    return sorted(
        (r.submitted_at, r.review_id)
        for r in reviews
        if lower < r.submitted_at <= t and min(r.scores.values()) >= POLICY.positive_threshold
    )


def reference_status(
    reviews: list[ReviewFact], member_since: date | None, instant: datetime
) -> tuple[Status, datetime | None, datetime | None]:
    """The status machine checked at every review instant and every midnight (the only instants
    where a window's lower bound can move back), counting by linear scans."""
    times = sorted(r.submitted_at for r in reviews if r.submitted_at <= instant)
    if not times:
        return Status.NONE, None, None
    anniversary = membership_anniversary(member_since, 6) if member_since else None
    checks = set(times)
    day = times[0].replace(hour=0, minute=0, second=0, microsecond=0)
    while day <= instant:
        checks.add(day)
        day += timedelta(days=1)
    if anniversary is not None and anniversary <= instant:
        checks.add(anniversary)
    pending = sorted(checks, reverse=True)
    status, since, start, end = Status.NONE, None, None, None

    def count(lower: datetime, upper: datetime) -> int:
        return len(
            [r for r in reviews if lower < r.submitted_at <= upper and min(r.scores.values()) >= 3]
        )

    while pending or (end is not None and end <= instant):
        t = pending[-1] if pending else end
        if end is not None and t is not None and end < t:
            t = end
        assert t is not None
        if t > instant:
            break
        while pending and pending[-1] == t:
            pending.pop()
        before = status
        if end == t:
            assert start is not None
            n = count(start, t)
            if status is Status.GOLD:
                status, start, end = (
                    (Status.GOLD, t, add_months(t, 6))
                    if n >= 8
                    else (Status.SILVER, t, add_months(t, 3))
                )
            else:
                status, start, end = (
                    (Status.SILVER, t, add_months(t, 3)) if n >= 4 else (Status.NONE, None, None)
                )
        if status is Status.NONE and count(add_months(t, -3), t) >= 4:
            status, start, end = Status.SILVER, t, add_months(t, 3)
        if (
            status is Status.SILVER
            and anniversary is not None
            and anniversary <= t
            and count(add_months(t, -6), t) >= 8
        ):
            status, start, end = Status.GOLD, t, add_months(t, 6)
        if status is not before:
            since = t
    return status, since, end


@PROPERTIES
@given(case=cases(), seed=st.randoms(use_true_random=False))
def test_input_order_does_not_matter(case, seed):
    reviews, member_since, instant = case
    shuffled = reviews[:]
    seed.shuffle(shuffled)
    assert evaluate(shuffled, member_since, instant) == evaluate(reviews, member_since, instant)


@PROPERTIES
@given(case=cases())
def test_stars_and_window_counts_equal_a_brute_force_count(case):
    reviews, member_since, instant = case
    rating = evaluate(reviews, member_since, instant)
    three = positives_in_window(reviews, instant, 3)
    six = positives_in_window(reviews, instant, 6)
    assert rating.positive_reviews_3m == len(three)
    assert rating.positive_reviews_6m == len(six)
    assert rating.windows[0].review_ids == tuple(review_id for _, review_id in three)
    expected_stars = max((s for n, s in POLICY.star_thresholds if len(three) >= n), default=0)
    assert rating.stars == expected_stars
    assert rating.reviews_total == len([r for r in reviews if r.submitted_at <= instant])


@PROPERTIES
@given(case=cases())
def test_status_equals_a_brute_force_walk_over_every_midnight(case):
    reviews, member_since, instant = case
    rating = evaluate(reviews, member_since, instant)
    assert (rating.status, rating.status_since, rating.next_review_at) == reference_status(
        reviews, member_since, instant
    )


def _assert_unchanged_until_next_change(reviews, member_since, rating: Rating) -> None:
    change = rating.next_change_at
    t = rating.as_of
    if change is None:
        for later in (t + timedelta(days=400), t + timedelta(days=3000)):
            assert evaluate(reviews, member_since, later).same_result(rating)
        return
    assert change > t
    for u in (t + (change - t) / 2, change - MICROSECOND):
        if t < u < change:
            assert evaluate(reviews, member_since, u).same_result(rating)
    at_change = evaluate(reviews, member_since, change)
    assert at_change.next_change_at is None or at_change.next_change_at > change
    # The change is exact, never a spare wake-up: something a reader sees differs at it.
    assert not at_change.same_result(rating)


@PROPERTIES
@given(case=cases())
def test_nothing_changes_before_next_change_at_and_something_does_at_it(case):
    reviews, member_since, instant = case
    _assert_unchanged_until_next_change(
        reviews, member_since, evaluate(reviews, member_since, instant)
    )


@PROPERTIES
@given(case=cases())
def test_gold_never_starts_before_the_membership_anniversary(case):
    reviews, member_since, instant = case
    rating = evaluate(reviews, member_since, instant)
    for period in rating.periods:
        if period.status is Status.GOLD:
            assert member_since is not None
            assert membership_anniversary(member_since, 6) <= period.start
    if rating.status is Status.GOLD:
        assert member_since is not None
        assert rating.status_since is not None
        assert membership_anniversary(member_since, 6) <= rating.status_since


@PROPERTIES
@given(case=cases())
def test_reviews_after_the_instant_do_not_affect_the_rating(case):
    reviews, member_since, instant = case
    rating = evaluate(reviews, member_since, instant)
    past = [r for r in reviews if r.submitted_at <= instant]
    without_future = evaluate(past, member_since, instant)
    assert without_future.same_result(rating)
    assert without_future.windows == rating.windows


@PROPERTIES
@given(case=cases())
def test_periods_are_contiguous_ordered_and_end_in_the_current_status(case):
    reviews, member_since, instant = case
    rating = evaluate(reviews, member_since, instant)
    periods = rating.periods
    for previous, period in pairwise(periods):
        assert previous.end == period.start
        assert previous.start < period.start <= instant
    for period in periods:
        assert period.reason
        if period.status is Status.NONE:
            assert period is periods[-1] or period.end is not None
        else:
            assert period.end is not None and period.end > period.start
    if periods:
        assert periods[-1].status is rating.status
        assert periods[-1].end == rating.next_review_at
    else:
        assert (rating.status, rating.status_since) == (Status.NONE, None)


@PROPERTIES
@given(case=cases(), need=st.integers(0, 6), months=st.integers(1, 4))
def test_skipping_the_walk_when_no_window_can_reach_silver_changes_nothing(case, need, months):
    reviews, member_since, instant = case
    policy = replace(POLICY, silver_min_positive=need, silver_window_months=months)
    shortcut = evaluate(reviews, member_since, instant, policy)
    with patch.object(policy_module, "may_reach_silver", lambda times, policy: True):
        walked = evaluate(reviews, member_since, instant, policy)
    assert shortcut == walked
