"""The MIME message the relay hands to SMTP, read back the way a mail client reads it."""

import email
import email.policy
from email.message import EmailMessage

import pytest

from shared.mailer import RenderedMail, mime_message, stable_message_id

SENDER = "Agent Ratings <no-reply@ratings.example>"


def read_back(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_text_and_html_parts_with_headers_round_trip() -> None:
    mail = RenderedMail(
        subject="How was Zoë's service?",
        text="Hello Zoë,\nyour PIN is 7K2M-QX4P-9TRB\n",
        html="<p>Hello Zoë, your PIN is <b>7K2M-QX4P-9TRB</b></p>",
        headers=(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),),
    )
    message = read_back(mime_message(SENDER, "pat@example.com", mail, "<1@ratings.local>"))
    assert message["Subject"] == "How was Zoë's service?"
    assert message["From"] == SENDER
    assert message["To"] == "pat@example.com"
    assert message["Message-ID"] == "<1@ratings.local>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == mail.text
    assert html.get_content().strip() == mail.html


def test_text_only_mail_is_a_single_part() -> None:
    raw = mime_message(SENDER, "pat@example.com", RenderedMail("Hi", "only text é\n"), "<2@x>")
    message = read_back(raw)
    assert not message.is_multipart()
    assert message.get_content() == "only text é\r\n"  # as sent over SMTP


def test_lines_end_in_crlf_and_bodies_stay_readable() -> None:
    raw = mime_message(
        SENDER, "pat@example.com", RenderedMail("Hi", "PIN 7K2M-QX4P-9TRB\n"), "<3@x>"
    )
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert b"PIN 7K2M-QX4P-9TRB" in raw  # quoted-printable, not base64


@pytest.mark.parametrize("breaker", ["\n", "\r\n", "\r"])
def test_a_line_break_in_a_header_value_cannot_add_a_header(breaker: str) -> None:
    mail = RenderedMail(f"Hello{breaker}Bcc: victim@example.com", "x\n")
    message = read_back(mime_message(SENDER, "pat@example.com", mail, "<4@x>"))
    assert message["Bcc"] is None
    assert message["Subject"] == "Hello Bcc: victim@example.com"


def test_a_non_ascii_sender_name_keeps_its_address_readable() -> None:
    raw = mime_message(
        "Zoë Ratings <no-reply@ratings.example>", "a@example.com", RenderedMail("s", "t"), "<5@x>"
    )
    assert read_back(raw)["From"].addresses[0].addr_spec == "no-reply@ratings.example"


def test_the_message_id_is_the_same_each_time_a_mail_is_sent() -> None:
    first = stable_message_id("invitation:42", "invitations", SENDER)
    assert first == stable_message_id("invitation:42", "invitations", SENDER)
    assert first != stable_message_id("invitation:43", "invitations", SENDER)
    assert first.startswith("<") and first.endswith("@ratings.example>")
    raw = mime_message(SENDER, "pat@example.com", RenderedMail("Hi", "x\n"), first)
    assert read_back(raw)["Message-ID"] == first
