"""The lead lifecycle outside removal: completion by a closed transaction, contact history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.removals.domain.model import (
    Lead,
    LeadStatus,
    RemovalRejected,
    completes_lead,
    record_client_response,
)

ASSIGNED = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def lead(status: LeadStatus = LeadStatus.OPEN, responded: datetime | None = None) -> Lead:
    return Lead("L-1", "A-1", status, ASSIGNED, responded)


@pytest.mark.parametrize("status", [LeadStatus.OPEN, LeadStatus.REMOVAL_PENDING])
def test_a_closing_with_the_same_agent_after_assignment_completes_the_lead(
    status: LeadStatus,
) -> None:
    assert completes_lead(lead(status), agent_id="A-1", closed_at=ASSIGNED + timedelta(days=40))


def test_a_closing_with_another_agent_does_not_complete_the_lead() -> None:
    assert not completes_lead(lead(), agent_id="A-2", closed_at=NOW)


def test_a_closing_before_the_lead_was_assigned_is_history_not_completion() -> None:
    assert not completes_lead(lead(), agent_id="A-1", closed_at=ASSIGNED - timedelta(days=400))


@pytest.mark.parametrize("status", [LeadStatus.REMOVED, LeadStatus.COMPLETED])
def test_removed_and_completed_leads_stay_as_they_are(status: LeadStatus) -> None:
    assert not completes_lead(lead(status), agent_id="A-1", closed_at=NOW)


def test_the_earliest_recorded_client_response_is_kept() -> None:
    first = NOW - timedelta(days=20)
    later = NOW - timedelta(days=2)
    assert record_client_response(lead(), responded_at=later, now=NOW).client_responded_at == later
    assert (
        record_client_response(
            lead(responded=first), responded_at=later, now=NOW
        ).client_responded_at
        == first
    )
    assert (
        record_client_response(
            lead(responded=later), responded_at=first, now=NOW
        ).client_responded_at
        == first
    )


def test_a_client_response_cannot_be_recorded_in_the_future() -> None:
    with pytest.raises(RemovalRejected) as caught:
        record_client_response(lead(), responded_at=NOW + timedelta(minutes=1), now=NOW)
    assert caught.value.code == "response_in_future"
