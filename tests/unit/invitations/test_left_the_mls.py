"""Agents who left the MLS (SYSTEM.md §3 "Participation", docs/design.md 1.7): no invitations,
no compliance clock while the roster marks them inactive; back as they were when active again."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.invitations.domain.model import (
    ClientContact,
    ComplianceStep,
    ContactRequestStatus,
    Policy,
    RefusedError,
    check_may_invite,
    clock_for_roster,
    compliance_step,
    contact_request,
    invites_for,
    plan_representation,
    reminder_due_at,
)
from shared.contracts.participation import ParticipationMode

CLOSED = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = Policy()
HIDDEN, PUBLIC, OUT = (
    ParticipationMode.OPT_IN_HIDDEN,
    ParticipationMode.OPT_IN_PUBLIC,
    ParticipationMode.OPT_OUT,
)
WITH_EMAIL = ClientContact("Pat", "pat@example.com")
WITH_PHONE = ClientContact("Sam", phone="+1 713 555 0100")
UNREACHABLE = ClientContact("Kim")


class TestInvitations:
    @pytest.mark.parametrize("mode", [HIDDEN, PUBLIC, OUT])
    def test_an_inactive_agent_gets_no_invitations_whatever_their_mode(
        self, mode: ParticipationMode
    ) -> None:
        assert not invites_for(mode, active=False)

    @pytest.mark.parametrize("mode", [HIDDEN, PUBLIC])
    def test_an_inactive_agent_s_closing_yields_no_invitation_task_or_contact_request(
        self, mode: ParticipationMode
    ) -> None:
        plan = plan_representation(mode, [WITH_EMAIL, WITH_PHONE, UNREACHABLE], active=False)
        assert plan.email_invitations == () and plan.phone_tasks == ()
        assert not plan.needs_contact
        assert plan_representation(mode, [], active=False) == plan

    def test_an_active_participating_agent_s_closing_is_planned_as_before(self) -> None:
        plan = plan_representation(HIDDEN, [WITH_EMAIL, UNREACHABLE], active=True)
        assert plan.email_invitations == (WITH_EMAIL,) and plan.needs_contact

    @pytest.mark.parametrize("mode", [HIDDEN, PUBLIC, OUT])
    def test_an_inactive_agent_asking_for_invitations_is_refused_as_inactive(
        self, mode: ParticipationMode
    ) -> None:
        with pytest.raises(RefusedError) as refused:
            check_may_invite(mode, active=False)
        assert refused.value.code == "inactive"

    def test_an_active_opted_out_agent_asking_for_invitations_is_refused_as_opted_out(
        self,
    ) -> None:
        with pytest.raises(RefusedError) as refused:
            check_may_invite(OUT, active=True)
        assert refused.value.code == "opted_out"
        check_may_invite(HIDDEN, active=True)


class TestComplianceClock:
    request = contact_request("T-1", "A-1", CLOSED, POLICY, now=CLOSED)

    def test_leaving_the_mls_stops_the_clock(self) -> None:
        left = CLOSED + 3 * DAY
        paused = clock_for_roster(self.request, active=False, now=left)
        assert paused.paused_at == left and paused.deadline == self.request.deadline

    def test_a_stopped_clock_neither_reminds_nor_opts_out_however_late(self) -> None:
        paused = clock_for_roster(self.request, active=False, now=CLOSED + 3 * DAY)
        for days in (7, 14, 400):
            at = CLOSED + days * DAY
            assert compliance_step(paused, at, POLICY) is ComplianceStep.NOTHING

    def test_back_on_the_roster_the_clock_runs_on_for_the_time_that_was_left(self) -> None:
        paused = clock_for_roster(self.request, active=False, now=CLOSED + 3 * DAY)
        back = CLOSED + 33 * DAY
        resumed = clock_for_roster(paused, active=True, now=back)
        assert resumed.paused_at is None
        assert resumed.deadline == self.request.deadline + 30 * DAY  # 11 days left, as before
        assert reminder_due_at(resumed, POLICY) == back + 4 * DAY
        assert compliance_step(resumed, back + 4 * DAY - DAY, POLICY) is ComplianceStep.NOTHING
        assert compliance_step(resumed, back + 4 * DAY, POLICY) is ComplianceStep.REMIND_AGENT
        assert compliance_step(resumed, back + 11 * DAY, POLICY) is ComplianceStep.OPT_OUT

    def test_a_reminder_sent_before_leaving_is_not_sent_again(self) -> None:
        reminded = replace(self.request, reminded_at=CLOSED + 7 * DAY)
        paused = clock_for_roster(reminded, active=False, now=CLOSED + 8 * DAY)
        resumed = clock_for_roster(paused, active=True, now=CLOSED + 20 * DAY)
        assert resumed.deadline == CLOSED + 26 * DAY
        assert compliance_step(resumed, CLOSED + 25 * DAY, POLICY) is ComplianceStep.NOTHING

    def test_repeated_roster_entries_change_nothing(self) -> None:
        paused = clock_for_roster(self.request, active=False, now=CLOSED + 3 * DAY)
        assert clock_for_roster(paused, active=False, now=CLOSED + 9 * DAY) == paused
        assert clock_for_roster(self.request, active=True, now=CLOSED + 9 * DAY) == self.request

    @pytest.mark.parametrize(
        "status",
        [ContactRequestStatus.SATISFIED, ContactRequestStatus.LAPSED, ContactRequestStatus.WAIVED],
    )
    def test_a_closed_request_has_no_clock_to_stop(self, status: ContactRequestStatus) -> None:
        closed = replace(self.request, status=status)
        assert clock_for_roster(closed, active=False, now=CLOSED + DAY) == closed
