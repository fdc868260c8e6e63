"""Calendar-month arithmetic for the scoring windows (docs/design.md §1.5: 31 May - 3 months = 28 Feb).

A window of m months as of t is the half-open interval (add_months(t, -m), t]. Because the day is
clamped to the month's end, add_months(t, -m) is not monotone in t: on 29, 30 and 31 May the lower
bound of a 3-month window falls back to 28 Feb 00:00 at every midnight. A review submitted on the
last day of a month (not at midnight) therefore leaves its window and re-enters it for part of the
days that have no counterpart in its month; `window_changes` lists every such instant exactly.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache

_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def days_in_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month - 1]


def _shift(year: int, month: int, n: int) -> tuple[int, int]:
    shifted_year, month_index = divmod(year * 12 + month - 1 + n, 12)
    return shifted_year, month_index + 1


def add_months(t: datetime, n: int) -> datetime:
    """`t` moved by n calendar months (n may be negative), the day clamped to the month's end;
    time of day and tzinfo are kept."""
    year, month = _shift(t.year, t.month, n)
    last = days_in_month(year, month)
    return t.replace(year=year, month=month, day=t.day if t.day <= last else last)


@lru_cache(maxsize=16_384)  # a review's changes, asked for again at every re-rating of its agent
def window_changes(submitted_at: datetime, months: int) -> tuple[datetime, ...]:
    """Every instant at which a review's membership in the m-month window flips, in order:
    it enters at `submitted_at`, leaves, then possibly re-enters and leaves again (see the module
    docstring). Membership at t = an odd number of these instants are <= t."""
    s = submitted_at
    own_last = days_in_month(s.year, s.month)
    year, month = _shift(s.year, s.month, months)
    target_last = days_in_month(year, month)
    changes = [s]
    if s.day <= target_last:
        changes.append(s.replace(year=year, month=month))
    else:
        # No day s.day in the target month: the lower bound jumps past s at the next month's start.
        next_year, next_month = _shift(year, month, 1)
        changes.append(_midnight(s, next_year, next_month, 1))
    if s.day == own_last and target_last > own_last and not _at_midnight(s):
        for day in range(own_last + 1, target_last + 1):
            changes.append(_midnight(s, year, month, day))
            changes.append(s.replace(year=year, month=month, day=day))
    return tuple(changes)


def can_reenter(submitted_at: datetime, months: int) -> bool:
    """Whether the review comes back into its window after first leaving it (cheap pre-check)."""
    s = submitted_at
    if s.day < 28 or _at_midnight(s) or s.day != days_in_month(s.year, s.month):
        return False
    year, month = _shift(s.year, s.month, months)
    return days_in_month(year, month) > s.day


@lru_cache(maxsize=16_384)  # once an agent, not once a rating
def membership_anniversary(member_since: date, months: int) -> datetime:
    """Midnight UTC of member_since + months (clamped like `add_months`)."""
    year, month = _shift(member_since.year, member_since.month, months)
    day = min(member_since.day, days_in_month(year, month))
    return datetime(year, month, day, tzinfo=UTC)


def month_start(t: datetime, n: int = 0) -> datetime:
    """Midnight of the first day of t's month moved by n months, in t's tzinfo."""
    year, month = _shift(t.year, t.month, n)
    return _midnight(t, year, month, 1)


def _midnight(t: datetime, year: int, month: int, day: int) -> datetime:
    return t.replace(year=year, month=month, day=day, hour=0, minute=0, second=0, microsecond=0)


def _at_midnight(t: datetime) -> bool:
    return t.hour == 0 and t.minute == 0 and t.second == 0 and t.microsecond == 0
