"""Coordinator decisions: pending → approved (→ completed) | denied, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.removals.domain.events import event_for, event_id
from services.removals.domain.model import (
    HANDED_OFF,
    NEEDS_COORDINATOR,
    Decision,
    Lead,
    LeadStatus,
    Outcome,
    Proof,
    RemovalRejected,
    RemovalRequest,
    RemovalStatus,
    StepKind,
    close_by_transaction,
    decide,
    request_removal,
)
from shared.contracts import (
    HANDOFF_REQUESTED,
    REMOVAL_APPROVED,
    REMOVAL_COMPLETED,
    REMOVAL_DENIED,
    REMOVAL_REQUESTED,
)
from shared.contracts.removals import RemovalReason

ASKED = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
DECIDED = ASKED + timedelta(hours=5)
LEAD = Lead("L-1", "A-1", LeadStatus.OPEN, ASKED - timedelta(days=10))


def pending(reason: RemovalReason) -> RemovalRequest:
    outcome = request_removal(
        LEAD,
        removal_id="R-1",
        agent_id="A-1",
        reason=reason,
        notes="We disagree on every house; the client wants a different style of agent.",
        now=ASKED,
        proof=Proof(document_ref="doc-1") if reason is RemovalReason.PRIOR_CLIENT else None,
    )
    assert outcome.request.status is RemovalStatus.PENDING
    return outcome.request


def approve(reason: RemovalReason, *, handed_to: str | None) -> Outcome:
    """A coordinator approves the pending request of `reason`, naming `handed_to`."""
    return decide(
        pending(reason),
        decision=Decision.APPROVE,
        coordinator_id="C-1",
        note="agreed",
        now=DECIDED,
        handed_to=handed_to,
    )


@pytest.mark.parametrize("reason", [RemovalReason.ACTIVE_HANDOFF, RemovalReason.BAD_FIT])
def test_approving_a_handoff_reason_asks_for_reassignment_and_completes(
    reason: RemovalReason,
) -> None:
    outcome = approve(reason, handed_to="A-2")
    assert outcome.lead_status is LeadStatus.REMOVED
    assert outcome.request.status is RemovalStatus.COMPLETED
    assert (outcome.request.decided_by, outcome.request.decided_at) == ("C-1", DECIDED)
    assert [step.kind for step in outcome.new_steps] == [
        StepKind.APPROVED,
        StepKind.HANDOFF_REQUESTED,
        StepKind.COMPLETED,
    ]
    assert outcome.request.steps[0].kind is StepKind.REQUESTED
    assert [event_for(outcome.request, s)[0] for s in outcome.new_steps] == [
        REMOVAL_APPROVED,
        HANDOFF_REQUESTED,
        REMOVAL_COMPLETED,
    ]


@pytest.mark.parametrize("reason", [RemovalReason.ACTIVE_HANDOFF, RemovalReason.BAD_FIT])
def test_an_approved_handoff_makes_the_client_the_named_agents_open_lead(
    reason: RemovalReason,
) -> None:
    outcome = approve(reason, handed_to=" A-2 ")
    assert outcome.request.handed_to == "A-2"
    assert outcome.handed_lead == Lead(
        "L-1", "A-2", LeadStatus.OPEN, assigned_at=DECIDED, handed_from="A-1"
    )
    handoff = next(s for s in outcome.new_steps if s.kind is StepKind.HANDOFF_REQUESTED)
    assert "A-2" in handoff.note
    events = {
        t.ce_type: e.model_dump(mode="json")
        for t, e in map(lambda step: event_for(outcome.request, step), outcome.new_steps)
    }
    assert events["lead.handoff.requested.v1"]["from_agent_id"] == "A-1"
    assert events["lead.handoff.requested.v1"]["to_agent_id"] == "A-2"
    assert events["removal.completed.v1"]["handed_to_agent_id"] == "A-2"
    assert events["removal.completed.v1"]["agent_id"] == "A-1"


@pytest.mark.parametrize("reason", [RemovalReason.ACTIVE_HANDOFF, RemovalReason.BAD_FIT])
@pytest.mark.parametrize("handed_to", [None, "", "   "])
def test_approving_a_handoff_without_naming_the_new_agent_is_refused(
    reason: RemovalReason, handed_to: str | None
) -> None:
    with pytest.raises(RemovalRejected) as caught:
        approve(reason, handed_to=handed_to)
    assert caught.value.code == "handoff_agent_required"


def test_a_handoff_back_to_the_same_agent_is_refused() -> None:
    with pytest.raises(RemovalRejected) as caught:
        approve(RemovalReason.BAD_FIT, handed_to="A-1")
    assert caught.value.code == "handoff_to_same_agent"


def test_a_new_agent_id_longer_than_the_contract_allows_is_refused() -> None:
    with pytest.raises(RemovalRejected) as caught:
        approve(RemovalReason.BAD_FIT, handed_to="A" * 65)
    assert caught.value.code == "handoff_agent_invalid"


@pytest.mark.parametrize(
    ("reason", "decision"),
    [
        (RemovalReason.PRIOR_CLIENT, Decision.APPROVE),
        (RemovalReason.BAD_FIT, Decision.DENY),
        (RemovalReason.ACTIVE_HANDOFF, Decision.DENY),
    ],
)
def test_naming_a_new_agent_where_nothing_is_handed_off_is_refused(
    reason: RemovalReason, decision: Decision
) -> None:
    with pytest.raises(RemovalRejected) as caught:
        decide(
            pending(reason),
            decision=decision,
            coordinator_id="C-1",
            note="agreed",
            now=DECIDED,
            handed_to="A-2",
        )
    assert caught.value.code == "handoff_agent_not_applicable"


def test_approving_prior_client_verifies_the_proof_and_completes_without_handoff() -> None:
    outcome = decide(
        pending(RemovalReason.PRIOR_CLIENT),
        decision=Decision.APPROVE,
        coordinator_id="C-1",
        note="closing statement checked",
        now=DECIDED,
    )
    assert [step.kind for step in outcome.new_steps] == [StepKind.APPROVED, StepKind.COMPLETED]
    assert outcome.request.decision_note == "closing statement checked"


def test_denying_gives_the_lead_back_to_the_agent() -> None:
    outcome = decide(
        pending(RemovalReason.BAD_FIT),
        decision=Decision.DENY,
        coordinator_id="C-1",
        note="  please try one more meeting  ",
        now=DECIDED,
    )
    assert outcome.lead_status is LeadStatus.OPEN
    assert outcome.request.status is RemovalStatus.DENIED
    assert outcome.request.decision_note == "please try one more meeting"
    assert outcome.request.completed_at is None
    (step,) = outcome.new_steps
    assert (step.kind, step.actor, step.at) == (StepKind.DENIED, "C-1", DECIDED)
    event_type, event = event_for(outcome.request, step)
    assert event_type is REMOVAL_DENIED
    assert event.model_dump()["note"] == "please try one more meeting"


@pytest.mark.parametrize("decision", list(Decision))
def test_a_decision_on_a_request_that_is_not_pending_is_an_error(decision: Decision) -> None:
    done = decide(
        pending(RemovalReason.BAD_FIT),
        decision=Decision.DENY,
        coordinator_id="C-1",
        note="no",
        now=DECIDED,
    ).request
    with pytest.raises(RemovalRejected) as caught:
        decide(done, decision=decision, coordinator_id="C-2", note="again", now=DECIDED)
    assert caught.value.code == "not_pending"


def test_an_immediate_removal_is_never_pending_for_a_decision() -> None:
    done = request_removal(
        LEAD,
        removal_id="R-2",
        agent_id="A-1",
        reason=RemovalReason.CHANGED_MIND,
        notes="The client decided to stay in their current home.",
        now=ASKED,
    ).request
    with pytest.raises(RemovalRejected) as caught:
        decide(done, decision=Decision.APPROVE, coordinator_id="C-1", note="ok", now=DECIDED)
    assert caught.value.code == "not_pending"


@pytest.mark.parametrize("note", ["", "   "])
def test_a_decision_needs_a_note(note: str) -> None:
    with pytest.raises(RemovalRejected) as caught:
        decide(
            pending(RemovalReason.BAD_FIT),
            decision=Decision.APPROVE,
            coordinator_id="C-1",
            note=note,
            now=DECIDED,
        )
    assert caught.value.code == "note_required"


def test_a_closing_while_pending_denies_the_request_on_the_systems_behalf() -> None:
    outcome = close_by_transaction(
        pending(RemovalReason.BAD_FIT), transaction_id="T-9", now=DECIDED
    )
    assert outcome.lead_status is LeadStatus.COMPLETED
    assert outcome.request.status is RemovalStatus.DENIED
    assert outcome.request.decided_by == "system"
    assert "T-9" in (outcome.request.decision_note or "")


def test_every_step_has_its_own_event_and_deterministic_id() -> None:
    request = pending(RemovalReason.ACTIVE_HANDOFF)
    (requested,) = request.steps
    event_type, event = event_for(request, requested)
    assert event_type is REMOVAL_REQUESTED
    assert event.model_dump(mode="json") == {
        "removal_id": "R-1",
        "lead_id": "L-1",
        "agent_id": "A-1",
        "reason": "active_handoff",
        "needs_approval": True,
        "requested_at": "2026-11-20T15:00:00Z",
    }
    assert event_id(request, requested) == "removal:R-1:requested"


def test_the_completed_event_carries_the_reason_and_the_referral_fee_but_no_contact() -> None:
    done = request_removal(
        LEAD,
        removal_id="R-3",
        agent_id="A-1",
        reason=RemovalReason.LEASE_OR_RENTAL,
        notes="The client only wants to rent an apartment downtown.",
        now=ASKED,
    ).request
    event_type, event = event_for(done, done.steps[-1])
    assert event_type is REMOVAL_COMPLETED
    assert event.model_dump(mode="json") == {
        "removal_id": "R-3",
        "lead_id": "L-1",
        "agent_id": "A-1",
        "reason": "lease_or_rental",
        "referral_fee_owed": False,
        "completed_at": "2026-11-20T15:00:00Z",
        "handed_to_agent_id": None,
    }


@given(
    reason=st.sampled_from(sorted(NEEDS_COORDINATOR)),
    decisions=st.lists(st.sampled_from(list(Decision)), min_size=1, max_size=5),
)
def test_only_the_first_decision_on_a_request_counts(
    reason: RemovalReason, decisions: list[Decision]
) -> None:
    request = pending(reason)
    first, *rest = decisions
    hands_off = first is Decision.APPROVE and reason in HANDED_OFF
    outcome = decide(
        request,
        decision=first,
        coordinator_id="C-1",
        note="first",
        now=DECIDED,
        handed_to="A-2" if hands_off else None,
    )
    assert (outcome.handed_lead is not None) == hands_off
    for later in rest:
        with pytest.raises(RemovalRejected):
            decide(
                outcome.request,
                decision=later,
                coordinator_id="C-2",
                note="late",
                now=DECIDED,
                handed_to="A-3" if later is Decision.APPROVE and reason in HANDED_OFF else None,
            )
    kinds = [step.kind for step in outcome.request.steps]
    if first is Decision.DENY:
        assert kinds == [StepKind.REQUESTED, StepKind.DENIED]
    else:
        assert kinds[0] is StepKind.REQUESTED
        assert kinds[1] is StepKind.APPROVED
        assert kinds[-1] is StepKind.COMPLETED
        assert (StepKind.HANDOFF_REQUESTED in kinds) == (reason in HANDED_OFF)
