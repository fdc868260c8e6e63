"""The invitation rules: participation, which invitations a representation yields, compliance,
client reminders and expiry, suppression, phone tasks, agent codes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.invitations.domain.model import (
    UNLISTED,
    AddressedProperty,
    ClientContact,
    ClientRoll,
    ComplianceStep,
    ContactRequestStatus,
    Invitation,
    InvitationStatus,
    InvitationStep,
    PhoneTask,
    PhoneTaskState,
    Policy,
    RefusedError,
    SuppliedClient,
    answer_request,
    claim,
    client_template,
    clients_reached,
    complete,
    compliance_step,
    contact_request,
    expires_at,
    invitation_step,
    may_mail,
    participation_for_new_agent,
    plan_representation,
    removal_template,
    same_property,
    satisfies_request,
    still_missing,
)
from shared.contracts.mls import Side, TransactionKind
from shared.contracts.participation import ParticipationMode, ParticipationReason
from shared.contracts.removals import RemovalReason

CLOSED = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
POLICY = Policy()
HIDDEN, PUBLIC, OUT = (
    ParticipationMode.OPT_IN_HIDDEN,
    ParticipationMode.OPT_IN_PUBLIC,
    ParticipationMode.OPT_OUT,
)
WITH_EMAIL = ClientContact("Pat", "pat@example.com")
WITH_PHONE = ClientContact("Sam", phone="+1 713 555 0100")
WITH_BOTH = ClientContact("Lee", "lee@example.com", "+1 713 555 0101")
UNREACHABLE = ClientContact("Kim")


class TestParticipation:
    def test_every_new_agent_participates_hidden_by_default(self) -> None:
        assert participation_for_new_agent() == (HIDDEN, ParticipationReason.DEFAULT)

    def test_opted_out_agents_clients_get_nothing(self) -> None:
        assert plan_representation(OUT, [WITH_EMAIL, UNREACHABLE]) == plan_representation(OUT, [])
        plan = plan_representation(OUT, [WITH_EMAIL, UNREACHABLE])
        assert not plan.email_invitations and not plan.phone_tasks and not plan.needs_contact

    @pytest.mark.parametrize("mode", [HIDDEN, PUBLIC])
    def test_participating_agents_clients_with_email_are_invited(
        self, mode: ParticipationMode
    ) -> None:
        plan = plan_representation(mode, [WITH_EMAIL, WITH_BOTH])
        assert plan.email_invitations == (WITH_EMAIL, WITH_BOTH)
        assert plan.phone_tasks == () and not plan.needs_contact


class TestRepresentationPlan:
    def test_a_client_with_only_a_phone_becomes_a_phone_task(self) -> None:
        plan = plan_representation(HIDDEN, [WITH_PHONE])
        assert plan.phone_tasks == (WITH_PHONE,)
        assert plan.email_invitations == () and not plan.needs_contact

    def test_a_client_with_neither_email_nor_phone_needs_the_agent(self) -> None:
        plan = plan_representation(HIDDEN, [WITH_EMAIL, UNREACHABLE])
        assert plan.needs_contact and plan.email_invitations == (WITH_EMAIL,)

    def test_no_clients_listed_needs_the_agent(self) -> None:
        plan = plan_representation(PUBLIC, [])
        assert plan.needs_contact

    @given(
        st.lists(
            st.builds(
                ClientContact,
                st.just("C"),
                st.one_of(st.none(), st.emails()),
                st.one_of(st.none(), st.just("+1 555 0100")),
            ),
            max_size=6,
        )
    )
    def test_every_client_is_invited_phoned_or_asked_for(
        self, clients: list[ClientContact]
    ) -> None:
        plan = plan_representation(HIDDEN, clients)
        covered = len(plan.email_invitations) + len(plan.phone_tasks)
        unreachable = [c for c in clients if not c.reachable]
        assert covered + len(unreachable) == len(clients)
        assert plan.needs_contact == (not clients or bool(unreachable))

    def test_templates_follow_kind_and_side_and_removal_reason(self) -> None:
        assert (
            client_template(TransactionKind.LEASE, Side.TENANT) == "client_invitation_lease_tenant"
        )
        assert removal_template(RemovalReason.BAD_FIT) == "removal_survey_bad_fit"


class TestCompliance:
    request = contact_request("T-1", "A-1", CLOSED, POLICY, now=CLOSED)

    def test_the_deadline_is_14_days_after_closing(self) -> None:
        assert self.request.deadline == CLOSED + timedelta(days=14)

    def test_the_window_is_configurable(self) -> None:
        policy = Policy.of_days(
            compliance_window=10, agent_reminder=3, client_reminder=7, invitation_ttl=30
        )
        request = contact_request("T-1", "A-1", CLOSED, policy, now=CLOSED)
        assert request.deadline == CLOSED + timedelta(days=10)
        assert compliance_step(request, CLOSED + timedelta(days=3), policy) is (
            ComplianceStep.REMIND_AGENT
        )

    def test_an_agent_named_late_by_the_roster_gets_the_full_window_from_then(self) -> None:
        named = CLOSED + timedelta(days=20)
        late = contact_request("T-1", "A-1", CLOSED, POLICY, now=named)
        assert late.deadline == named + timedelta(days=14)
        assert compliance_step(late, named + timedelta(days=1), POLICY) is ComplianceStep.NOTHING
        assert compliance_step(late, named + timedelta(days=7), POLICY) is (
            ComplianceStep.REMIND_AGENT
        )

    def test_nothing_happens_in_the_first_7_days(self) -> None:
        at = CLOSED + timedelta(days=7) - timedelta(seconds=1)
        assert compliance_step(self.request, at, POLICY) is ComplianceStep.NOTHING

    def test_the_agent_is_reminded_once_at_7_days(self) -> None:
        at = CLOSED + timedelta(days=7)
        assert compliance_step(self.request, at, POLICY) is ComplianceStep.REMIND_AGENT
        reminded = self.request.__class__(**{**self.request.__dict__, "reminded_at": at})
        assert compliance_step(reminded, at + timedelta(days=1), POLICY) is ComplianceStep.NOTHING

    def test_at_the_deadline_with_nothing_supplied_the_agent_is_opted_out(self) -> None:
        at = CLOSED + timedelta(days=14)
        assert compliance_step(self.request, at, POLICY) is ComplianceStep.OPT_OUT

    @pytest.mark.parametrize(
        "status",
        [ContactRequestStatus.SATISFIED, ContactRequestStatus.LAPSED, ContactRequestStatus.WAIVED],
    )
    def test_a_closed_request_has_no_consequence(self, status: ContactRequestStatus) -> None:
        closed = self.request.__class__(**{**self.request.__dict__, "status": status})
        at = CLOSED + timedelta(days=20)
        assert compliance_step(closed, at, POLICY) is ComplianceStep.NOTHING

    def test_an_email_or_a_phone_for_every_client_satisfies_the_request(self) -> None:
        assert satisfies_request([WITH_EMAIL, WITH_PHONE])
        assert not satisfies_request([WITH_EMAIL, UNREACHABLE])
        assert not satisfies_request([])


def supplied(name: str, number: int | None = None) -> SuppliedClient:
    return SuppliedClient(ClientContact(name, f"{name.split()[0].lower()}@example.com"), number)


class TestCompliancePerClient:
    """HAR: a survey for every client; compliance is per client, by any route."""

    listed = [WITH_EMAIL, ClientContact("Kim Lee"), ClientContact("Lee Poe", phone="+1 555")]
    roll = ClientRoll.of([WITH_EMAIL, ClientContact("Kim Lee"), ClientContact("Ann Roe")])
    request = contact_request(
        "T-1",
        "A-1",
        CLOSED,
        POLICY,
        now=CLOSED,
        clients=[WITH_EMAIL, ClientContact("Kim Lee"), ClientContact("Ann Roe")],
    )

    def test_the_request_owes_each_listed_client_without_email_or_phone_by_number(self) -> None:
        plan = plan_representation(HIDDEN, self.listed)
        assert plan.missing == (2,)
        assert self.request.missing == (2, 3) and self.request.clients_listed == 3

    def test_a_closing_listing_no_client_owes_one_contact_of_any_client(self) -> None:
        plan = plan_representation(HIDDEN, [])
        assert plan.missing == (UNLISTED,)
        request = contact_request("T-1", "A-1", CLOSED, POLICY, now=CLOSED)
        assert request.missing == (UNLISTED,)
        answered = answer_request(request, [None])
        assert answered.status is ContactRequestStatus.SATISFIED and answered.missing == ()

    def test_a_contact_for_one_client_answers_that_client_only(self) -> None:
        answered = answer_request(self.request, [2])
        assert answered.status is ContactRequestStatus.OPEN and answered.missing == (3,)
        assert [m.label for m in still_missing(answered, self.roll)] == ["Ann Roe"]

    def test_the_last_missing_client_answered_satisfies_the_request(self) -> None:
        answered = answer_request(answer_request(self.request, [3]), [2])
        assert answered.status is ContactRequestStatus.SATISFIED
        assert still_missing(answered, self.roll) == []
        at = CLOSED + timedelta(days=14)
        assert compliance_step(answered, at, POLICY) is ComplianceStep.NOTHING

    def test_a_client_still_missing_at_the_deadline_opts_the_agent_out(self) -> None:
        answered = answer_request(self.request, [2])
        at = CLOSED + timedelta(days=14)
        assert compliance_step(answered, at, POLICY) is ComplianceStep.OPT_OUT

    def test_a_contact_for_no_listed_client_answers_nobody(self) -> None:
        assert answer_request(self.request, [None]) == self.request
        assert answer_request(self.request, [1]) == self.request  # already had an email

    def test_a_request_from_before_per_client_compliance_takes_any_contact(self) -> None:
        older = replace(self.request, missing=(UNLISTED,))
        assert answer_request(older, [2]).status is ContactRequestStatus.SATISFIED

    def test_a_closed_request_is_not_reopened_or_changed(self) -> None:
        lapsed = replace(self.request, status=ContactRequestStatus.LAPSED)
        assert answer_request(lapsed, [2, 3]) == lapsed

    def test_the_number_the_agent_gives_says_which_client(self) -> None:
        assert clients_reached([supplied("Someone", 3)], self.roll, (2, 3)) == [3]

    def test_a_number_the_closing_lacks_is_refused(self) -> None:
        for number in (0, 4):
            with pytest.raises(RefusedError) as refused:
                clients_reached([supplied("Kim Lee", number)], self.roll, (2, 3))
            assert refused.value.code == "unknown_client"
        with pytest.raises(RefusedError):
            clients_reached([supplied("Kim", 1)], ClientRoll.of([]), (UNLISTED,))

    def test_without_a_number_the_client_of_the_same_name_is_meant(self) -> None:
        assert clients_reached([supplied("ann  roe.")], self.roll, (2, 3)) == [3]
        assert clients_reached([supplied("Kim Lee"), supplied("Ann Roe")], self.roll, (2, 3)) == [
            2,
            3,
        ]

    def test_of_two_clients_of_the_same_name_a_missing_one_is_meant_first(self) -> None:
        twins = ClientRoll(("Sam Roe", "Sam Roe"))
        assert clients_reached([supplied("Sam Roe")], twins, (2,)) == [2]
        assert clients_reached([supplied("Sam Roe"), supplied("Sam Roe")], twins, (1, 2)) == [
            1,
            2,
        ]

    def test_an_unnamed_contact_goes_to_the_only_client_still_missing(self) -> None:
        assert clients_reached([supplied("Annie")], self.roll, (3,)) == [3]
        assert clients_reached([supplied("Kim Lee"), supplied("Annie")], self.roll, (2, 3)) == [
            2,
            3,
        ]

    def test_an_unnamed_contact_is_no_client_when_several_are_missing(self) -> None:
        assert clients_reached([supplied("Annie")], self.roll, (2, 3)) == [None]
        assert clients_reached([supplied("X"), supplied("Y")], self.roll, (3,)) == [None, None]

    def test_when_the_mls_listed_no_client_contacts_name_no_client(self) -> None:
        assert clients_reached([supplied("Kim")], ClientRoll.of([]), (UNLISTED,)) == [None]

    def test_the_agent_is_told_the_names_the_mls_gave_or_the_client_s_place(self) -> None:
        assert self.roll.label(2) == "Kim Lee"
        erased = ClientRoll.of([], listed=3)
        assert erased.label(2) == "client 2 of 3"
        assert [(m.number, m.name, m.label) for m in still_missing(self.request, erased)] == [
            (2, None, "client 2 of 3"),
            (3, None, "client 3 of 3"),
        ]
        unlisted = still_missing(contact_request("T", "A", CLOSED, POLICY, now=CLOSED), erased)
        assert [(m.number, m.name) for m in unlisted] == [(None, None)]

    @given(
        st.lists(st.booleans(), min_size=1, max_size=6),
        st.lists(st.integers(min_value=1, max_value=6), max_size=6),
    )
    def test_the_request_is_satisfied_exactly_when_every_missing_client_is_reached(
        self, reachable: list[bool], reached: list[int]
    ) -> None:
        clients = [
            ClientContact(f"C{i}", "c@example.com" if r else None) for i, r in enumerate(reachable)
        ]
        request = contact_request("T", "A", CLOSED, POLICY, now=CLOSED, clients=clients)
        assume(request.missing)
        answered = answer_request(request, reached)
        assert set(answered.missing) == set(request.missing) - set(reached)
        assert (answered.status is ContactRequestStatus.SATISFIED) == (not answered.missing)


class TestClientReminderAndExpiry:
    invitation = Invitation("I-1", "A-1", CLOSED, expires_at(CLOSED, POLICY))

    def test_invitations_expire_30_days_after_issue(self) -> None:
        assert self.invitation.expires_at == CLOSED + timedelta(days=30)
        assert invitation_step(self.invitation, CLOSED + timedelta(days=30), POLICY) is (
            InvitationStep.EXPIRE
        )

    def test_one_reminder_at_7_days_while_open(self) -> None:
        before = CLOSED + timedelta(days=7) - timedelta(seconds=1)
        assert invitation_step(self.invitation, before, POLICY) is InvitationStep.NOTHING
        at = CLOSED + timedelta(days=7)
        assert invitation_step(self.invitation, at, POLICY) is InvitationStep.REMIND_CLIENT
        reminded = Invitation("I-1", "A-1", CLOSED, self.invitation.expires_at, reminded_at=at)
        assert invitation_step(reminded, at + timedelta(days=1), POLICY) is InvitationStep.NOTHING

    @pytest.mark.parametrize("status", [InvitationStatus.EXPIRED, InvitationStatus.CANCELLED])
    def test_expired_or_cancelled_invitations_are_never_reminded(
        self, status: InvitationStatus
    ) -> None:
        closed = Invitation("I-1", "A-1", CLOSED, self.invitation.expires_at, status)
        assert invitation_step(closed, CLOSED + timedelta(days=8), POLICY) is InvitationStep.NOTHING

    def test_phone_tasks_are_never_reminded_but_do_expire(self) -> None:
        task = Invitation("I-1", "A-1", CLOSED, self.invitation.expires_at, channel="phone")
        assert invitation_step(task, CLOSED + timedelta(days=8), POLICY) is InvitationStep.NOTHING
        assert invitation_step(task, CLOSED + timedelta(days=31), POLICY) is InvitationStep.EXPIRE


class TestSuppression:
    def test_an_unsubscribed_address_is_never_mailed(self) -> None:
        assert not may_mail("idx-1", {"idx-1"})
        assert may_mail("idx-2", {"idx-1"})


class TestPhoneTasks:
    def test_a_surveyor_claims_then_completes(self) -> None:
        task = claim(PhoneTask("I-1"), "S-1")
        assert task.state is PhoneTaskState.CLAIMED
        done = complete(task, "S-1")
        assert done.state is PhoneTaskState.DONE and done.status is InvitationStatus.DONE

    def test_another_surveyor_cannot_take_a_claimed_task(self) -> None:
        with pytest.raises(RefusedError) as refused:
            claim(PhoneTask("I-1", "S-1"), "S-2")
        assert refused.value.code == "task_claimed"

    def test_claiming_again_is_harmless(self) -> None:
        assert claim(PhoneTask("I-1", "S-1"), "S-1").claimed_by == "S-1"

    def test_only_the_claimer_marks_it_done(self) -> None:
        with pytest.raises(RefusedError):
            complete(PhoneTask("I-1"), "S-1")
        with pytest.raises(RefusedError):
            complete(PhoneTask("I-1", "S-1"), "S-2")

    def test_an_expired_task_cannot_be_claimed(self) -> None:
        with pytest.raises(RefusedError):
            claim(PhoneTask("I-1", status=InvitationStatus.EXPIRED), "S-1")


class TestAgentCodes:
    def test_the_address_matches_ignoring_case_and_punctuation(self) -> None:
        stored = AddressedProperty("12 Elm Rd", "77002")
        assert same_property(stored, AddressedProperty("12 elm rd.", " 77002 "))
        assert not same_property(stored, AddressedProperty("12 Elm Rd", "77003"))
        assert not same_property(stored, AddressedProperty("14 Elm Rd", "77002"))
