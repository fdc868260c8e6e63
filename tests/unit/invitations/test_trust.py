"""Contacts an agent enters are bounded and checked (docs/design.md §3.3)."""

from __future__ import annotations

import pytest

from services.invitations.domain.model import ClientContact, RefusedError
from services.invitations.domain.trust import (
    ContactFlag,
    ContactRules,
    check_contact,
    check_supplied_count,
    contact_flags,
)

RULES = ContactRules(supplied_clients_max=4, reuse_agents=2)


def client(email: str | None = None, phone: str | None = None) -> ClientContact:
    return ClientContact("Jo Client", email, phone)


def refusal(call: object) -> str:
    assert callable(call)
    with pytest.raises(RefusedError) as refused:
        call()
    return refused.value.code


def test_an_agent_may_give_one_contact_per_client_the_closing_names() -> None:
    check_supplied_count(already=1, adding=1, listed=2, rules=RULES)
    code = refusal(lambda: check_supplied_count(already=2, adding=1, listed=2, rules=RULES))
    assert code == "too_many_contacts"


def test_a_closing_that_names_no_client_allows_the_configured_number() -> None:
    check_supplied_count(already=0, adding=4, listed=0, rules=RULES)
    with pytest.raises(RefusedError, match="up to 4 contacts"):
        check_supplied_count(already=3, adding=2, listed=0, rules=RULES)
    check_supplied_count(already=3, adding=2, listed=0, rules=ContactRules(supplied_clients_max=5))


def test_a_contact_on_the_agent_s_own_mail_domain_is_refused() -> None:
    code = refusal(lambda: check_contact(client("me.too@HarRealty.com"), "pat@harrealty.com"))
    assert code == "own_mail_domain"
    code = refusal(lambda: check_contact(client("x@mail.harrealty.com"), "pat@harrealty.com"))
    assert code == "own_mail_domain"


def test_the_agent_s_own_address_is_refused_even_on_a_public_mailbox() -> None:
    code = refusal(lambda: check_contact(client("Pat.Agent@gmail.com"), "pat.agent@gmail.com"))
    assert code == "own_mail_domain"


def test_a_client_on_the_same_public_mailbox_provider_as_the_agent_is_fine() -> None:
    check_contact(client("jo.client@gmail.com"), "pat.agent@gmail.com")
    check_contact(client("jo@outlook.com"), "pat@harrealty.com")


@pytest.mark.parametrize("email", ["jo@mailinator.com", "jo@10minutemail.com", "jo@x.yopmail.com"])
def test_a_disposable_address_is_refused(email: str) -> None:
    assert refusal(lambda: check_contact(client(email), "pat@harrealty.com")) == (
        "disposable_address"
    )


def test_a_phone_contact_has_no_mail_domain_to_check() -> None:
    check_contact(client(phone="+1 713 555 0188"), "pat@harrealty.com")


def test_a_contact_other_agents_gave_for_their_clients_is_flagged_not_refused() -> None:
    assert contact_flags(0, RULES) == ()
    assert contact_flags(1, RULES) == (ContactFlag.REUSED_ACROSS_AGENTS,)
    assert contact_flags(1, ContactRules(reuse_agents=3)) == ()
    assert contact_flags(2, ContactRules(reuse_agents=3)) == (ContactFlag.REUSED_ACROSS_AGENTS,)
