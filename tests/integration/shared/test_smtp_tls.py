"""The mail sender over TLS with a login (SMTP_TLS, SMTP_USERNAME, SMTP_PASSWORD,
SMTP_CA_FILE), against SMTP servers the test starts with a throwaway certificate: STARTTLS on a
server that refuses mail before it, implicit TLS, and the refusals (docs/design.md 3.4)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from devtools.smtp_sink import MailSink
from shared.mailer import RenderedMail, SmtpSender, SmtpTransport
from shared.settings import SmtpTls
from tests.conftest import free_port
from tests.support.tls import TlsFiles, write_throwaway_tls

pytestmark = pytest.mark.integration

USER, PASSWORD = "mailer", "provider-issued"
SENDER = "Agent Ratings <no-reply@ratings.example>"


@dataclass
class Logins:
    """The server's authenticator: who logged in, and whether the session was encrypted then."""

    accepted: list[tuple[str, bool]] = field(default_factory=list)

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        valid = (data.login, data.password) == (USER.encode(), PASSWORD.encode())
        if valid:
            transport = server.transport
            encrypted = transport is not None and transport.get_extra_info("ssl_object") is not None
            self.accepted.append((data.login.decode(), encrypted))
        return AuthResult(success=valid, handled=False)  # handled=True: no 535 sent


@dataclass
class TlsServer:
    port: int
    sink: MailSink
    logins: Logins
    tls: TlsFiles


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return write_throwaway_tls(tmp_path_factory.mktemp("smtp-tls"), ["127.0.0.1", "localhost"])


def _server_context(tls: TlsFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.certificate, tls.key)
    return context


def _serve(tls: TlsFiles, **smtp: Any) -> Iterator[TlsServer]:
    server = TlsServer(free_port(), MailSink(), Logins(), tls)
    controller = Controller(
        server.sink,
        hostname="127.0.0.1",
        port=server.port,
        authenticator=server.logins,
        ready_timeout=10,
        **smtp,
    )
    controller.start()
    yield server
    controller.stop()


@pytest.fixture(scope="module")
def starttls_server(tls_files: TlsFiles) -> Iterator[TlsServer]:
    """Submission as providers run it: mail or a login before STARTTLS is refused."""
    yield from _serve(
        tls_files,
        tls_context=_server_context(tls_files),
        require_starttls=True,
        auth_require_tls=True,
    )


@pytest.fixture(scope="module")
def implicit_tls_server(tls_files: TlsFiles) -> Iterator[TlsServer]:
    # encrypted from the first byte (aiosmtpd's auth_require_tls knows only its own STARTTLS)
    yield from _serve(tls_files, ssl_context=_server_context(tls_files), auth_require_tls=False)


def _sender(server: TlsServer, tls: SmtpTls, **transport: Any) -> SmtpSender:
    options = {"username": USER, "password": PASSWORD, "ca_file": str(server.tls.ca)}
    return SmtpSender(
        "127.0.0.1", server.port, SENDER, transport=SmtpTransport(tls, **(options | transport))
    )


async def _send(sender: SmtpSender, to: str) -> None:
    try:
        await sender.send(to, RenderedMail("Your review", "Thank you.\n"), f"<{to}>")
    finally:
        await sender.close()


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_mail_is_sent_encrypted_after_a_login(
    tls: SmtpTls, starttls_server: TlsServer, implicit_tls_server: TlsServer
) -> None:
    server = starttls_server if tls == "starttls" else implicit_tls_server
    await _send(_sender(server, tls), f"pat-{tls}@example.com")
    assert server.sink.accepted[-1][1] == (f"pat-{tls}@example.com",)
    assert server.logins.accepted[-1] == (USER, True)


async def test_a_server_that_requires_starttls_refuses_the_plain_sender(
    starttls_server: TlsServer,
) -> None:
    with pytest.raises(aiosmtplib.SMTPException):
        await _send(_sender(starttls_server, "none", username=None), "plain@example.com")


async def test_a_wrong_password_is_refused(starttls_server: TlsServer) -> None:
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        await _send(_sender(starttls_server, "starttls", password="wrong"), "x@example.com")


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_a_server_certificate_no_trusted_ca_signed_is_refused(
    tls: SmtpTls, starttls_server: TlsServer, implicit_tls_server: TlsServer
) -> None:
    server = starttls_server if tls == "starttls" else implicit_tls_server
    sent_before = len(server.sink.accepted)
    with pytest.raises((aiosmtplib.SMTPException, ssl.SSLError)):
        await _send(_sender(server, tls, ca_file=None), "x@example.com")
    assert len(server.sink.accepted) == sent_before
