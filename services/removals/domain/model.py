"""Leads and removal requests: the rules of docs/design.md §1.6 (Redfin partner-agent
rules), as pure functions of the current state, the request and `now`.

A lead is one agent's relationship with one client. It is `open` until the agent asks to remove
it (`removal_pending` while a coordinator decides, `removed` once done) or until the client closes
a transaction with that agent (`completed`: a success, never removable).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from shared.contracts.removals import RemovalReason
from shared.errors import DomainError

MIN_NOTES_LENGTH = 20
"""Notes are required; a few characters ("n/a", "gone") explain nothing to a coordinator."""

MAX_NOTES_LENGTH = 4000
MAX_DECISION_NOTE_LENGTH = 2000
MAX_PROOF_LENGTH = 2000
MAX_AGENT_ID_LENGTH = 64

NEEDS_COORDINATOR: frozenset[RemovalReason] = frozenset(
    {RemovalReason.ACTIVE_HANDOFF, RemovalReason.BAD_FIT, RemovalReason.PRIOR_CLIENT}
)
"""Reasons a coordinator must approve; every other reason removes the lead at once."""

HANDED_OFF: frozenset[RemovalReason] = frozenset(
    {RemovalReason.ACTIVE_HANDOFF, RemovalReason.BAD_FIT}
)
"""Reasons whose approval hands the client to another agent."""

SYSTEM_ACTOR = "system"

ERASED_TEXT = "[erased at the client's request]"
"""What replaces text people wrote about a client who asked to be erased (it may name them)."""


class LeadStatus(StrEnum):
    OPEN = "open"
    REMOVAL_PENDING = "removal_pending"
    REMOVED = "removed"
    COMPLETED = "completed"


class RemovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    COMPLETED = "completed"


class Decision(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


class StepKind(StrEnum):
    """What happened to a removal request; one recorded step each (who, when, why)."""

    REQUESTED = "requested"
    APPROVED = "approved"
    DENIED = "denied"
    HANDOFF_REQUESTED = "handoff_requested"
    COMPLETED = "completed"


NOTED_BY_PEOPLE: frozenset[StepKind] = frozenset(
    {StepKind.REQUESTED, StepKind.APPROVED, StepKind.DENIED}
)
"""Steps whose note an agent or coordinator writes; the others carry the system's fixed text."""


class RemovalRejected(DomainError):
    """The request breaks a rule; `code` says which (the API maps codes to HTTP statuses)."""


@dataclass(frozen=True)
class Lead:
    lead_id: str
    agent_id: str
    status: LeadStatus
    assigned_at: datetime
    client_responded_at: datetime | None = None
    """The first response from the client the agent recorded (the lead's contact history)."""
    handed_from: str | None = None
    """The agent who handed this client over (an approved hand-off), if that is how it came."""


@dataclass(frozen=True)
class Proof:
    """Proof of an earlier relationship: an uploaded document (`document_id`, see
    `domain.proof`), a reference to a document held elsewhere, a written reference, or several."""

    document_ref: str | None = None
    reference: str | None = None
    document_id: str | None = None

    @property
    def given(self) -> bool:
        return bool(
            (self.document_ref or "").strip() or (self.reference or "").strip() or self.document_id
        )


@dataclass(frozen=True)
class Step:
    kind: StepKind
    actor: str
    at: datetime
    note: str


@dataclass(frozen=True)
class RemovalRequest:
    removal_id: str
    lead_id: str
    agent_id: str
    reason: RemovalReason
    notes: str
    status: RemovalStatus
    requested_at: datetime
    client_ever_responded: bool | None = None
    proof: Proof | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None
    completed_at: datetime | None = None
    handed_to: str | None = None
    """The agent who takes the client over (approved hand-offs only)."""
    steps: tuple[Step, ...] = field(default=())

    @property
    def needs_approval(self) -> bool:
        return self.reason in NEEDS_COORDINATOR

    @property
    def referral_fee_owed(self) -> bool:
        """A lease or rental is removed with no referral fee owed; other removals leave it owed
        should the client still close with the agent."""
        return self.reason is not RemovalReason.LEASE_OR_RENTAL


@dataclass(frozen=True)
class Outcome:
    """The request after a transition, the lead's new status and the steps just taken; for an
    approved hand-off, the new agent's lead."""

    request: RemovalRequest
    lead_status: LeadStatus
    new_steps: tuple[Step, ...]
    handed_lead: Lead | None = None


def parse_reason(text: str) -> RemovalReason:
    try:
        return RemovalReason(text)
    except ValueError:
        raise RemovalRejected(
            "unknown_reason",
            f"unknown reason {text!r}; valid reasons: {', '.join(valid_reasons())}",
        ) from None


def valid_reasons() -> list[str]:
    return [reason.value for reason in RemovalReason]


def request_removal(
    lead: Lead,
    *,
    removal_id: str,
    agent_id: str,
    reason: RemovalReason,
    notes: str,
    now: datetime,
    client_ever_responded: bool | None = None,
    proof: Proof | None = None,
) -> Outcome:
    """An agent asks to remove one of its own open leads; completes at once unless a coordinator
    must decide."""
    if lead.agent_id != agent_id:
        raise RemovalRejected("not_your_lead", f"lead {lead.lead_id} is not assigned to you")
    _check_lead_is_removable(lead)
    notes = notes.strip()
    if len(notes) < MIN_NOTES_LENGTH:
        raise RemovalRejected(
            "notes_required",
            f"notes are required: explain the removal in at least {MIN_NOTES_LENGTH} characters",
        )
    if len(notes) > MAX_NOTES_LENGTH:
        raise RemovalRejected(
            "notes_too_long", f"notes are limited to {MAX_NOTES_LENGTH} characters"
        )
    if reason is RemovalReason.NO_CONTACT and (
        client_ever_responded or lead.client_responded_at is not None
    ):
        raise RemovalRejected(
            "client_responded",
            "no_contact is only for clients who never responded; this client responded, "
            "so use lost_touch",
        )
    if reason is RemovalReason.PRIOR_CLIENT:
        if proof is None or not proof.given:
            raise RemovalRejected(
                "proof_required",
                "prior_client needs written proof of the earlier relationship: "
                "an uploaded document or a written reference",
            )
        _check_proof_length(proof)
    else:
        proof = None if proof is None or not proof.given else proof
        if proof is not None:
            _check_proof_length(proof)

    requested = Step(StepKind.REQUESTED, agent_id, now, notes)
    request = RemovalRequest(
        removal_id=removal_id,
        lead_id=lead.lead_id,
        agent_id=agent_id,
        reason=reason,
        notes=notes,
        status=RemovalStatus.PENDING,
        requested_at=now,
        client_ever_responded=client_ever_responded,
        proof=proof,
        steps=(requested,),
    )
    if request.needs_approval:
        return Outcome(request, LeadStatus.REMOVAL_PENDING, (requested,))
    completed = _complete(request, actor=SYSTEM_ACTOR, now=now)
    return Outcome(completed.request, LeadStatus.REMOVED, (requested, *completed.new_steps))


def decide(
    request: RemovalRequest,
    *,
    decision: Decision,
    coordinator_id: str,
    note: str,
    now: datetime,
    handed_to: str | None = None,
) -> Outcome:
    """A coordinator approves (verifying the proof, for prior_client) or denies a pending request.

    Approval completes the removal at once. Approving a hand-off reason names the agent who
    takes the client over (`handed_to`, required then and refused otherwise): the client
    becomes that agent's open lead (Redfin: the coordinator assists the hand-off).
    Denial gives the lead back to the agent, open."""
    if request.status is not RemovalStatus.PENDING:
        raise RemovalRejected(
            "not_pending", f"removal {request.removal_id} is {request.status.value}, not pending"
        )
    note = note.strip()
    if not note:
        raise RemovalRejected("note_required", "a decision needs a note saying why")
    if len(note) > MAX_DECISION_NOTE_LENGTH:
        raise RemovalRejected(
            "note_too_long", f"the note is limited to {MAX_DECISION_NOTE_LENGTH} characters"
        )
    handed_to = _check_handed_to(request, decision, handed_to)
    decided = replace(request, decided_by=coordinator_id, decided_at=now, decision_note=note)
    if decision is Decision.DENY:
        step = Step(StepKind.DENIED, coordinator_id, now, note)
        denied = replace(decided, status=RemovalStatus.DENIED, steps=(*request.steps, step))
        return Outcome(denied, LeadStatus.OPEN, (step,))
    approved_step = Step(StepKind.APPROVED, coordinator_id, now, note)
    approved = replace(
        decided, status=RemovalStatus.APPROVED, steps=(*request.steps, approved_step)
    )
    steps: list[Step] = [approved_step]
    handed_lead = None
    if handed_to is not None:
        handoff = Step(
            StepKind.HANDOFF_REQUESTED, coordinator_id, now, f"client handed to agent {handed_to}"
        )
        approved = replace(approved, handed_to=handed_to, steps=(*approved.steps, handoff))
        steps.append(handoff)
        handed_lead = Lead(
            request.lead_id,
            handed_to,
            LeadStatus.OPEN,
            assigned_at=now,
            handed_from=request.agent_id,
        )
    completed = _complete(approved, actor=coordinator_id, now=now)
    return Outcome(
        completed.request,
        LeadStatus.REMOVED,
        (*steps, *completed.new_steps),
        handed_lead=handed_lead,
    )


def _check_handed_to(
    request: RemovalRequest, decision: Decision, handed_to: str | None
) -> str | None:
    """The agent an approval hands the client to: named exactly when a hand-off is approved."""
    handed_to = (handed_to or "").strip() or None
    hands_off = decision is Decision.APPROVE and request.reason in HANDED_OFF
    if hands_off and handed_to is None:
        raise RemovalRejected(
            "handoff_agent_required",
            f"approving {request.reason.value} hands the client to another agent: "
            "name that agent in handed_to_agent_id",
        )
    if not hands_off and handed_to is not None:
        raise RemovalRejected(
            "handoff_agent_not_applicable",
            "handed_to_agent_id is only for approving active_handoff or bad_fit; "
            f"this is {'a denial' if decision is Decision.DENY else request.reason.value}",
        )
    if handed_to is not None and len(handed_to) > MAX_AGENT_ID_LENGTH:
        raise RemovalRejected(
            "handoff_agent_invalid", f"an agent id has at most {MAX_AGENT_ID_LENGTH} characters"
        )
    if handed_to == request.agent_id:
        raise RemovalRejected(
            "handoff_to_same_agent", "the client must be handed to another agent, not back"
        )
    return handed_to


def close_by_transaction(request: RemovalRequest, *, transaction_id: str, now: datetime) -> Outcome:
    """The client closed a transaction with the agent while removal was pending: the lead is a
    success, not a removal, so the request is denied on the system's behalf."""
    if request.status is not RemovalStatus.PENDING:
        raise RemovalRejected(
            "not_pending", f"removal {request.removal_id} is {request.status.value}, not pending"
        )
    note = f"the client closed MLS transaction {transaction_id} with the agent"
    step = Step(StepKind.DENIED, SYSTEM_ACTOR, now, note)
    denied = replace(
        request,
        status=RemovalStatus.DENIED,
        decided_by=SYSTEM_ACTOR,
        decided_at=now,
        decision_note=note,
        steps=(*request.steps, step),
    )
    return Outcome(denied, LeadStatus.COMPLETED, (step,))


def completes_lead(lead: Lead, *, agent_id: str, closed_at: datetime) -> bool:
    """A transaction the lead's client closed with the lead's agent after the lead was assigned
    completes it; an earlier one is history (it may be what makes them a prior client)."""
    return (
        lead.agent_id == agent_id
        and closed_at >= lead.assigned_at
        and lead.status in (LeadStatus.OPEN, LeadStatus.REMOVAL_PENDING)
    )


def record_client_response(lead: Lead, *, responded_at: datetime, now: datetime) -> Lead:
    """Keep the earliest response the agent recorded; a response cannot lie in the future."""
    if responded_at > now:
        raise RemovalRejected("response_in_future", "a client response cannot be in the future")
    earliest = min(filter(None, (lead.client_responded_at, responded_at)))
    return replace(lead, client_responded_at=earliest)


def written_by_a_person(step: Step) -> bool:
    return step.kind in NOTED_BY_PEOPLE and step.actor != SYSTEM_ACTOR


def without_client_text(request: RemovalRequest) -> RemovalRequest:
    """Erasure of the lead's client: what people wrote (the agent's notes and proof, the
    coordinator's notes) may name the client and is replaced by `ERASED_TEXT`. The record
    stays: reason, status, who acted and when, and the system's own notes. Applied twice, it
    changes nothing more."""
    proof = request.proof
    decision_note = request.decision_note
    if decision_note is not None and request.decided_by != SYSTEM_ACTOR:
        decision_note = ERASED_TEXT
    return replace(
        request,
        notes=ERASED_TEXT,
        proof=Proof(
            document_ref=ERASED_TEXT if proof.document_ref else None,
            reference=ERASED_TEXT if proof.reference else None,
            document_id=proof.document_id,  # the id names no one; the document's bytes go
        )
        if proof is not None
        else None,
        decision_note=decision_note,
        steps=tuple(
            replace(step, note=ERASED_TEXT) if written_by_a_person(step) else step
            for step in request.steps
        ),
    )


def _check_lead_is_removable(lead: Lead) -> None:
    if lead.status is LeadStatus.OPEN:
        return
    messages = {
        LeadStatus.REMOVAL_PENDING: "a removal of this lead is already waiting for a coordinator",
        LeadStatus.REMOVED: "this lead is already removed",
        LeadStatus.COMPLETED: "the client closed a transaction with you: the lead is completed, "
        "not removable",
    }
    raise RemovalRejected(f"lead_{lead.status.value}", messages[lead.status])


def _check_proof_length(proof: Proof) -> None:
    for text in (proof.document_ref, proof.reference):
        if text is not None and len(text) > MAX_PROOF_LENGTH:
            raise RemovalRejected(
                "proof_too_long", f"proof fields are limited to {MAX_PROOF_LENGTH} characters"
            )


def _complete(request: RemovalRequest, *, actor: str, now: datetime) -> Outcome:
    note = f"removed: {request.reason.value}"
    if not request.referral_fee_owed:
        note += "; no referral fee is owed"
    step = Step(StepKind.COMPLETED, actor, now, note)
    completed = replace(
        request, status=RemovalStatus.COMPLETED, completed_at=now, steps=(*request.steps, step)
    )
    return Outcome(completed, LeadStatus.REMOVED, (step,))
