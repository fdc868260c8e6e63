"""Email: Jinja2 templates, an encrypted mail outbox, and a relay that sends it over SMTP.

Mail is queued in the handler's transaction (so a rolled-back decision sends nothing) and sent
by a relay with exponential backoff while the SMTP server is down. The queued message is
encrypted (it holds a client address and sometimes a PIN) and its content erased once sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from shared.clock import Clock
from shared.crypto import PiiCipher
from shared.metrics import MAIL_FAILURES, MAIL_SENT
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
        self.text_env = Environment(
            loader=FileSystemLoader(directory),
            undefined=StrictUndefined,
            autoescape=False,  # noqa: S701 - plain-text parts; HTML parts use html_env
            keep_trailing_newline=True,
        )
        self.html_env = Environment(
            loader=FileSystemLoader(directory),
            undefined=StrictUndefined,
            autoescape=select_autoescape(default=True, default_for_string=True),
        )

    def render(self, name: str, **context: Any) -> RenderedMail:
        subject = self.text_env.get_template(f"{name}.subject.j2").render(**context).strip()
        text = self.text_env.get_template(f"{name}.txt.j2").render(**context)
        html = None
        if (self.directory / f"{name}.html.j2").exists():
            html = self.html_env.get_template(f"{name}.html.j2").render(**context)
        return RenderedMail(subject=subject, text=text, html=html, template=name)


async def enqueue_mail(
    conn: asyncpg.Connection,
    cipher: PiiCipher,
    *,
    to: str,
    mail: RenderedMail,
    dedupe_key: str,
    not_before: datetime | None = None,
) -> bool:
    """Queue one email in the caller's transaction; False if `dedupe_key` was queued before."""
    sealed = cipher.encrypt(
        json.dumps(
            {
                "to": to,
                "subject": mail.subject,
                "text": mail.text,
                "html": mail.html,
                "headers": list(mail.headers),
            }
        )
    )
    inserted = await conn.fetchval(
        """INSERT INTO mail_outbox (dedupe_key, recipient_index, sealed, template, next_attempt_at)
           VALUES ($1, $2, $3, $4, COALESCE($5, now()))
           ON CONFLICT (dedupe_key) DO NOTHING RETURNING true""",
        dedupe_key,
        cipher.blind_index(to),
        sealed,
        mail.template,
        not_before,
    )
    return bool(inserted)


class SmtpSender:
    """Sends over one pooled SMTP connection, reconnecting when the server drops it."""

    def __init__(self, host: str, port: int, sender: str, *, timeout: float = 10.0) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout
        self._client: aiosmtplib.SMTP | None = None

    async def send(self, to: str, mail: RenderedMail, message_id: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = mail.subject
        message["Message-ID"] = message_id
        for name, value in mail.headers:
            message[name] = value
        message.set_content(mail.text)
        if mail.html:
            message.add_alternative(mail.html, subtype="html")
        for attempt in (1, 2):
            client = await self._connected()
            try:
                await client.send_message(message)
                return
            except aiosmtplib.SMTPServerDisconnected:
                self._client = None
                if attempt == 2:
                    raise

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is None or not self._client.is_connected:
            client = aiosmtplib.SMTP(
                hostname=self.host, port=self.port, timeout=self.timeout, start_tls=False
            )
            await client.connect()
            self._client = client
        return self._client

    async def close(self) -> None:
        if self._client is not None and self._client.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException):
                await self._client.quit()
        self._client = None


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

    async def run(self) -> None:
        try:
            while True:
                try:
                    sent = await self.send_due()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    logger.warning("mail relay: database unavailable", exc_info=True)
                    sent = 0
                if sent == 0:
                    self.wakeup.clear()
                    await wait_event(self.wakeup, self.poll_seconds)
        finally:
            await self.sender.close()

    async def send_due(self) -> int:
        """Send what is due now (real time: retries are about the SMTP server, not business time).

        One row per transaction, locked with SKIP LOCKED, so instances never send the same mail.
        """
        sent = 0
        while sent < self.batch_size:
            async with self.pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    """SELECT id, sealed, attempts FROM mail_outbox
                       WHERE sent_at IS NULL AND next_attempt_at <= now()
                       ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"""
                )
                if row is None:
                    return sent
                if not await self._send_row(conn, row):
                    return sent  # the server is likely down: wait for the next round
                sent += 1
        return sent

    async def _send_row(self, conn: asyncpg.Connection, row: asyncpg.Record) -> bool:
        content = json.loads(self.cipher.decrypt(bytes(row["sealed"])))
        mail = RenderedMail(
            subject=content["subject"],
            text=content["text"],
            html=content["html"],
            headers=tuple((name, value) for name, value in content.get("headers", [])),
        )
        message_id = make_msgid(idstring=f"{self.service}.{row['id']}", domain="ratings.local")
        try:
            await self.sender.send(content["to"], mail, message_id)
        except (aiosmtplib.SMTPException, OSError) as exc:
            MAIL_FAILURES.labels(self.service).inc()
            delay = timedelta(seconds=min(3600, 2 ** min(row["attempts"], 12)))
            await conn.execute(
                """UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2,
                       next_attempt_at = now() + $3 WHERE id = $1""",
                row["id"],
                f"{type(exc).__name__}: {exc}"[:500],
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
            return False
        await conn.execute(
            "UPDATE mail_outbox SET sent_at = $2, sealed = NULL, attempts = attempts + 1 "
            "WHERE id = $1",
            row["id"],
            self.clock.now(),
        )
        MAIL_SENT.labels(self.service).inc()
        return True
