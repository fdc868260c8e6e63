"""Mails to a client other than the thank-you that follows an answer (docs/design.md 1.10):
tests that count one invitation mail per client count these."""

from __future__ import annotations

from email.message import EmailMessage

from devtools.smtp_sink import MailSink

THANKS_SUBJECT = "Thank you for rating"


def survey_mails(mail: MailSink, address: str) -> list[EmailMessage]:
    return [m for m in mail.to(address) if not str(m["Subject"]).startswith(THANKS_SUBJECT)]
