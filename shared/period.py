"""The period an agent's funnel covers (docs/design.md 1.10): the invitations and reviews
services each answer their part of it, and the portal joins them, so both read it alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_SPAN = timedelta(days=90)
MAX_SPAN = timedelta(days=3 * 366)


class PeriodError(ValueError):
    """A period the routes refuse (422)."""


@dataclass(frozen=True)
class Period:
    """Half-open, [start, end): an instant on the boundary belongs to the later period."""

    start: datetime
    end: datetime

    def __contains__(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


def period(start: datetime | None, end: datetime | None, now: datetime) -> Period:
    """`end` defaults to now and `start` to 90 days before `end`; both must carry a time zone,
    `start` come before `end`, and the span be at most three years."""
    for instant in (start, end):
        if instant is not None and instant.utcoffset() is None:
            raise PeriodError("give instants with a time zone, e.g. 2026-01-01T00:00:00Z")
    end = end or now
    try:
        start = start or end - DEFAULT_SPAN
    except OverflowError:
        raise PeriodError("the period starts before the calendar does") from None
    if start >= end:
        raise PeriodError("`from` must come before `to`")
    if end - start > MAX_SPAN:
        raise PeriodError("a period is at most three years long")
    return Period(start, end)
