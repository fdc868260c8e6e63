"""Every email the service sends renders, says what it must, and carries no placeholders."""

from __future__ import annotations

import pytest

from services.invitations.domain.model import client_template, removal_template
from services.invitations.handlers import TEMPLATES
from shared.contracts.mls import Side, TransactionKind
from shared.contracts.removals import RemovalReason
from shared.mailer import Templates

templates = Templates(TEMPLATES)
CLIENT = {
    "client_name": "Pat",
    "agent_name": "Jo Agent",
    "street": "12 Elm Rd",
    "city": "Houston",
    "pin": "7K2M-QX4P-9TRB",
    "survey_url": "http://127.0.0.1:8002/survey?token=abc",
    "unsubscribe_url": "http://127.0.0.1:8001/unsubscribe?token=def",
    "expires_on": "December 20, 2026",
}
AGENT = {
    "agent_name": "Jo Agent",
    "transaction_id": "T-1",
    "street": "12 Elm Rd",
    "city": "Houston",
    "closed_on": "November 20, 2026",
    "deadline_on": "December 4, 2026",
    "portal_url": "http://127.0.0.1:8007/agent/clients",
    "participation_url": "http://127.0.0.1:8007/agent/participation",
}
MISSING = ["Kim Lee", "client 3 of 3"]


@pytest.mark.parametrize("kind", list(TransactionKind))
@pytest.mark.parametrize("side", list(Side))
def test_each_client_invitation_carries_the_pin_link_and_unsubscribe(
    kind: TransactionKind, side: Side
) -> None:
    mail = templates.render(client_template(kind, side), **CLIENT)
    for part in (mail.text, mail.html or ""):
        assert CLIENT["pin"] in part and CLIENT["survey_url"] in part
        assert CLIENT["unsubscribe_url"] in part
    assert "Jo Agent" in mail.subject


@pytest.mark.parametrize("reason", list(RemovalReason))
def test_each_removal_reason_has_its_own_survey(reason: RemovalReason) -> None:
    mail = templates.render(removal_template(reason), **CLIENT, new_agent_name=None)
    assert CLIENT["pin"] in mail.text and CLIENT["survey_url"] in mail.text
    others = {
        templates.render(removal_template(other), **CLIENT, new_agent_name=None).text
        for other in RemovalReason
        if other is not reason
    }
    assert mail.text not in others


@pytest.mark.parametrize("reason", [RemovalReason.ACTIVE_HANDOFF, RemovalReason.BAD_FIT])
def test_a_handoff_survey_names_the_new_agent_the_roster_knows(reason: RemovalReason) -> None:
    mail = templates.render(removal_template(reason), **CLIENT, new_agent_name="Ana Ruiz")
    for part in (mail.text, mail.html or ""):
        assert "handed you on to Ana Ruiz" in part
        assert "coordinator" in part
        assert "This survey is about Jo Agent only" in part
    assert mail.subject == "Ana Ruiz will help you from now on"


@pytest.mark.parametrize("reason", [RemovalReason.ACTIVE_HANDOFF, RemovalReason.BAD_FIT])
def test_a_handoff_survey_without_the_new_agents_name_still_says_the_client_was_handed_on(
    reason: RemovalReason,
) -> None:
    mail = templates.render(removal_template(reason), **CLIENT, new_agent_name=None)
    assert "handed you on to a" in mail.text and "None" not in mail.text
    assert mail.subject == "A new agent will help you"


def test_a_new_agents_name_is_escaped_in_the_html_survey() -> None:
    mail = templates.render(
        removal_template(RemovalReason.BAD_FIT), **CLIENT, new_agent_name="<b>Ana</b>"
    )
    assert "<b>Ana</b>" not in (mail.html or "") and "&lt;b&gt;Ana" in (mail.html or "")


def test_the_contact_request_subject_says_client_contact() -> None:
    mail = templates.render("agent_contact_request", **AGENT, missing_clients=MISSING)
    assert "client contact" in mail.subject
    assert AGENT["portal_url"] in mail.text and AGENT["deadline_on"] in mail.text


def test_the_agent_reminder_names_the_deadline() -> None:
    assert (
        AGENT["deadline_on"]
        in templates.render("agent_reminder", **AGENT, missing_clients=MISSING).text
    )


def test_the_opt_out_notice_says_why() -> None:
    mail = templates.render("agent_opt_out", **AGENT, missing_clients=MISSING)
    assert "opted out" in mail.subject
    assert "non-compliance" in mail.text
    assert AGENT["participation_url"] in mail.text


@pytest.mark.parametrize("template", ["agent_contact_request", "agent_reminder", "agent_opt_out"])
def test_the_agent_s_compliance_mails_name_each_missing_client(template: str) -> None:
    text = templates.render(template, **AGENT, missing_clients=MISSING).text
    assert "  - Kim Lee\n" in text and "  - client 3 of 3\n" in text


def test_the_client_reminder_points_back_to_the_first_email() -> None:
    mail = templates.render(
        "client_reminder",
        client_name="Pat",
        agent_name="Jo",
        first_sent_on="November 20, 2026",
        expires_on="December 20, 2026",
        unsubscribe_url=CLIENT["unsubscribe_url"],
    )
    assert "November 20, 2026" in mail.text and CLIENT["unsubscribe_url"] in mail.text


def test_the_thank_you_mail_carries_the_status_link() -> None:
    mail = templates.render(
        "client_thanks",
        client_name="Pat",
        agent_name="Jo Agent",
        status_url="http://127.0.0.1:8002/review-status?token=R-1.mac",
    )
    assert "Jo Agent" in mail.subject
    assert "http://127.0.0.1:8002/review-status?token=R-1.mac" in mail.text
    assert 'href="http://127.0.0.1:8002/review-status?token=R-1.mac"' in (mail.html or "")
