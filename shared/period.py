"""The period an agent's funnel covers (docs/design.md 1.10): the invitations and reviews
services each answer their part of it, and the portal joins them, so both read it alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Query

from shared.errors import DomainError

DEFAULT_SPAN = timedelta(days=90)
MAX_SPAN = timedelta(days=3 * 366)


class PeriodError(DomainError):
    """A period the routes refuse (422, code `bad_period`)."""

    def __init__(self, message: str) -> None:
        super().__init__("bad_period", message)


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
        if instant is None:
            continue
        if instant.utcoffset() is None:
            raise PeriodError("give instants with a time zone, e.g. 2026-01-01T00:00:00Z")
        try:
            instant.astimezone(UTC)  # the database holds UTC: 9999-12-31T23:59-14:00 is not
        except OverflowError:
            raise PeriodError("the period reaches past the calendar") from None
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


@dataclass(frozen=True)
class PeriodAsked:
    """The `from` and `to` of a funnel route's query, resolved against the service's clock."""

    start: datetime | None
    end: datetime | None

    def at(self, now: datetime) -> Period:
        return period(self.start, self.end, now)


def _period_asked(
    start: Annotated[
        datetime | None,
        Query(alias="from", description="Start of the period (RFC 3339, inclusive)."),
    ] = None,
    end: Annotated[
        datetime | None,
        Query(alias="to", description="End of the period (RFC 3339, exclusive); default now."),
    ] = None,
) -> PeriodAsked:
    return PeriodAsked(start, end)


PeriodQuery = Annotated[PeriodAsked, Depends(_period_asked)]
"""A route's `from`/`to` query parameters; `.at(uow.now)` raises `PeriodError`, which
`shared.http.domain_problems` answers with 422 `bad_period`."""
