"""Email: Jinja2 templates, an encrypted mail outbox, and a relay that sends it over SMTP.

Mail is queued in the handler's transaction (so a rolled-back decision sends nothing) and sent
by a relay with exponential backoff while the SMTP server is down. The queued message is
encrypted (it holds a client address and sometimes a PIN) and its content erased once sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import hashlib
import json
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import formataddr, parseaddr
from functools import cache
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg

from shared.clock import Clock
from shared.crypto import PiiCipher
from shared.metrics import MAIL_FAILURES, MAIL_SENT
from shared.settings import SmtpTls
from shared.templating import shipped_templates
from shared.tracing import sending_mail, trace_headers
from shared.waiting import wait_event

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str | None = None
    template: str = "custom"
    headers: tuple[tuple[str, str], ...] = ()


class Templates:
    """`render("name", **ctx)` reads `name.subject.j2`, `name.txt.j2` and optional `name.html.j2`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # plain-text parts are not escaped; HTML parts use html_env
        self.text_env = shipped_templates(directory, html=False, keep_trailing_newline=True)
        self.html_env = shipped_templates(directory)

    def render(self, name: str, **context: Any) -> RenderedMail:
        subject = self.text_env.get_template(f"{name}.subject.j2").render(**context).strip()
        text = self.text_env.get_template(f"{name}.txt.j2").render(**context)
        html = None
        if (self.directory / f"{name}.html.j2").exists():
            html = self.html_env.get_template(f"{name}.html.j2").render(**context)
        return RenderedMail(subject=subject, text=text, html=html, template=name)


@dataclass(frozen=True)
class QueuedMail:
    """One email to queue: `dedupe_key` makes queueing it again a no-op."""

    to: str
    mail: RenderedMail
    dedupe_key: str
    not_before: datetime | None = None


def mail_queue_insert(
    cipher: PiiCipher, mails: Sequence[QueuedMail], first_parameter: int = 1
) -> tuple[str, list[Any]]:
    """The INSERT that queues `mails` and its arguments, numbered from `first_parameter` so that
    it can run beside another statement's, as one (see `shared.uow`). With tracing on, each mail
    carries the current trace context, sealed with it, so that its SMTP send joins the trace."""
    trace = trace_headers()
    sealed = [
        cipher.encrypt(
            json.dumps(
                {
                    "to": queued.to,
                    "subject": queued.mail.subject,
                    "text": queued.mail.text,
                    "html": queued.mail.html,
                    "headers": list(queued.mail.headers),
                    **({"trace": trace} if trace else {}),
                }
            )
        )
        for queued in mails
    ]
    k, r, s, t, n = (f"${first_parameter + offset}" for offset in range(5))
    insert = f"""INSERT INTO mail_outbox (dedupe_key, recipient_index, sealed, template,
                                          next_attempt_at)
           SELECT k, r, s, t, COALESCE(n, now())
             FROM unnest({k}::text[], {r}::text[], {s}::bytea[], {t}::text[],
                         {n}::timestamptz[])
                  WITH ORDINALITY AS m(k, r, s, t, n, position)
            ORDER BY position
           ON CONFLICT (dedupe_key) DO NOTHING"""
    arguments: list[Any] = [
        [queued.dedupe_key for queued in mails],
        [cipher.blind_index(queued.to) for queued in mails],
        sealed,
        [queued.mail.template for queued in mails],
        [queued.not_before for queued in mails],
    ]
    return insert, arguments


async def forget_mail_to(conn: asyncpg.Connection, recipient_indexes: Sequence[str]) -> int:
    """Erasure: mail not yet sent to these addresses (blind indexes) is dropped, in the caller's
    transaction, and the last SMTP error of mail sent to them (a server may quote the address)
    is cleared; sent mail kept nothing else. The number of unsent mails dropped."""
    dropped = await conn.fetchval(
        """WITH dropped AS (DELETE FROM mail_outbox
                             WHERE recipient_index = ANY($1::text[]) AND sent_at IS NULL
                             RETURNING 1)
           SELECT count(*) FROM dropped""",
        list(recipient_indexes),
    )
    await conn.execute(
        "UPDATE mail_outbox SET last_error = NULL "
        "WHERE recipient_index = ANY($1::text[]) AND last_error IS NOT NULL",
        list(recipient_indexes),
    )
    return int(dropped)


def mime_message(sender: str, to: str, mail: RenderedMail, message_id: str) -> bytes:
    """The message as SMTP sends it (CRLF line ends).

    Built with the compat32 classes: the header-parsing `EmailMessage` API cost about 0.9 ms a
    message, a third of the relay's time under load, against 0.3 ms here. Those classes do not
    refuse line breaks in header values, so every value is put on one line first.
    """
    body = _text_part(mail.text, "plain")
    message: Message = body
    if mail.html:
        message = MIMEMultipart("alternative")
        message.attach(body)
        message.attach(_text_part(mail.html, "html"))
    headers = [
        ("From", _from_header(sender)),
        ("To", to),
        ("Subject", mail.subject),
        ("Message-ID", message_id),
        *mail.headers,
    ]
    for name, value in headers:
        one_line = " ".join(value.splitlines())
        message[name] = one_line if one_line.isascii() else Header(one_line, "utf-8").encode()
    return message.as_bytes(policy=_SMTP_COMPAT32)


def stable_message_id(dedupe_key: str, service: str, sender: str) -> str:
    """The same Message-ID every time this mail is sent: a copy resent after a crash (between the
    server's acceptance and the commit) is then recognisable, and mail systems drop it. Derived
    from the dedupe key, which names the mail's purpose, not from a row id a rebuilt database
    would reuse."""
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]
    return f"<{digest}.{service}@{_sender_domain(sender)}>"


@cache
def _from_header(sender: str) -> str:
    """The From header of `sender` (one per service: parsed once, not per mail)."""
    return formataddr(parseaddr(sender), "utf-8")


@cache
def _sender_domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "localhost"


_SMTP_COMPAT32 = email.policy.compat32.clone(linesep="\r\n")
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP  # readable in a mail file, unlike base64


def _text_part(text: str, subtype: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype)
    part.set_payload(text, _UTF8_QP)
    return part


@dataclass(frozen=True)
class MailQueueState:
    due: int
    """Unsent emails whose time has come: the relay should be sending them now."""
    waiting: int
    """Unsent emails not due yet (a failed attempt's back-off, or a later send time)."""
    oldest_due_seconds: float
    """How long the longest-due of them has been due (0 when none is)."""


async def mail_queue_state(conn: asyncpg.Connection) -> MailQueueState:
    """The mail queue's depth, by the database's clock (the one the relay picks due rows by)."""
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE next_attempt_at <= now()) AS due,
                  count(*) FILTER (WHERE next_attempt_at > now()) AS waiting,
                  COALESCE(EXTRACT(EPOCH FROM now() - min(next_attempt_at)), 0)::float8 AS oldest
             FROM mail_outbox WHERE sent_at IS NULL"""
    )
    return MailQueueState(int(row["due"]), int(row["waiting"]), max(0.0, float(row["oldest"])))


@dataclass(frozen=True)
class SmtpTransport:
    """How the sender reaches its SMTP server: in the clear, upgraded with STARTTLS, or over TLS
    from the first byte (implicit, port 465); the server's certificate is verified against
    `ca_file` (default: the system's CAs) with its host name; a login if `username` is set."""

    tls: SmtpTls = "none"
    username: str | None = None
    password: str = ""
    ca_file: str | None = None

    def client_options(self) -> dict[str, Any]:
        """aiosmtplib.SMTP's keyword arguments (its login happens on connect)."""
        # "none" means none: no opportunistic STARTTLS that would fail on a certificate
        options: dict[str, Any] = {
            "use_tls": self.tls == "implicit",
            "start_tls": self.tls == "starttls",
        }
        if self.tls != "none":
            options["tls_context"] = ssl.create_default_context(cafile=self.ca_file)
        if self.username:
            options |= {"username": self.username, "password": self.password}
        return options


class SmtpSender:
    """A pool of SMTP connections (`connections` mails in flight at once), each reconnected when
    the server drops it."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        timeout: float = 10.0,
        connections: int = 1,
        transport: SmtpTransport | None = None,
    ) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout
        self.connections = connections
        self._client_options = (transport or SmtpTransport()).client_options()
        self._return_path = parseaddr(sender)[1] or sender
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[aiosmtplib.SMTP] = []

    async def send(self, to: str, mail: RenderedMail, message_id: str) -> None:
        raw = mime_message(self.sender, to, mail, message_id)
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            for attempt in (1, 2):
                if client is None or not client.is_connected:
                    client = await self._connect()
                try:
                    await client.sendmail(self._return_path, [to], raw)
                except aiosmtplib.SMTPServerDisconnected:
                    client = None
                    if attempt == 2:
                        raise
                    continue
                except BaseException:
                    client.close()  # a refusal or a timeout may leave it mid-dialogue
                    raise
                self._idle.append(client)
                return

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self.host, port=self.port, timeout=self.timeout, **self._client_options
        )
        await client.connect()
        return client

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            if client.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException):
                    await client.quit()


MAILS_PER_CONNECTION = 4
"""A mail relay round's mails per SMTP connection (what a crash mid-round may send twice)."""


class MailRelay:
    """Sends due mail_outbox rows; failures back off exponentially (max 1 hour), never give up."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        cipher: PiiCipher,
        sender: SmtpSender,
        clock: Clock,
        *,
        service: str,
        poll_seconds: float = 0.5,
        batch_size: int = 100,
    ) -> None:
        self.pool, self.cipher, self.sender, self.clock = pool, cipher, sender, clock
        self.service = service
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.wakeup = asyncio.Event()
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        """End `run` after the round in flight. A round's mails are marked sent in the round's
        own transaction: cancelling it after the server took them rolls the marks back, and
        another instance sends them again (a graceful stop must not double a mail)."""
        self.stopping.set()
        self.wakeup.set()

    async def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.wakeup.clear()  # before looking: a ring during the round is kept
                try:
                    sent = await self.send_due()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    logger.warning("mail relay: database unavailable", exc_info=True)
                    sent = 0
                except Exception:
                    # anything else must not end the relay either: no mail would leave this
                    # instance again (a database restart can surface asyncpg's
                    # InternalClientError, which is none of the above)
                    logger.exception("mail relay: round failed; retrying")
                    sent = 0
                if sent == 0:
                    await wait_event(self.wakeup, self.poll_seconds)
        finally:
            await self.sender.close()

    async def send_due(self) -> int:
        """Send what is due now (real time: retries are about the SMTP server, not business time).

        Each round locks up to `MAILS_PER_CONNECTION` due rows per SMTP connection (SKIP
        LOCKED, so instances never send the same mail), sends them over every connection at
        once, and marks them in the same transaction: a crash between the server's acceptance
        and the commit can send the mails of that round twice, never lose one. A round of one
        mail per connection waited for its slowest mail and paid four database round trips per
        handful of mails (issue 27: the service sent 0.74x what a bare loop sent). Stops at
        `batch_size`, when nothing is due, or when the server refuses (it is likely down).
        """
        sent = 0
        while sent < self.batch_size and not self.stopping.is_set():
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    """SELECT id, dedupe_key, sealed, attempts FROM mail_outbox
                       WHERE sent_at IS NULL AND next_attempt_at <= now()
                       ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED""",
                    self.sender.connections * MAILS_PER_CONNECTION,
                )
                if not rows:
                    return sent
                errors = await asyncio.gather(*(self._deliver(row) for row in rows))
                delivered = [
                    row["id"] for row, error in zip(rows, errors, strict=True) if not error
                ]
                if delivered:
                    await conn.execute(
                        "UPDATE mail_outbox SET sent_at = $2, sealed = NULL, "
                        "attempts = attempts + 1 WHERE id = ANY($1::bigint[])",
                        delivered,
                        self.clock.now(),
                    )
                    MAIL_SENT.labels(self.service).inc(len(delivered))
                    sent += len(delivered)
                for row, error in zip(rows, errors, strict=True):
                    if error:
                        await self._back_off(conn, row, error)
                if len(delivered) < len(rows):
                    return sent
        return sent

    async def _deliver(self, row: asyncpg.Record) -> BaseException | None:
        """Send one row's mail; the error if the server did not take it."""
        content = json.loads(self.cipher.decrypt(bytes(row["sealed"])))
        mail = RenderedMail(
            subject=content["subject"],
            text=content["text"],
            html=content["html"],
            headers=tuple((name, value) for name, value in content.get("headers", [])),
        )
        message_id = stable_message_id(row["dedupe_key"], self.service, self.sender.sender)
        try:
            with sending_mail(content.get("trace"), self.sender.host, self.sender.port):
                await self.sender.send(content["to"], mail, message_id)
        except (aiosmtplib.SMTPException, OSError) as exc:
            return exc
        return None

    async def _back_off(
        self, conn: asyncpg.Connection, row: asyncpg.Record, error: BaseException
    ) -> None:
        MAIL_FAILURES.labels(self.service).inc()
        delay = timedelta(seconds=min(3600, 2 ** min(row["attempts"], 12)))
        await conn.execute(
            """UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2,
                   next_attempt_at = now() + $3 WHERE id = $1""",
            row["id"],
            f"{type(error).__name__}: {error}"[:500],
            delay,
        )
        logger.warning(
            "mail not accepted; will retry",
            extra={
                "mail_id": row["id"],
                "attempts": row["attempts"] + 1,
                "retry_in_seconds": delay.total_seconds(),
            },
        )
