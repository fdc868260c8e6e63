"""The scoring policy (docs/design.md §1.5): one pure, deterministic function of
(review history, membership, instant) → `Rating`.

Decisions, by the lead unless marked (ours):
- A window of m months as of t is (add_months(t, -m), t] on `submitted_at`, calendar months with
  the day clamped (months.py). The caller passes only counted reviews; a positive review has
  every category >= `positive_threshold`, always recomputed from the scores.
- Stars: the highest star level whose minimum is <= the positives in the 3-month window, else 0.
- Status is walked forward from none through `instant`, checked at every instant where it could
  change, in time order. At one instant: (1) the current period ends (`end == t`): gold stays gold
  for a new 6-month period with >= 8 positives in (start, end], else silver for 3 months; silver
  stays silver for 3 months with >= 4 positives in (start, end], else none; (2) none → silver
  with >= 4 positives in the 3-month window as of t; (3) silver → gold with >= 8 positives in the
  6-month window as of t and membership anniversary <= t (unknown membership: never gold).
  The steps cascade at one instant (none → silver → gold).
- (ours) The instants checked are the positive reviews' `submitted_at`, period ends, the
  anniversary and the midnights at which a positive review re-enters a window (months.py):
  between them no count can rise, so no transition can become due. Negative reviews never move
  the status, so their instants are skipped.
- (ours) A period that a cascade replaces at the instant it started (zero length) is dropped
  from the history, so gold → silver → gold at a gold period's end reads as gold renewed (the
  window can be longer than the period after clamping). A period superseded early (silver →
  gold) ends at the transition instant; `periods` are therefore contiguous. A none period has
  `end` None while current, and ends when silver starts again. The initial none (before any
  status) is not a period: `status_since` is None then.
- `status_since` is the start of the current run of one status: a renewed period does not move
  it. `next_review_at` is the end of the current silver/gold period.
- `next_change_at` is exact: the earliest instant after `as_of` at which, with no new reviews,
  some output `same_result` compares changes (a positive review entering, leaving or re-entering a
  window, a future review being submitted, the period end, the anniversary when it makes gold).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from operator import attrgetter

from services.scoring.domain.months import (
    add_months,
    can_reenter,
    membership_anniversary,
    month_start,
    window_changes,
)
from shared.contracts.base import format_rfc3339
from shared.contracts.ratings import Status
from shared.contracts.reviews import CATEGORIES, POSITIVE_THRESHOLD, is_positive


@dataclass(frozen=True)
class ReviewFact:
    """What the policy needs of one counted review."""

    review_id: str
    submitted_at: datetime
    scores: Mapping[str, int]

    def __post_init__(self) -> None:
        # Calendar months are taken in UTC; a naive instant would silently mean local time.
        if self.submitted_at.tzinfo is None:
            raise ValueError("submitted_at must be timezone-aware")
        if self.submitted_at.tzinfo is not UTC:
            object.__setattr__(self, "submitted_at", self.submitted_at.astimezone(UTC))


@dataclass(frozen=True)
class Policy:
    """The versioned parameters; a new version plus a replay re-rates every agent."""

    version: str = "2026-11.1"
    positive_threshold: int = POSITIVE_THRESHOLD
    star_thresholds: tuple[tuple[int, int], ...] = ((2, 1), (4, 2), (5, 3), (7, 4), (8, 5))
    """(minimum positives in the stars window, stars)."""
    stars_window_months: int = 3
    silver_min_positive: int = 4
    silver_window_months: int = 3
    silver_period_months: int = 3
    gold_min_positive: int = 8
    gold_window_months: int = 6
    gold_period_months: int = 6
    gold_min_membership_months: int = 6

    def __post_init__(self) -> None:
        months = (
            self.stars_window_months,
            self.silver_window_months,
            self.silver_period_months,
            self.gold_window_months,
            self.gold_period_months,
        )
        # A zero-month window is empty and a zero-month period would never end.
        if min(months) < 1 or self.gold_min_membership_months < 0:
            raise ValueError("windows and periods must be at least one month")

    def is_positive(self, scores: Mapping[str, int]) -> bool:
        return is_positive(scores, self.positive_threshold)

    def stars_for(self, positives: int) -> int:
        stars = 0
        for minimum, level in self.star_thresholds:
            if positives >= minimum and level > stars:
                stars = level
        return stars


DEFAULT_POLICY = Policy()

_CHRONOLOGICAL = attrgetter("submitted_at", "review_id")
"""Input order must not matter: ties on submitted_at are broken by id."""


@dataclass(frozen=True)
class StatusPeriod:
    """One stretch of a status; `reason` says in words why it started."""

    status: Status
    start: datetime
    end: datetime | None
    reason: str


@dataclass(frozen=True)
class WindowCount:
    """The positive reviews a window counted, so an agent can see why."""

    name: str
    start: datetime
    end: datetime
    review_ids: tuple[str, ...]


@dataclass(frozen=True)
class Rating:
    """An agent's rating as of one instant, with its explanation."""

    policy_version: str
    as_of: datetime
    stars: int
    status: Status
    status_since: datetime | None
    next_review_at: datetime | None
    positive_reviews_3m: int
    positive_reviews_6m: int
    reviews_total: int
    category_averages: dict[str, float]
    next_change_at: datetime | None
    windows: tuple[WindowCount, ...]
    periods: tuple[StatusPeriod, ...]

    def same_result(self, other: Rating) -> bool:
        """Whether publishing `other` after `self` would tell anyone anything new."""
        return self._result() == other._result()

    def _result(self) -> tuple[object, ...]:
        return (
            self.policy_version,
            self.stars,
            self.status,
            self.status_since,
            self.next_review_at,
            self.positive_reviews_3m,
            self.positive_reviews_6m,
            self.reviews_total,
            self.category_averages,
            self.periods,
        )


@dataclass
class _Open:
    """A period while the walk may still truncate it."""

    status: Status
    start: datetime
    end: datetime | None
    reason: str = field(compare=False)


@dataclass(frozen=True)
class History:
    """What the policy reads of an agent's reviews as of one instant: the positive reviews
    counted by then, in order, and totals over every counted review. The consumer has
    PostgreSQL build it (one row an agent instead of one a review, `ScoringRepository.histories`);
    `summarize` builds the same from review facts, and a test holds the two to each other."""

    positive_times: tuple[datetime, ...]
    positive_ids: tuple[str, ...]
    reviews_total: int
    score_sums: tuple[int, ...]
    """Per category, in `CATEGORIES` order."""
    first_future: datetime | None
    """The earliest review submitted after the instant: the rating changes then."""


NO_HISTORY = History((), (), 0, (0,) * len(CATEGORIES), None)


def summarize(reviews: Iterable[ReviewFact], instant: datetime, policy: Policy) -> History:
    instant = _utc(instant)
    ordered = sorted(reviews, key=_CHRONOLOGICAL)
    counted = [review for review in ordered if review.submitted_at <= instant]
    first_future = ordered[len(counted)].submitted_at if len(counted) < len(ordered) else None
    rows = [tuple(map(review.scores.__getitem__, CATEGORIES)) for review in counted]
    threshold = policy.positive_threshold
    positive = [review for review, row in zip(counted, rows, strict=True) if min(row) >= threshold]
    return History(
        positive_times=tuple(review.submitted_at for review in positive),
        positive_ids=tuple(review.review_id for review in positive),
        reviews_total=len(rows),
        score_sums=tuple(map(sum, zip(*rows, strict=True))) if rows else NO_HISTORY.score_sums,
        first_future=first_future,
    )


def evaluate(
    reviews: Iterable[ReviewFact],
    member_since: date | None,
    instant: datetime,
    policy: Policy = DEFAULT_POLICY,
) -> Rating:
    """The rating as of `instant` from the counted reviews, recomputed from scratch."""
    return rate(summarize(reviews, instant, policy), member_since, instant, policy)


def rate(
    history: History,
    member_since: date | None,
    instant: datetime,
    policy: Policy = DEFAULT_POLICY,
) -> Rating:
    """The rating as of `instant` from the history as of `instant`, recomputed from scratch."""
    instant = _utc(instant)
    times = list(history.positive_times)
    ids = history.positive_ids
    anniversary = (
        membership_anniversary(member_since, policy.gold_min_membership_months)
        if member_since is not None
        else None
    )

    walk = _StatusWalk(times, anniversary, policy)
    if may_reach_silver(times, policy):
        walk.run_through(instant)
    periods = tuple(StatusPeriod(p.status, p.start, p.end, p.reason) for p in walk.periods)
    status = walk.status

    window_months = {
        policy.stars_window_months,
        policy.silver_window_months,
        policy.gold_window_months,
    }
    starts = {months: _months_before(instant, months) for months in window_months}
    stars_window = _window("stars", policy.stars_window_months, starts, ids, times, instant)
    gold_window = _window("gold", policy.gold_window_months, starts, ids, times, instant)
    windows = [stars_window]
    if policy.silver_window_months != policy.stars_window_months:
        windows.append(_window("silver", policy.silver_window_months, starts, ids, times, instant))
    windows.append(gold_window)

    candidates: list[datetime] = []
    if history.first_future is not None:
        candidates.append(history.first_future)
    if walk.period_end is not None:
        candidates.append(walk.period_end)
    for months, start in starts.items():
        flip = _next_window_change(times, start, instant, months)
        if flip is not None:
            candidates.append(flip)
    if (
        status is Status.SILVER
        and anniversary is not None
        and anniversary > instant
        and len(gold_window.review_ids) >= policy.gold_min_positive
    ):
        candidates.append(anniversary)

    return Rating(
        policy_version=policy.version,
        as_of=instant,
        stars=policy.stars_for(len(stars_window.review_ids)),
        status=status,
        status_since=_status_since(periods),
        next_review_at=walk.period_end,
        positive_reviews_3m=len(stars_window.review_ids),
        positive_reviews_6m=len(gold_window.review_ids),
        reviews_total=history.reviews_total,
        category_averages=_averages(history.score_sums, history.reviews_total),
        next_change_at=min(candidates, default=None),
        windows=tuple(windows),
        periods=periods,
    )


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    return instant if instant.tzinfo is UTC else instant.astimezone(UTC)


def may_reach_silver(times: Sequence[datetime], policy: Policy) -> bool:
    """Whether any silver window can hold `silver_min_positive` of the sorted positive `times`.
    When none can, the walk never leaves NONE (gold starts only from silver), so most agents
    skip it. Exact: no window of m months, day clamping included, is longer than 31·m + 3 days."""
    need = policy.silver_min_positive
    if need < 2:
        return bool(times) or need < 1
    if len(times) < need:
        return False
    longest = timedelta(days=31 * policy.silver_window_months + 3)
    return any(
        later - earlier <= longest for earlier, later in zip(times, times[need - 1 :], strict=False)
    )


class _StatusWalk:
    """The status machine over the sorted positive `times`, one checked instant at a time."""

    def __init__(self, times: list[datetime], anniversary: datetime | None, policy: Policy) -> None:
        self.times = times
        self.anniversary = anniversary
        self.policy = policy
        self.status = Status.NONE
        self.period_start: datetime | None = None
        self.period_end: datetime | None = None
        self.periods: list[_Open] = []

    def run_through(self, instant: datetime) -> None:
        checks = self._checked_instants(instant)
        index = 0
        while True:
            t = checks[index] if index < len(checks) else None
            if self.period_end is not None and (t is None or self.period_end <= t):
                t = self.period_end
            if t is None or t > instant:
                return
            while index < len(checks) and checks[index] == t:
                index += 1
            self._step(t)

    def _checked_instants(self, instant: datetime) -> list[datetime]:
        policy = self.policy
        extra = []
        if self.anniversary is not None and self.anniversary <= instant:
            extra.append(self.anniversary)
        for months in {policy.silver_window_months, policy.gold_window_months}:
            for s in self.times:
                if s.day >= 28 and can_reenter(s, months):
                    # After entering, changes alternate leave/re-enter; only re-entries raise a count.
                    extra.extend(t for t in window_changes(s, months)[2::2] if t <= instant)
        # `times` is sorted already; repeated instants are skipped by the walk.
        return sorted([*self.times, *extra]) if extra else self.times

    def _positives_between(self, start: datetime, end: datetime) -> int:
        return bisect_right(self.times, end) - bisect_right(self.times, start)

    def _step(self, t: datetime) -> None:
        policy = self.policy
        if self.period_end == t and self.period_start is not None:
            start = self.period_start
            span = f"({_iso(start)}, {_iso(t)}]"
            n = self._positives_between(start, t)
            if self.status is Status.GOLD:
                if n >= policy.gold_min_positive:
                    self._begin(
                        Status.GOLD, t, f"gold kept: {n} positive reviews in the gold period {span}"
                    )
                else:
                    self._begin(
                        Status.SILVER,
                        t,
                        f"gold lost: {n} positive reviews in the gold period {span}, fewer than {policy.gold_min_positive}",
                    )
            elif n >= policy.silver_min_positive:
                self._begin(
                    Status.SILVER,
                    t,
                    f"silver kept: {n} positive reviews in the silver period {span}",
                )
            else:
                self._begin(
                    Status.NONE,
                    t,
                    f"silver lost: {n} positive reviews in the silver period {span}, fewer than {policy.silver_min_positive}",
                )
        # Counting all positives so far first spares the calendar arithmetic on most instants.
        so_far = bisect_right(self.times, t)
        if self.status is Status.NONE and so_far >= policy.silver_min_positive:
            months = policy.silver_window_months
            n = self._positives_between(add_months(t, -months), t)
            if n >= policy.silver_min_positive:
                self._begin(
                    Status.SILVER, t, f"{n} positive reviews in the {months} months up to {_iso(t)}"
                )
        if (
            self.status is Status.SILVER
            and so_far >= policy.gold_min_positive
            and self.anniversary is not None
            and self.anniversary <= t
        ):
            months = policy.gold_window_months
            n = self._positives_between(add_months(t, -months), t)
            if n >= policy.gold_min_positive:
                self._begin(
                    Status.GOLD,
                    t,
                    f"{n} positive reviews in the {months} months up to {_iso(t)}, membership of {policy.gold_min_membership_months} months reached {_iso(self.anniversary)}",
                )

    def _begin(self, status: Status, t: datetime, reason: str) -> None:
        periods = self.periods
        if periods and periods[-1].start == t:
            periods.pop()
        if periods:
            periods[-1].end = t
        months = {
            Status.GOLD: self.policy.gold_period_months,
            Status.SILVER: self.policy.silver_period_months,
        }.get(status)
        end = add_months(t, months) if months is not None else None
        periods.append(_Open(status, t, end, reason))
        self.status = status
        self.period_start = t if end is not None else None
        self.period_end = end


def _window(
    rule: str,
    months: int,
    starts: dict[int, datetime],
    ids: tuple[str, ...],
    times: list[datetime],
    t: datetime,
) -> WindowCount:
    start = starts[months]
    return WindowCount(
        f"{rule}_{months}m", start, t, ids[bisect_right(times, start) : bisect_right(times, t)]
    )


def _next_window_change(
    times: list[datetime], start: datetime, t: datetime, months: int
) -> datetime | None:
    """The first instant after t at which a positive review at or before t leaves or re-enters the
    window (start, t] (future reviews enter at their own `submitted_at`, handled by the caller)."""
    inside_from = bisect_right(times, start)
    inside_to = bisect_right(times, t)
    found: list[datetime] = []
    if inside_from < inside_to:
        # Leaving is monotone in submitted_at, so the oldest review inside leaves first.
        found.append(_first_after(window_changes(times[inside_from], months), t))
    # Reviews from before the month `months` back have every change before t's month.
    earliest = bisect_left(times, _month_start_before(t, months)) if inside_from else 0
    for s in times[earliest:inside_from]:
        if s.day >= 28 and can_reenter(s, months):
            changes = window_changes(s, months)
            if changes[-1] > t:
                found.append(_first_after(changes, t))
    return min(found, default=None)


@lru_cache(maxsize=64)
def _months_before(instant: datetime, months: int) -> datetime:
    """Window starts of the instant a batch rates its agents at: the same for every agent."""
    return add_months(instant, -months)


@lru_cache(maxsize=64)
def _month_start_before(instant: datetime, months: int) -> datetime:
    return month_start(instant, -months)


def _first_after(changes: tuple[datetime, ...], t: datetime) -> datetime:
    return changes[bisect_right(changes, t)]


def _status_since(periods: tuple[StatusPeriod, ...]) -> datetime | None:
    if not periods:
        return None
    index = len(periods) - 1
    while index > 0 and periods[index - 1].status is periods[-1].status:
        index -= 1
    return periods[index].start


def _averages(sums: tuple[int, ...], count: int) -> dict[str, float]:
    if not count:
        return {}
    return {
        category: round(total / count, 2) for category, total in zip(CATEGORIES, sums, strict=True)
    }


def _iso(t: datetime) -> str:
    return format_rfc3339(t)
