"""The client's status page renders each state, escapes what people wrote, and offers the form
only for a rejected review not yet sent again (docs/design.md 1.10)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.reviews.api import CATEGORY_LABELS, PAGES, STATUS_LABELS, ClientReviewView
from services.reviews.domain.client_view import ClientStatus

SCORES = {c: 4 for c, _ in CATEGORY_LABELS}


def render(status: ClientStatus, *, may_resubmit: bool, reason: str | None = None) -> str:
    view = ClientReviewView(
        review_id="R-1",
        status=status,
        explanation="explained",
        reason=reason,
        may_resubmit=may_resubmit,
        agent_name="Jo <b>Agent</b>",
        submitted_at=datetime(2026, 11, 20, tzinfo=UTC),
        resubmitted_at=None,
        response_due_at=None,
        scores=SCORES,
        comment="<script>alert(1)</script>",
        display_name=None,
        agent_response=None,
    )
    values: dict[str, Any] = {c: "4" for c in SCORES} | {"comment": view.comment}
    return PAGES.get_template("status.html").render(
        view=view,
        token="R-1.mac",
        agent_name=view.agent_name,
        review_id=view.review_id,
        scores=view.scores,
        comment=view.comment,
        agent_response=None,
        categories=CATEGORY_LABELS,
        values=values,
        errors=[],
        saved=False,
        max_comment=5000,
        STATUS_LABELS=STATUS_LABELS,
    )


@pytest.mark.parametrize("status", list(ClientStatus))
def test_each_state_has_its_label_and_nothing_is_unescaped(status: ClientStatus) -> None:
    html = render(status, may_resubmit=False)
    assert STATUS_LABELS[status.value] in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>Agent</b>" not in html


def test_a_rejected_review_shows_the_reason_and_a_pre_filled_form() -> None:
    html = render(ClientStatus.REJECTED, may_resubmit=True, reason="No <i>phone</i> numbers.")
    assert "No &lt;i&gt;phone&lt;/i&gt; numbers." in html
    assert 'action="/review-status"' in html and 'value="R-1.mac"' in html
    assert html.count("checked>") == len(SCORES)  # each category's score is chosen again


def test_no_form_once_it_cannot_be_sent_again() -> None:
    html = render(ClientStatus.REJECTED, may_resubmit=False, reason="Final.")
    assert "<form" not in html and "Final." in html
