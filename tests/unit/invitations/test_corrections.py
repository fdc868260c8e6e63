"""An agent cancels one client's invitation sent to a wrong email and re-sends it (docs/design.md
1.10): only an open email invitation of a closing, to another address, twice at most."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.invitations.domain.corrections import (
    RESENDS_MAX,
    Correctable,
    check_resend,
    masked,
)
from services.invitations.domain.model import InvitationStatus, RefusedError

OPEN = Correctable("transaction", "email", InvitationStatus.OPEN, 0, "idx-old")


def test_an_open_email_invitation_of_a_closing_is_re_sent_to_another_address() -> None:
    check_resend(OPEN, ["idx-new", "idx-new-under-a-retired-key"])


@pytest.mark.parametrize(
    ("invitation", "code"),
    [
        (replace(OPEN, survey="removal"), "not_a_closing"),
        (replace(OPEN, channel="phone"), "not_email"),
        (replace(OPEN, status=InvitationStatus.DONE), "already_answered"),
        (replace(OPEN, status=InvitationStatus.EXPIRED), "not_open"),
        (replace(OPEN, status=InvitationStatus.CANCELLED), "not_open"),
        (replace(OPEN, corrections=RESENDS_MAX), "too_many_resends"),
        (replace(OPEN, corrections=RESENDS_MAX + 3), "too_many_resends"),
    ],
)
def test_what_cannot_be_re_sent(invitation: Correctable, code: str) -> None:
    with pytest.raises(RefusedError) as refused:
        check_resend(invitation, ["idx-new"])
    assert refused.value.code == code


def test_the_same_address_is_no_correction_under_any_key() -> None:
    with pytest.raises(RefusedError) as refused:
        check_resend(OPEN, ["idx-current", "idx-old"])
    assert refused.value.code == "same_email"


def test_a_client_is_re_sent_up_to_twice() -> None:
    check_resend(replace(OPEN, corrections=RESENDS_MAX - 1), ["idx-new"])
    assert RESENDS_MAX == 2


@pytest.mark.parametrize(
    ("email", "shown"),
    [
        ("pat.doe@example.com", "p…@example.com"),
        ("p@example.com", "p…@example.com"),
        ("@example.com", "…@example.com"),
        ("no-at-sign", "…"),
    ],
)
def test_an_address_the_agent_did_not_enter_is_masked(email: str, shown: str) -> None:
    assert masked(email) == shown
