"""Erasure of a lead's client: what people wrote goes, the record of the removal stays."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.removals.domain.events import event_id, events_with_a_person_s_note
from services.removals.domain.model import (
    ERASED_TEXT,
    SYSTEM_ACTOR,
    Decision,
    Lead,
    LeadStatus,
    Proof,
    RemovalRequest,
    RemovalStatus,
    StepKind,
    close_by_transaction,
    decide,
    request_removal,
    without_client_text,
)
from shared.contracts.removals import RemovalReason

ASKED = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
LEAD = Lead("L-1", "A-1", LeadStatus.OPEN, ASKED - timedelta(days=10))
NOTES = "Pat Doe bought 4 Oak St with me; call 713 555 0100."


def prior_client_request() -> tuple[RemovalRequest, RemovalRequest]:
    """A prior_client request as asked (pending) and as approved."""
    asked = request_removal(
        LEAD,
        removal_id="R-1",
        agent_id="A-1",
        reason=RemovalReason.PRIOR_CLIENT,
        notes=NOTES,
        now=ASKED,
        proof=Proof(document_ref="pat-doe-closing.pdf", reference="Pat Doe, MLS 998877"),
    )
    return asked.request, decide(
        asked.request,
        decision=Decision.APPROVE,
        coordinator_id="C-1",
        note="Called Pat Doe, confirmed.",
        now=ASKED + timedelta(hours=1),
    ).request


def test_erasure_replaces_the_notes_proof_and_decision_note_people_wrote() -> None:
    _, approved = prior_client_request()

    erased = without_client_text(approved)

    assert erased.notes == ERASED_TEXT
    assert erased.proof == Proof(document_ref=ERASED_TEXT, reference=ERASED_TEXT)
    assert erased.decision_note == ERASED_TEXT
    assert [(s.kind, s.note) for s in erased.steps] == [
        (StepKind.REQUESTED, ERASED_TEXT),
        (StepKind.APPROVED, ERASED_TEXT),
        (StepKind.COMPLETED, "removed: prior_client"),
    ]


def test_erasure_keeps_the_record_reason_status_who_and_when() -> None:
    _, approved = prior_client_request()

    erased = without_client_text(approved)

    assert erased == replace(
        approved,
        notes=erased.notes,
        proof=erased.proof,
        decision_note=erased.decision_note,
        steps=erased.steps,
    )
    assert [(s.kind, s.actor, s.at) for s in erased.steps] == [
        (s.kind, s.actor, s.at) for s in approved.steps
    ]
    assert erased.status is RemovalStatus.COMPLETED


def test_the_system_s_own_notes_are_kept() -> None:
    pending, _ = prior_client_request()
    closed = close_by_transaction(pending, transaction_id="T-9", now=ASKED).request

    erased = without_client_text(closed)

    assert erased.decided_by == SYSTEM_ACTOR
    assert erased.decision_note == closed.decision_note
    assert erased.steps[-1] == closed.steps[-1]
    assert erased.proof == Proof(document_ref=ERASED_TEXT, reference=ERASED_TEXT)


def test_a_request_without_proof_or_decision_keeps_them_absent() -> None:
    asked = request_removal(
        LEAD,
        removal_id="R-2",
        agent_id="A-1",
        reason=RemovalReason.CHANGED_MIND,
        notes=NOTES,
        now=ASKED,
    ).request

    erased = without_client_text(asked)

    assert erased.proof is None and erased.decision_note is None
    assert erased.notes == ERASED_TEXT


def test_erasing_twice_changes_nothing_more() -> None:
    _, approved = prior_client_request()

    once = without_client_text(approved)

    assert without_client_text(once) == once


def test_only_decision_events_carry_a_person_s_note() -> None:
    pending, approved = prior_client_request()
    approved_step = next(s for s in approved.steps if s.kind is StepKind.APPROVED)
    closed = close_by_transaction(pending, transaction_id="T-9", now=ASKED).request

    assert events_with_a_person_s_note(approved) == [event_id(approved, approved_step)]
    assert events_with_a_person_s_note(pending) == []
    assert events_with_a_person_s_note(closed) == []
