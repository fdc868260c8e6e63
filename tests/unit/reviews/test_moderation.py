"""Every branch of the automatic checks and the routing of a submitted review."""

from __future__ import annotations

import pytest

from services.reviews.domain.moderation import (
    AUTO_LENGTH_LIMIT,
    Flag,
    Route,
    content_flags,
    is_positive,
    route_after_approval,
    route_submission,
)

GOOD = {
    "communication": 5,
    "friendliness": 4,
    "professionalism": 5,
    "area_knowledge": 3,
    "overall": 4,
}


def scores(**changes: int) -> dict[str, int]:
    return {**GOOD, **changes}


@pytest.mark.parametrize(
    "text",
    [
        "Knew the area inside out and answered every call.",
        "Sold in 3 days for $450,000 — above asking, 2 offers.",
        "Call-backs within 24 hours, 7 days a week.",
        "Closing on 12/05/2026 went smoothly.",
        "Offer accepted 2026-11-20, keys 2026-12-01.",
        "Great with the shitzu-free listing? No: great with the Scunthorpe office.",
        "",
    ],
)
def test_clean_text_raises_no_flag(text: str) -> None:
    assert content_flags(text) == ()


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("What an idiot.", Flag.ABUSIVE_LANGUAGE),
        ("Total BULLSHIT from start to end", Flag.ABUSIVE_LANGUAGE),
        ("f.u.c.k nothing; he was a m0r0n", Flag.ABUSIVE_LANGUAGE),
        ("Call me on 713-555-0188 for details", Flag.PHONE_NUMBER),
        ("My number is +1 (713) 555 0188", Flag.PHONE_NUMBER),
        ("Reach me at 7135550188", Flag.PHONE_NUMBER),
        ("ring 555-0188 after six", Flag.PHONE_NUMBER),
        ("write to pat.doe@example.com", Flag.EMAIL_ADDRESS),
        ("write to pat (at) example.com", Flag.EMAIL_ADDRESS),
        ("see https://example.org/complaint", Flag.LINK),
        ("see www.bad-agent.net", Flag.LINK),
        ("read it on agentsucks.com", Flag.LINK),
        ("x" * (AUTO_LENGTH_LIMIT + 1), Flag.LENGTH),
    ],
)
def test_each_check_flags_what_it_is_for(text: str, flag: Flag) -> None:
    assert flag in content_flags(text)


def test_an_email_address_is_not_also_reported_as_a_link() -> None:
    assert content_flags("pat.doe@example.com") == (Flag.EMAIL_ADDRESS,)


def test_flags_come_in_a_stable_order_and_once() -> None:
    text = "idiot! call 713 555 0188 or mail a@b.com, see http://x.io, idiot"
    assert content_flags(text) == (
        Flag.ABUSIVE_LANGUAGE,
        Flag.PHONE_NUMBER,
        Flag.EMAIL_ADDRESS,
        Flag.LINK,
    )


def test_the_display_name_is_checked_too() -> None:
    routing = route_submission(GOOD, "Lovely agent", "call 713 555 0188")
    assert routing.route is Route.MODERATOR and routing.flags == (Flag.PHONE_NUMBER,)


def test_text_at_the_length_limit_is_still_clean() -> None:
    assert content_flags("y" * AUTO_LENGTH_LIMIT) == ()


@pytest.mark.parametrize(
    ("changes", "positive"),
    [
        ({}, True),
        ({"area_knowledge": 3, "overall": 3}, True),
        ({"overall": 2}, False),
        ({"communication": 1}, False),
        ({c: 3 for c in GOOD}, True),
    ],
)
def test_positive_means_every_category_at_least_three(
    changes: dict[str, int], positive: bool
) -> None:
    assert is_positive(scores(**changes)) is positive


def test_positive_and_clean_publishes_at_once() -> None:
    routing = route_submission(GOOD, "Great", None)
    assert (routing.route, routing.positive, routing.flags) == (Route.PUBLISH, True, ())


def test_negative_and_clean_waits_for_the_agent() -> None:
    routing = route_submission(scores(overall=2), "Slow to answer", None)
    assert (routing.route, routing.positive) == (Route.AWAIT_RESPONSE, False)


@pytest.mark.parametrize("overall", [2, 5])
def test_flagged_goes_to_a_moderator_whatever_the_scores(overall: int) -> None:
    routing = route_submission(scores(overall=overall), "see www.x.com", None)
    assert routing.route is Route.MODERATOR
    assert routing.positive is (overall >= 3)


def test_after_approval_the_scores_decide_who_speaks_first() -> None:
    assert route_after_approval(True) is Route.PUBLISH
    assert route_after_approval(False) is Route.AWAIT_RESPONSE
