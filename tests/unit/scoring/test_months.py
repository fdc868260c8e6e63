"""Calendar months for the scoring windows, checked against brute force."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.domain.months import (
    add_months,
    days_in_month,
    membership_anniversary,
    window_changes,
)

MICROSECOND = timedelta(microseconds=1)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def inside(submitted_at: datetime, t: datetime, months: int) -> bool:
    """The rule as written: the window as of t is (t - months, t]."""
    return add_months(t, -months) < submitted_at <= t


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (utc(2026, 5, 31, 10), -3, utc(2026, 2, 28, 10)),
        (utc(2028, 5, 31, 10), -3, utc(2028, 2, 29, 10)),
        (utc(2026, 1, 31), 1, utc(2026, 2, 28)),
        (utc(2028, 2, 29), 12, utc(2029, 2, 28)),
        (utc(2026, 12, 15), 1, utc(2027, 1, 15)),
        (utc(2026, 1, 15), -1, utc(2025, 12, 15)),
        (utc(2026, 3, 31, 23, 59, 59, 999999), -25, utc(2024, 2, 29, 23, 59, 59, 999999)),
        (utc(2026, 7, 4, 8), 0, utc(2026, 7, 4, 8)),
    ],
)
def test_add_months_moves_calendar_months_and_clamps_to_the_month_end(start, months, expected):
    assert add_months(start, months) == expected


def test_add_months_keeps_the_time_of_day_and_the_timezone():
    paris = timezone(timedelta(hours=1))
    moved = add_months(datetime(2026, 1, 31, 22, 15, tzinfo=paris), 1)
    assert moved == datetime(2026, 2, 28, 22, 15, tzinfo=paris)
    assert moved.tzinfo is paris


def test_february_has_29_days_in_leap_years_only():
    assert [days_in_month(year, 2) for year in (2024, 2025, 2100, 2000)] == [29, 28, 28, 29]


@pytest.mark.parametrize(
    ("submitted_at", "months", "leaves_at"),
    [
        (utc(2026, 1, 15, 10), 3, utc(2026, 4, 15, 10)),
        # 30 Nov + 3 months does not exist: on 28 Feb 10:00 the window still starts on 28 Nov.
        (utc(2025, 11, 30, 10), 3, utc(2026, 3, 1)),
        (utc(2025, 8, 31, 10), 6, utc(2026, 3, 1)),
        (utc(2028, 2, 29, 10), 12, utc(2029, 3, 1)),
        (utc(2026, 2, 28, 12), 3, utc(2026, 5, 28, 12)),
        (utc(2026, 3, 31), 1, utc(2026, 5, 1)),
    ],
)
def test_a_review_leaves_the_window_at_the_first_instant_it_is_no_longer_inside(
    submitted_at, months, leaves_at
):
    assert window_changes(submitted_at, months)[1] == leaves_at
    assert inside(submitted_at, leaves_at - MICROSECOND, months)
    assert not inside(submitted_at, leaves_at, months)


def test_a_review_on_a_short_months_last_day_comes_back_for_part_of_the_longer_months_days():
    # 29 May - 3 months clamps to 28 Feb 00:00 again, so the window reaches back past 12:00.
    changes = window_changes(utc(2026, 2, 28, 12), 3)
    assert changes == (
        utc(2026, 2, 28, 12),
        utc(2026, 5, 28, 12),
        utc(2026, 5, 29),
        utc(2026, 5, 29, 12),
        utc(2026, 5, 30),
        utc(2026, 5, 30, 12),
        utc(2026, 5, 31),
        utc(2026, 5, 31, 12),
    )
    assert inside(utc(2026, 2, 28, 12), utc(2026, 5, 30, 9), 3)
    assert not inside(utc(2026, 2, 28, 12), utc(2026, 5, 30, 13), 3)


def test_a_review_at_midnight_on_a_months_last_day_never_comes_back():
    assert window_changes(utc(2026, 2, 28), 3) == (utc(2026, 2, 28), utc(2026, 5, 28))


def test_the_membership_anniversary_is_midnight_utc_clamped_to_the_month_end():
    assert membership_anniversary(date(2025, 8, 31), 6) == utc(2026, 2, 28)
    assert membership_anniversary(date(2025, 8, 31), 6).tzinfo is UTC
    assert membership_anniversary(date(2026, 1, 10), 6) == utc(2026, 7, 10)


def inside_by_changes(changes: tuple[datetime, ...], t: datetime) -> bool:
    return sum(change <= t for change in changes) % 2 == 1


whole_hours = st.builds(
    lambda day, hour: utc(2023, 1, 1) + timedelta(days=day, hours=hour),
    st.integers(0, 6 * 366),
    st.integers(0, 23),
)
month_ends = st.builds(
    lambda year, month, hour: utc(year, month, days_in_month(year, month), hour),
    st.integers(2023, 2029),
    st.integers(1, 12),
    st.integers(0, 23),
)
window_months = st.sampled_from([1, 2, 3, 6, 12])


@settings(max_examples=50, deadline=None)
@given(submitted_at=st.one_of(whole_hours, month_ends), months=window_months)
def test_window_changes_match_an_hour_by_hour_scan_of_the_rule(submitted_at, months):
    changes = window_changes(submitted_at, months)
    assert list(changes) == sorted(set(changes))
    # With whole-hour submissions every change falls on a whole hour, so an hourly scan (and the
    # microsecond before each hour) sees all of them.
    t = submitted_at - timedelta(hours=1)
    end = add_months(submitted_at, months + 1) + timedelta(days=1)
    first_out = None
    while t <= end:
        for probe in (t - MICROSECOND, t):
            assert inside_by_changes(changes, probe) == inside(submitted_at, probe, months)
        if first_out is None and t >= submitted_at and not inside(submitted_at, t, months):
            first_out = t
        t += timedelta(hours=1)
    assert window_changes(submitted_at, months)[1] == first_out


@settings(max_examples=60, deadline=None)
@given(
    submitted_at=st.builds(
        lambda base, minute: base + timedelta(minutes=minute),
        st.one_of(whole_hours, month_ends),
        st.integers(0, 59),
    ),
    months=window_months,
)
def test_a_review_leaves_the_window_when_a_minute_scan_says(submitted_at, months):
    leaves = window_changes(submitted_at, months)[1]
    assert not inside(submitted_at, leaves, months)
    t = leaves - timedelta(days=2)
    while t < leaves:
        assert inside(submitted_at, t, months)
        t += timedelta(minutes=1)
    assert inside(submitted_at, leaves - MICROSECOND, months)
