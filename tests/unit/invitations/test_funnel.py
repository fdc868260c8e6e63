"""The invitations part of the agent's funnel: closings -> clients -> invited (email, phone,
code)."""

from __future__ import annotations

from services.invitations.domain.funnel import ClosingCount, InvitedFunnel, invited_funnel


def test_no_closing_no_funnel() -> None:
    assert invited_funnel([]) == InvitedFunnel(0, 0, 0, 0, 0)


def test_every_listed_client_counts_whether_invited_or_not() -> None:
    funnel = invited_funnel(
        [ClosingCount(2, email=1, phone=0, code=0), ClosingCount(1, email=0, phone=1, code=0)]
    )
    assert (funnel.closings, funnel.clients) == (2, 3)
    assert (funnel.email, funnel.phone, funnel.code) == (1, 1, 0)
    assert funnel.invited == 2 and funnel.not_invited == 1


def test_clients_the_mls_did_not_list_count_once_invited() -> None:
    funnel = invited_funnel([ClosingCount(0, email=2, phone=0, code=1)])
    assert funnel.clients == 3 and funnel.not_invited == 0


def test_a_closing_that_lists_no_client_and_got_no_contact_counts_no_client() -> None:
    funnel = invited_funnel([ClosingCount(0, 0, 0, 0), ClosingCount(1, 1, 0, 0)])
    assert funnel.closings == 2 and funnel.clients == 1


def test_codes_and_phones_are_told_apart_from_emails() -> None:
    funnel = invited_funnel([ClosingCount(3, email=1, phone=1, code=1)])
    assert (funnel.email, funnel.phone, funnel.code, funnel.invited) == (1, 1, 1, 3)
