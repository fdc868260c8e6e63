"""A new review's decision record says who submitted it and why the rules sent it where they did."""

from __future__ import annotations

from services.reviews.domain.model import (
    HELD,
    SYSTEM,
    TRUST_SIGNALS_ACTION,
    DecisionRecord,
    ReviewState,
    Step,
    routing_reason,
    submission_decisions,
)
from services.reviews.domain.moderation import Flag, Route, Routing

CLIENT = DecisionRecord("client", "client", "submitted", "channel email")


def test_a_flagged_review_names_the_content_checks_that_flagged_it() -> None:
    routing = Routing(Route.MODERATOR, (Flag.LINK, Flag.LENGTH), positive=True)
    assert routing_reason(routing, signalled=True) == "content checks: link, length"


def test_a_clean_review_held_by_trust_signals_says_it_is_held_for_a_moderator() -> None:
    assert routing_reason(Routing(Route.MODERATOR, (), positive=True), signalled=True) == HELD


def test_a_clean_review_is_routed_by_its_scores() -> None:
    positive = Routing(Route.PUBLISH, (), positive=True)
    negative = Routing(Route.AWAIT_RESPONSE, (), positive=False)
    assert routing_reason(positive, signalled=False) == "positive and clean"
    assert routing_reason(negative, signalled=False) == "not positive: the agent answers first"


def test_trust_signals_are_recorded_between_the_submission_and_the_route() -> None:
    routing = Routing(Route.MODERATOR, (), positive=True)
    record = submission_decisions(
        CLIENT, ["agent_address", "burst"], routing, Step(ReviewState.MODERATION)
    )
    assert record == [
        CLIENT,
        DecisionRecord(SYSTEM, SYSTEM, TRUST_SIGNALS_ACTION, "agent_address, burst"),
        DecisionRecord(SYSTEM, SYSTEM, "to_moderation", HELD),
    ]


def test_without_signals_the_record_is_the_submission_and_the_route() -> None:
    routing = Routing(Route.PUBLISH, (), positive=True)
    record = submission_decisions(CLIENT, [], routing, Step(ReviewState.PUBLISHED, publish=True))
    assert record == [CLIENT, DecisionRecord(SYSTEM, SYSTEM, "to_published", "positive and clean")]
