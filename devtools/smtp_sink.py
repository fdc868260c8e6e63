"""A real SMTP server (aiosmtpd) for local runs and tests: stores each message as an `.eml` file
and logs one line per message. Run: `python -m devtools.smtp_sink --port 2525 --dir .local/mail`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

logger = logging.getLogger("smtp_sink")
_HEADERS = BytesHeaderParser(policy=email.policy.default)


@dataclass
class MailSink:
    """The aiosmtpd handler: keeps messages in memory and, given a folder, on disk.

    Accepting stays cheap (the raw bytes are kept; `messages` parses them on first use): a full
    parse costs about a millisecond a message, which would make the sink, not the service, the
    bottleneck of a throughput benchmark.
    """

    directory: Path | None = None
    port: int = 0
    raw: list[bytes] = field(default_factory=list)
    accepted: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)
    """(time.monotonic() at acceptance, recipients) per message: for latency measurements."""
    _parsed: list[EmailMessage] = field(default_factory=list)
    _parsing: threading.Lock = field(default_factory=threading.Lock)
    _arrived: asyncio.Condition | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    def messages(self) -> list[EmailMessage]:
        """Every message accepted so far, parsed.

        A method, not a property: aiosmtpd's `SMTP.__init__` reads every attribute of the
        handler (`inspect.getmembers`) at each new connection, and a property would parse every
        message there, in the server's thread (a fifth of the benchmark process's CPU).
        """
        with self._parsing:
            for raw in self.raw[len(self._parsed) :]:
                message = email.message_from_bytes(raw, policy=email.policy.default)
                assert isinstance(message, EmailMessage)
                self._parsed.append(message)
            return list(self._parsed)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.accepted.append((time.monotonic(), tuple(envelope.rcpt_tos)))
        raw = envelope.original_content or b""
        self.raw.append(raw)
        if self.directory is not None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            path = self.directory / f"{stamp}-{len(self.raw):06d}.eml"
            path.write_bytes(raw)
        if logger.isEnabledFor(logging.INFO):  # parsing the headers costs; benchmarks log less
            logger.info(
                "mail accepted to=%s subject=%r",
                ",".join(envelope.rcpt_tos),
                _HEADERS.parsebytes(raw).get("Subject", ""),
            )
        if self._loop is not None and self._arrived is not None:
            self._loop.call_soon_threadsafe(asyncio.ensure_future, self._notify())
        return "250 Message accepted for delivery"

    async def _notify(self) -> None:
        assert self._arrived is not None
        async with self._arrived:
            self._arrived.notify_all()

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Let coroutines on `loop` wait for messages (the server runs in its own thread)."""
        self._loop = loop
        self._arrived = asyncio.Condition()

    async def wait_for(
        self, predicate: Callable[[EmailMessage], bool], timeout: float = 20.0
    ) -> EmailMessage:
        """The first message (already received or arriving within `timeout`) matching it."""
        assert self._arrived is not None, "call bind_loop first"
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._arrived:
            while True:
                for message in self.messages():
                    if predicate(message):
                        return message
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    raise TimeoutError("no matching mail arrived")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), min(remaining, 0.5))

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages() if address.lower() in str(m.get("To", "")).lower()]


def body_text(message: EmailMessage) -> str:
    part: Any = message.get_body(preferencelist=("plain", "html"))
    return str(part.get_content()) if part is not None else ""


def start_sink(
    host: str = "127.0.0.1", port: int = 2525, directory: Path | None = None
) -> tuple[Controller, MailSink]:
    sink = MailSink(directory=directory, port=port)
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(sink, hostname=host, port=port, ready_timeout=10)
    controller.start()
    return controller, sink


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--dir", type=Path, default=Path(".local/mail"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s smtp-sink %(message)s")
    controller, _ = start_sink(args.host, args.port, args.dir)
    logger.info("listening on %s:%d, saving to %s", args.host, args.port, args.dir)
    stop = asyncio.Event()

    async def wait() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    try:
        asyncio.run(wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
