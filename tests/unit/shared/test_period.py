"""The funnel's period: half-open, defaulting to the last 90 days, refused when it makes no
sense."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.period import Period, PeriodError, period

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_by_default_the_last_90_days_up_to_now() -> None:
    assert period(None, None, NOW) == Period(NOW - timedelta(days=90), NOW)


def test_a_start_alone_runs_to_now_and_an_end_alone_looks_back_90_days() -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    assert period(start, None, NOW) == Period(start, NOW)
    assert period(None, start, NOW) == Period(start - timedelta(days=90), start)


def test_the_period_is_half_open() -> None:
    p = period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC), NOW)
    assert datetime(2026, 1, 1, tzinfo=UTC) in p
    assert datetime(2026, 2, 1, tzinfo=UTC) not in p
    assert datetime(2026, 1, 31, 23, 59, tzinfo=UTC) in p


def test_other_time_zones_are_the_same_instants() -> None:
    houston = timezone(timedelta(hours=-6))
    p = period(datetime(2026, 1, 1, tzinfo=houston), None, NOW)
    assert datetime(2026, 1, 1, 6, 0, tzinfo=UTC) in p


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (datetime(2026, 1, 1), None, "time zone"),
        (None, datetime(2026, 1, 1), "time zone"),
        (NOW, NOW, "before"),
        (NOW, NOW - timedelta(seconds=1), "before"),
        (NOW - timedelta(days=3 * 366 + 1), NOW, "three years"),
        (None, datetime(1, 1, 1, tzinfo=UTC), "calendar"),
        (datetime(1, 1, 1, tzinfo=UTC), None, "three years"),
        (datetime(9999, 12, 31, tzinfo=UTC), None, "before"),
        (None, datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-14))), "calendar"),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), NOW, "calendar"),
    ],
)
def test_periods_that_make_no_sense_are_refused(
    start: datetime | None, end: datetime | None, message: str
) -> None:
    with pytest.raises(PeriodError, match=message):
        period(start, end, NOW)
