"""Removal rules per reason (docs/design.md §1.6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.removals.domain.model import (
    MIN_NOTES_LENGTH,
    NEEDS_COORDINATOR,
    Lead,
    LeadStatus,
    Outcome,
    Proof,
    RemovalRejected,
    RemovalStatus,
    StepKind,
    parse_reason,
    request_removal,
    valid_reasons,
)
from shared.contracts.removals import RemovalReason

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
NOTES = "Client stopped answering after the second showing in October."
IMMEDIATE = sorted(set(RemovalReason) - NEEDS_COORDINATOR)


def lead(**changes: object) -> Lead:
    values: dict[str, object] = {
        "lead_id": "L-1",
        "agent_id": "A-1",
        "status": LeadStatus.OPEN,
        "assigned_at": NOW - timedelta(days=30),
    }
    values.update(changes)
    return Lead(**values)  # type: ignore[arg-type]


def request(reason: RemovalReason, **kwargs: object) -> Outcome:
    values: dict[str, object] = {
        "removal_id": "R-1",
        "agent_id": "A-1",
        "reason": reason,
        "notes": NOTES,
        "now": NOW,
    }
    values.update(kwargs)
    target = values.pop("lead", None) or lead()
    assert isinstance(target, Lead)
    return request_removal(target, **values)  # type: ignore[arg-type]


def rejection(reason: RemovalReason, **kwargs: object) -> RemovalRejected:
    with pytest.raises(RemovalRejected) as caught:
        request(reason, **kwargs)
    return caught.value


def test_there_are_eleven_reasons_and_unknown_ones_list_them_all() -> None:
    assert len(valid_reasons()) == 11
    with pytest.raises(RemovalRejected) as caught:
        parse_reason("moved_to_mars")
    assert caught.value.code == "unknown_reason"
    for reason in valid_reasons():
        assert reason in caught.value.message
    assert parse_reason("lost_touch") is RemovalReason.LOST_TOUCH


@pytest.mark.parametrize("reason", IMMEDIATE)
def test_reasons_without_a_coordinator_remove_the_lead_at_once(reason: RemovalReason) -> None:
    outcome = request(reason)
    assert outcome.lead_status is LeadStatus.REMOVED
    assert outcome.request.status is RemovalStatus.COMPLETED
    assert outcome.request.completed_at == NOW
    assert [step.kind for step in outcome.new_steps] == [StepKind.REQUESTED, StepKind.COMPLETED]
    assert outcome.new_steps[0].actor == "A-1"
    assert outcome.new_steps[0].note == NOTES


@pytest.mark.parametrize(
    "reason", [RemovalReason.ACTIVE_HANDOFF, RemovalReason.BAD_FIT, RemovalReason.PRIOR_CLIENT]
)
def test_handoff_bad_fit_and_prior_client_wait_for_a_coordinator(reason: RemovalReason) -> None:
    outcome = request(reason, proof=Proof(reference="Sold them 4 Oak St in 2023, MLS 998877."))
    assert outcome.lead_status is LeadStatus.REMOVAL_PENDING
    assert outcome.request.status is RemovalStatus.PENDING
    assert outcome.request.needs_approval
    assert [step.kind for step in outcome.new_steps] == [StepKind.REQUESTED]


@pytest.mark.parametrize("notes", ["", "   ", "gone", " " * 30 + "too short" + " " * 30])
def test_notes_are_required_with_a_meaningful_length(notes: str) -> None:
    assert rejection(RemovalReason.CHANGED_MIND, notes=notes).code == "notes_required"


@given(extra=st.text(min_size=0, max_size=200))
def test_notes_of_the_minimum_length_after_trimming_are_enough(extra: str) -> None:
    notes = "x" * MIN_NOTES_LENGTH + extra.strip()
    outcome = request(RemovalReason.CHANGED_MIND, notes=f"  {notes}\n")
    assert outcome.request.notes == notes


@given(length=st.integers(min_value=0, max_value=MIN_NOTES_LENGTH - 1))
def test_notes_shorter_than_the_minimum_are_refused(length: int) -> None:
    assert rejection(RemovalReason.OUT_OF_AREA, notes="y" * length).code == "notes_required"


def test_no_contact_is_refused_when_the_agent_says_the_client_responded() -> None:
    refused = rejection(RemovalReason.NO_CONTACT, client_ever_responded=True)
    assert refused.code == "client_responded"
    assert "lost_touch" in refused.message


def test_no_contact_is_refused_when_the_contact_history_shows_a_response() -> None:
    responded = lead(client_responded_at=NOW - timedelta(days=3))
    refused = rejection(RemovalReason.NO_CONTACT, lead=responded, client_ever_responded=False)
    assert refused.code == "client_responded"
    assert "lost_touch" in refused.message


@pytest.mark.parametrize("stated", [False, None])
def test_no_contact_completes_when_the_client_never_responded(stated: bool | None) -> None:
    outcome = request(RemovalReason.NO_CONTACT, client_ever_responded=stated)
    assert outcome.lead_status is LeadStatus.REMOVED


def test_lost_touch_is_the_reason_for_a_client_who_responded_then_stopped() -> None:
    responded = lead(client_responded_at=NOW - timedelta(days=3))
    outcome = request(RemovalReason.LOST_TOUCH, lead=responded, client_ever_responded=True)
    assert outcome.request.status is RemovalStatus.COMPLETED


@pytest.mark.parametrize(
    "proof", [None, Proof(), Proof(document_ref="  ", reference=""), Proof(reference="\n")]
)
def test_prior_client_needs_written_proof(proof: Proof | None) -> None:
    assert rejection(RemovalReason.PRIOR_CLIENT, proof=proof).code == "proof_required"


@pytest.mark.parametrize(
    "proof",
    [Proof(document_ref="doc-7f3a"), Proof(reference="Closing statement, 4 Oak St, May 2023")],
)
def test_prior_client_accepts_a_document_or_a_written_reference(proof: Proof) -> None:
    outcome = request(RemovalReason.PRIOR_CLIENT, proof=proof)
    assert outcome.request.proof == proof
    assert outcome.lead_status is LeadStatus.REMOVAL_PENDING


def test_overlong_proof_is_refused() -> None:
    refused = rejection(RemovalReason.PRIOR_CLIENT, proof=Proof(reference="p" * 2001))
    assert refused.code == "proof_too_long"


def test_lease_or_rental_completes_with_no_referral_fee_owed() -> None:
    outcome = request(RemovalReason.LEASE_OR_RENTAL)
    assert outcome.request.status is RemovalStatus.COMPLETED
    assert outcome.request.referral_fee_owed is False
    assert "no referral fee" in outcome.new_steps[-1].note


@pytest.mark.parametrize("reason", sorted(set(RemovalReason) - {RemovalReason.LEASE_OR_RENTAL}))
def test_other_reasons_leave_the_referral_fee_owed(reason: RemovalReason) -> None:
    proof = Proof(reference="Closing statement, 4 Oak St, May 2023")
    assert request(reason, proof=proof).request.referral_fee_owed is True


def test_an_agent_cannot_remove_someone_elses_lead() -> None:
    assert rejection(RemovalReason.CHANGED_MIND, agent_id="A-2").code == "not_your_lead"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (LeadStatus.REMOVAL_PENDING, "lead_removal_pending"),
        (LeadStatus.REMOVED, "lead_removed"),
        (LeadStatus.COMPLETED, "lead_completed"),
    ],
)
def test_only_open_leads_can_be_removed(status: LeadStatus, code: str) -> None:
    assert rejection(RemovalReason.CHANGED_MIND, lead=lead(status=status)).code == code
