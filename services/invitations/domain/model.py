"""The rules of participation, compliance and survey invitations (docs/design.md §1.1 to §1.3).

Everything here is pure: the clock's `now` and the stored state are passed in.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from shared.contracts.mls import Side, TransactionKind
from shared.contracts.participation import ParticipationMode, ParticipationReason
from shared.contracts.removals import RemovalReason
from shared.errors import DomainError

DEFAULT_MODE = ParticipationMode.OPT_IN_HIDDEN
"""HAR: every agent on the roster participates, ratings hidden, until they choose otherwise."""

if TYPE_CHECKING:  # corrections builds on this module
    from services.invitations.domain.corrections import Origin


@dataclass(frozen=True)
class Policy:
    compliance_window: timedelta = timedelta(days=14)
    agent_reminder_after: timedelta = timedelta(days=7)
    client_reminder_after: timedelta = timedelta(days=7)
    invitation_ttl: timedelta = timedelta(days=30)

    @classmethod
    def of_days(
        cls,
        *,
        compliance_window: int,
        agent_reminder: int,
        client_reminder: int,
        invitation_ttl: int,
    ) -> Policy:
        return cls(
            timedelta(days=compliance_window),
            timedelta(days=agent_reminder),
            timedelta(days=client_reminder),
            timedelta(days=invitation_ttl),
        )


class InvitationStatus(StrEnum):
    OPEN = "open"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    DONE = "done"


class ContactRequestStatus(StrEnum):
    OPEN = "open"
    SATISFIED = "satisfied"
    LAPSED = "lapsed"
    WAIVED = "waived"  # the agent opted out: nothing is owed any more


class RefusedError(DomainError):
    """A command the rules refuse; `code` says which rule."""


@dataclass(frozen=True)
class ClientContact:
    """A client as the MLS or the agent gave it; PII, encrypted at rest."""

    name: str
    email: str | None = None
    phone: str | None = None

    @property
    def reachable(self) -> bool:
        return bool(self.email or self.phone)


@dataclass(frozen=True)
class Agent:
    """An agent as the roster last named them, with the participation they chose."""

    agent_id: str
    name: str
    email: str
    mode: ParticipationMode
    active: bool


@dataclass(frozen=True)
class Transaction:
    """A closing the MLS reported: what and where, for the survey and its mails."""

    transaction_id: str
    kind: TransactionKind
    closed_at: datetime
    street: str
    city: str
    postcode: str


@dataclass(frozen=True)
class Representation:
    """One agent's side of a closing, with the clients the MLS (or the agent) named."""

    transaction: Transaction
    agent_id: str
    side: Side
    clients: list[ClientContact]


def participation_for_new_agent() -> tuple[ParticipationMode, ParticipationReason]:
    return DEFAULT_MODE, ParticipationReason.DEFAULT


@dataclass(frozen=True)
class ModeChange:
    """An agent's new participation, and what follows from it."""

    mode: ParticipationMode
    reason: ParticipationReason

    @property
    def waives_requests(self) -> bool:
        """An agent who opts out, by choice or for non-compliance, sends no invitations, so no
        contact is owed any more: their open contact requests are waived (HAR)."""
        return not self.mode.participating


def mode_change(
    current: ParticipationMode, wanted: ParticipationMode, reason: ParticipationReason
) -> ModeChange | None:
    """None when the agent is in that mode already (nothing to record or announce)."""
    return None if current is wanted else ModeChange(wanted, reason)


def non_compliance(current: ParticipationMode) -> ModeChange | None:
    """At the deadline with a client still missing, a participating agent is opted out (HAR)."""
    return mode_change(current, ParticipationMode.OPT_OUT, ParticipationReason.NON_COMPLIANCE)


def invites_for(mode: ParticipationMode, *, active: bool) -> bool:
    """Opted-out agents get no invitations sent for their clients, and neither do agents the
    roster marks inactive (they left the MLS: docs/design.md 1.7)."""
    return active and mode.participating


def check_may_invite(mode: ParticipationMode, *, active: bool) -> None:
    """An agent asking for invitations (supplying contacts, an agent code) is refused while the
    roster marks them inactive, or while they are opted out."""
    if not active:
        raise RefusedError(
            "inactive", "the MLS roster marks you inactive: no invitations are sent for you"
        )
    if not mode.participating:
        raise RefusedError("opted_out", "you are opted out: no invitations are sent")


UNLISTED = 0
"""The client "number" owed when the MLS listed no client for the agent's side (or for a request
older than per-client compliance): the agent is asked for their clients' contacts, and any one
contact supplied, by any route, answers it (as it always did)."""


def missing_clients(clients: Sequence[ClientContact]) -> tuple[int, ...]:
    """The clients the agent owes a contact for, by their number in the MLS closing's list
    (1-based): those with neither email nor phone; `(UNLISTED,)` when the list is empty."""
    if not clients:
        return (UNLISTED,)
    return tuple(number for number, c in enumerate(clients, 1) if not c.reachable)


@dataclass(frozen=True)
class RepresentationPlan:
    """What one agent's side of a closed transaction yields."""

    email_invitations: tuple[ClientContact, ...] = ()
    phone_tasks: tuple[ClientContact, ...] = ()
    missing: tuple[int, ...] = ()
    """The clients the agent is asked for (see `missing_clients`)."""

    @property
    def needs_contact(self) -> bool:
        return bool(self.missing)


def plan_representation(
    mode: ParticipationMode, clients: list[ClientContact], *, active: bool = True
) -> RepresentationPlan:
    """What a rostered agent's side of a closing yields (a closing whose agent the roster does
    not name yet is kept, and planned when it does).

    A client with an email is invited; one with only a phone becomes a phone-survey task (the
    alternate information HAR accepts); a client with neither, or no clients at all, means the
    agent is asked for the contact. Opted-out agents yield nothing; so do inactive agents, and
    nothing is owed for that closing when they return (docs/design.md 1.7).
    """
    if not invites_for(mode, active=active):
        return RepresentationPlan()
    return RepresentationPlan(
        email_invitations=tuple(c for c in clients if c.email),
        phone_tasks=tuple(c for c in clients if c.phone and not c.email),
        missing=missing_clients(clients),
    )


def client_template(kind: TransactionKind, side: Side) -> str:
    return f"client_invitation_{kind.value}_{side.value}"


def removal_template(reason: RemovalReason) -> str:
    return f"removal_survey_{reason.value}"


def may_mail(email_index: str, suppressed: frozenset[str] | set[str]) -> bool:
    """An unsubscribed address is never mailed again. (Replays never invite twice either: one
    invitation per (transaction, agent, client email) is a unique index in the schema.)"""
    return email_index not in suppressed


@dataclass(frozen=True)
class SurveyOffer:
    """A client to invite by email, with what the invitation and its mail need."""

    agent: Agent
    client: ClientContact
    template: str
    transaction: Transaction | None = None
    lead_id: str | None = None
    reason: RemovalReason | None = None
    new_agent_name: str | None = None
    """A hand-off's new agent, when the roster names them (the survey says who)."""
    supplied_flags: tuple[str, ...] | None = None
    """Set when the agent entered the contact: what the checks flagged (maybe nothing)."""
    origin: Origin | None = None
    """How the contact came, when not as `supplied_flags` says (an agent code)."""
    replaces: str | None = None
    """A correction: the invitation this one replaces, and how many corrections it makes."""
    corrections: int = 0
    invitation_id: str | None = None


@dataclass(frozen=True)
class PhoneOffer:
    """A client without email: a phone-survey task for the operations staff."""

    agent_id: str
    client: ClientContact
    transaction_id: str | None = None
    lead_id: str | None = None
    reason: RemovalReason | None = None
    supplied_flags: tuple[str, ...] | None = None


def survey_offer(
    representation: Representation,
    agent: Agent,
    client: ClientContact,
    supplied_flags: tuple[str, ...] | None = None,
) -> SurveyOffer:
    """The transaction survey for a client of the closing, in the template of its kind and side."""
    transaction = representation.transaction
    return SurveyOffer(
        agent,
        client,
        client_template(transaction.kind, representation.side),
        transaction=transaction,
        supplied_flags=supplied_flags,
    )


def phone_offer(
    representation: Representation,
    client: ClientContact,
    supplied_flags: tuple[str, ...] | None = None,
) -> PhoneOffer:
    return PhoneOffer(
        representation.agent_id,
        client,
        transaction_id=representation.transaction.transaction_id,
        supplied_flags=supplied_flags,
    )


def removal_offer(
    agent: Agent,
    client: ClientContact,
    lead_id: str,
    reason: RemovalReason,
    new_agent_name: str | None = None,
) -> SurveyOffer | PhoneOffer | None:
    """When a removal survey may be sent, and how: by email when the lead's client has one,
    else as a phone task; none for an agent who left the MLS (docs/design.md 1.7) or a client
    with no contact left."""
    if not agent.active:
        return None
    if client.email:
        return SurveyOffer(
            agent,
            client,
            removal_template(reason),
            lead_id=lead_id,
            reason=reason,
            new_agent_name=new_agent_name,
        )
    if client.phone:
        return PhoneOffer(agent.agent_id, client, lead_id=lead_id, reason=reason)
    return None


@dataclass(frozen=True)
class ContactRequest:
    """What one agent owes for one closing: a contact for each client still `missing`."""

    transaction_id: str
    agent_id: str
    closed_at: datetime
    deadline: datetime
    status: ContactRequestStatus = ContactRequestStatus.OPEN
    reminded_at: datetime | None = None
    missing: tuple[int, ...] = (UNLISTED,)
    clients_listed: int = 0
    """How many clients the MLS listed: "client 2 of 3" still reads right once names are erased."""
    paused_at: datetime | None = None


def contact_request(
    transaction_id: str,
    agent_id: str,
    closed_at: datetime,
    policy: Policy,
    *,
    now: datetime,
    clients: Sequence[ClientContact] = (),
) -> ContactRequest:
    """The window runs from the closing (default 14 days) — or from when the agent could first
    be asked, if the roster named the agent only after the closing."""
    window_start = max(closed_at, now)
    return ContactRequest(
        transaction_id,
        agent_id,
        closed_at,
        window_start + policy.compliance_window,
        missing=missing_clients(clients),
        clients_listed=len(clients),
    )


@dataclass(frozen=True)
class ClientRoll:
    """The clients of one agent's side of a closing, as the MLS listed them: client number n is
    `names[n - 1]`, None once erased. The number is how a client is told apart: the MLS gives
    no client id, and names may repeat or be erased."""

    names: tuple[str | None, ...]

    @classmethod
    def of(cls, clients: Sequence[ClientContact] | None, listed: int = 0) -> ClientRoll:
        """From the stored clients, or `listed` unnamed ones when they were erased."""
        if clients:
            return cls(tuple(c.name for c in clients))
        return cls((None,) * listed)

    def name(self, number: int) -> str | None:
        return self.names[number - 1] if 1 <= number <= len(self.names) else None

    def label(self, number: int) -> str:
        """How the agent's mails and the API name a client: the name the MLS gave, else its
        place in the list. (The agent may see their own clients' names.)"""
        if number == UNLISTED:
            return "each of your clients (the MLS listed none)"
        return self.name(number) or f"client {number} of {len(self.names)}"


@dataclass(frozen=True)
class SuppliedClient:
    """A contact the agent gives (supplied, or an agent code), and which client of the closing
    it is for when the agent says so."""

    contact: ClientContact
    number: int | None = None


def clients_reached(
    supplied: Sequence[SuppliedClient], roll: ClientRoll, missing: Collection[int]
) -> list[int | None]:
    """Which listed client each contact reaches (None: not one the MLS listed).

    The number the agent gave; else the listed client of the same name (a still-missing one
    first); else, when exactly one client is still missing and exactly one contact is left
    unmatched, that client. A number the closing does not have is refused.
    """
    for client in supplied:
        if client.number is not None and not 1 <= client.number <= len(roll.names):
            raise RefusedError(
                "unknown_client",
                f"the closing lists {len(roll.names)} client(s) for you: "
                f"there is no client {client.number}",
            )
    reached: list[int | None] = []
    for client in supplied:
        if client.number is not None:
            reached.append(client.number)
            continue
        wanted = _normalised(client.contact.name)
        same = [
            number
            for number, name in enumerate(roll.names, 1)
            if name is not None and _normalised(name) == wanted and number not in reached
        ]
        reached.append(next((n for n in same if n in missing), same[0] if same else None))
    left = [number for number in missing if number != UNLISTED and number not in reached]
    unmatched = [index for index, number in enumerate(reached) if number is None]
    if len(left) == 1 and len(unmatched) == 1:
        reached[unmatched[0]] = left[0]
    return reached


@dataclass(frozen=True)
class MissingClient:
    """A client the agent still owes a contact for, as the agent is told."""

    number: int | None
    """Its number in the closing's list; None when the MLS listed no client (`UNLISTED`)."""
    name: str | None
    label: str


def still_missing(request: ContactRequest | None, roll: ClientRoll) -> list[MissingClient]:
    if request is None or request.status is not ContactRequestStatus.OPEN:
        return []
    return [
        MissingClient(number or None, roll.name(number), roll.label(number))
        for number in request.missing
    ]


def answer_request(request: ContactRequest, reached: Sequence[int | None]) -> ContactRequest:
    """HAR compliance is per client: each client reached by any route (an email that gets the
    survey, a phone that becomes a phone survey, an agent code) is no longer missing, and only
    that client. `UNLISTED` is answered by any contact at all. Satisfied once none is missing."""
    if request.status is not ContactRequestStatus.OPEN or not reached:
        return request
    answered = {number for number in reached if number is not None} | {UNLISTED}
    left = tuple(number for number in request.missing if number not in answered)
    status = ContactRequestStatus.OPEN if left else ContactRequestStatus.SATISFIED
    return replace(request, missing=left, status=status)


def reminder_due_at(request: ContactRequest, policy: Policy) -> datetime:
    return request.deadline - policy.compliance_window + policy.agent_reminder_after


class ComplianceStep(StrEnum):
    NOTHING = "nothing"
    REMIND_AGENT = "remind_agent"
    OPT_OUT = "opt_out"


def compliance_step(request: ContactRequest, now: datetime, policy: Policy) -> ComplianceStep:
    """One reminder at 7 days; at the deadline with a client still missing (the request is
    open until none is): auto opt-out. A paused clock (the agent is inactive) does neither."""
    if request.status is not ContactRequestStatus.OPEN or request.paused_at is not None:
        return ComplianceStep.NOTHING
    if now >= request.deadline:
        return ComplianceStep.OPT_OUT
    if request.reminded_at is None and now >= reminder_due_at(request, policy):
        return ComplianceStep.REMIND_AGENT
    return ComplianceStep.NOTHING


def clock_for_roster(request: ContactRequest, *, active: bool, now: datetime) -> ContactRequest:
    """An agent the roster marks inactive has no compliance clock (docs/design.md 1.7): an open
    request's clock stops when the agent leaves the MLS and runs on when they come back, for the
    time that was left (deadline and reminder move by the time away), so they are back as they
    were. Idempotent: a repeated roster entry changes nothing."""
    if request.status is not ContactRequestStatus.OPEN:
        return request
    if not active and request.paused_at is None:
        return replace(request, paused_at=now)
    if active and request.paused_at is not None:
        away = max(now - request.paused_at, timedelta(0))
        return replace(request, deadline=request.deadline + away, paused_at=None)
    return request


def satisfies_request(supplied: list[ClientContact]) -> bool:
    """Every client supplied has an email or a phone, and at least one was supplied."""
    return bool(supplied) and all(c.reachable for c in supplied)


@dataclass(frozen=True)
class Invitation:
    invitation_id: str
    agent_id: str
    issued_at: datetime
    expires_at: datetime
    status: InvitationStatus = InvitationStatus.OPEN
    reminded_at: datetime | None = None
    channel: str = "email"


def expires_at(issued_at: datetime, policy: Policy) -> datetime:
    return issued_at + policy.invitation_ttl


class InvitationStep(StrEnum):
    NOTHING = "nothing"
    REMIND_CLIENT = "remind_client"
    EXPIRE = "expire"


def invitation_step(invitation: Invitation, now: datetime, policy: Policy) -> InvitationStep:
    """Expire at 30 days; one client reminder at 7 days.

    This service learns nothing about answers (reviews keep them and publish only what passes
    moderation), so "if no answer" is approximated by "still open": every open email invitation
    gets its one reminder unless it expired or was cancelled. A client who answered may get a
    reminder; the survey page then says the PIN was used. Phone tasks are never reminded.
    """
    if invitation.status is not InvitationStatus.OPEN:
        return InvitationStep.NOTHING
    if now >= invitation.expires_at:
        return InvitationStep.EXPIRE
    if (
        invitation.channel == "email"
        and invitation.reminded_at is None
        and now >= invitation.issued_at + policy.client_reminder_after
    ):
        return InvitationStep.REMIND_CLIENT
    return InvitationStep.NOTHING


class PhoneTaskState(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    DONE = "done"


@dataclass(frozen=True)
class PhoneTask:
    invitation_id: str
    claimed_by: str | None = None
    done: bool = False
    status: InvitationStatus = InvitationStatus.OPEN

    @property
    def state(self) -> PhoneTaskState:
        if self.done:
            return PhoneTaskState.DONE
        return PhoneTaskState.CLAIMED if self.claimed_by else PhoneTaskState.OPEN


def claim(task: PhoneTask, surveyor_id: str) -> PhoneTask:
    if task.status is not InvitationStatus.OPEN or task.done:
        raise RefusedError("task_closed", "this phone survey is closed")
    if task.claimed_by not in (None, surveyor_id):
        raise RefusedError("task_claimed", "another surveyor has claimed this phone survey")
    return PhoneTask(task.invitation_id, surveyor_id, False, task.status)


def complete(task: PhoneTask, surveyor_id: str) -> PhoneTask:
    if task.claimed_by != surveyor_id:
        raise RefusedError("not_your_task", "claim the phone survey before marking it done")
    if task.done or task.status is not InvitationStatus.OPEN:
        raise RefusedError("task_closed", "this phone survey is closed")
    return PhoneTask(task.invitation_id, surveyor_id, True, InvitationStatus.DONE)


@dataclass(frozen=True)
class AddressedProperty:
    street: str
    postcode: str


def _normalised(text: str) -> str:
    return " ".join(text.lower().replace(".", " ").replace(",", " ").split())


def same_property(a: AddressedProperty, b: AddressedProperty) -> bool:
    """Agents type the address: compare road name and postcode ignoring case and punctuation."""
    return _normalised(a.street) == _normalised(b.street) and _normalised(
        a.postcode
    ) == _normalised(b.postcode)
