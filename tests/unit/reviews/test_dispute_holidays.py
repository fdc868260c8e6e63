"""Public holidays are not business days for a dispute's answer deadline (PUBLIC_HOLIDAYS)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError
from starlette.requests import Request

from services.reviews.app import create_app
from services.reviews.domain.disputes import answer_due, is_business_day, open_dispute
from services.reviews.domain.model import ReviewState
from services.reviews.settings import ReviewsSettings
from shared.runtime import context_of

# December 2026: Thursday 24, Friday 25 (Christmas), Thursday 31; Friday 1 January 2027
CHRISTMAS, BOXING_DAY, NEW_YEAR = date(2026, 12, 25), date(2026, 12, 28), date(2027, 1, 1)
HOLIDAYS = frozenset({CHRISTMAS, BOXING_DAY, NEW_YEAR})


def at(year: int, month: int, day: int, hour: int = 15) -> datetime:
    return datetime(year, month, day, hour, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("opened", "holidays", "due"),
    [
        # no holidays given: weekdays only, as before
        (at(2026, 12, 24), frozenset(), at(2026, 12, 28)),
        # a holiday on Friday: Thursday -> Monday 28 is 1, Tuesday 29 is 2
        (at(2026, 12, 24), {CHRISTMAS}, at(2026, 12, 29)),
        # a holiday on Friday and the Monday after (the substitute day)
        (at(2026, 12, 24), {CHRISTMAS, BOXING_DAY}, at(2026, 12, 30)),
        # a holiday in the middle of the week: Tuesday -> Thursday, skipping Wednesday
        (at(2026, 11, 24), {date(2026, 11, 25)}, at(2026, 11, 27)),
        # across the year end: Thursday 31 Dec, New Year's Day on Friday -> Tuesday 5 Jan
        (at(2026, 12, 31), {NEW_YEAR}, at(2027, 1, 5)),
        (at(2026, 12, 30), {NEW_YEAR}, at(2027, 1, 4)),
        # opened on a holiday: counted from the start of the next business day
        (at(2026, 12, 25, 10), {CHRISTMAS}, at(2026, 12, 30, 0)),
        (at(2027, 1, 1, 9), {NEW_YEAR}, at(2027, 1, 6, 0)),
        # opened on a weekend before a holiday Monday: from Tuesday 00:00
        (at(2026, 12, 26, 12), {BOXING_DAY}, at(2026, 12, 31, 0)),
        # a holiday on a Saturday changes nothing: it was no business day anyway
        (at(2026, 12, 24), {date(2026, 12, 26)}, at(2026, 12, 28)),
        # a holiday after the deadline changes nothing
        (at(2026, 12, 21), {CHRISTMAS}, at(2026, 12, 23)),
        # the deadline's own day a holiday: it moves on to the next business day
        (at(2026, 12, 23), {CHRISTMAS}, at(2026, 12, 28)),
        # holidays of another year do not count in this one
        (at(2026, 12, 24), {date(2025, 12, 25)}, at(2026, 12, 28)),
    ],
)
def test_holidays_are_skipped_like_weekends(
    opened: datetime, holidays: frozenset[date], due: datetime
) -> None:
    assert answer_due(opened, 2, holidays) == due


def test_the_whole_christmas_week_off_with_five_business_days() -> None:
    week = {date(2026, 12, day) for day in (28, 29, 30, 31)} | {NEW_YEAR, CHRISTMAS}
    # Thursday 24 Dec: then Monday 4 to Friday 8 January are the five business days
    assert answer_due(at(2026, 12, 24), 5, week) == at(2027, 1, 8)


@pytest.mark.parametrize(
    ("day", "business"),
    [
        (at(2026, 12, 24), True),
        (at(2026, 12, 25), False),
        (at(2026, 12, 26), False),
        (at(2026, 12, 28), False),
        (at(2027, 1, 1), False),
        (at(2027, 1, 4), True),
    ],
)
def test_a_business_day_is_a_weekday_that_is_no_holiday(day: datetime, business: bool) -> None:
    assert is_business_day(day, HOLIDAYS) is business


def test_the_day_is_the_utc_calendar_day() -> None:
    # 23:30 UTC on Thursday 24 December is Thursday, though it is Friday further east
    assert is_business_day(at(2026, 12, 24, 23), {CHRISTMAS})
    assert answer_due(at(2026, 12, 24, 23), 1, {CHRISTMAS}) == at(2026, 12, 28, 23)


def test_an_opened_dispute_carries_the_deadline_with_the_holidays() -> None:
    dispute = open_dispute(
        dispute_id="D-1",
        review_id="R-1",
        agent_id="A-1",
        state=ReviewState.PUBLISHED,
        earlier=None,
        reason="Never my client.",
        now=at(2026, 12, 24),
        holidays={CHRISTMAS},
    )
    assert dispute.answer_due_at == at(2026, 12, 29)


def test_the_holidays_are_read_from_the_setting() -> None:
    settings = ReviewsSettings(environment="test", public_holidays=" 2026-12-25, 2027-01-01 ,")
    assert settings.holidays == frozenset({CHRISTMAS, NEW_YEAR})
    assert ReviewsSettings(environment="test").holidays == frozenset()


def test_a_holiday_that_is_no_date_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="PUBLIC_HOLIDAYS"):
        ReviewsSettings(environment="test", public_holidays="2026-12-25, Christmas")


async def test_the_reviews_app_gives_its_handlers_the_holidays_and_moderators() -> None:
    app = create_app(
        ReviewsSettings(
            environment="test",
            public_holidays="2026-12-25",
            moderator_emails="mods@ratings.example",
        )
    )
    context = await context_of(Request({"type": "http", "app": app}))
    assert context.holidays == frozenset({CHRISTMAS})
    assert context.moderator_emails == ("mods@ratings.example",)
