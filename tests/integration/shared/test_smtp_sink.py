"""The SMTP sink that tests and benchmarks read mail from must stay cheap to talk to."""

from __future__ import annotations

import email
from email.message import Message
from typing import Any

import aiosmtplib
import pytest

from devtools import smtp_ceiling
from devtools.smtp_sink import body_text, start_sink
from tests.conftest import free_port


async def test_a_new_connection_parses_none_of_the_mail_already_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aiosmtpd reads every attribute of the handler at each new connection; a parsing
    property there once cost the benchmark process a fifth of its CPU."""
    parsed: list[bytes] = []
    real_parse = email.message_from_bytes

    def counting_parse(raw: bytes, **kwargs: Any) -> Message:
        parsed.append(raw)
        return real_parse(raw, **kwargs)

    monkeypatch.setattr(email, "message_from_bytes", counting_parse)
    controller, sink = start_sink(port=free_port())
    try:
        for n in range(3):
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, start_tls=False)
            await client.connect()
            await client.sendmail(
                "a@test.example", [f"c{n}@test.example"], b"Subject: s\r\n\r\nx\r\n"
            )
            await client.quit()
        assert len(sink.accepted) == 3
        assert parsed == []
        assert [m["Subject"] for m in sink.messages()] == ["s", "s", "s"]
        assert len(parsed) == 3
    finally:
        controller.stop()


async def test_the_smtp_ceiling_benchmark_sends_the_services_invitation() -> None:
    """`make bench` reads the invitations email rate against this; it must send real mail."""
    controller, sink = start_sink(port=free_port())
    try:
        await smtp_ceiling.run(sink.port, count=5, connections=2)
        messages = sink.messages()
        assert sorted(str(m["To"]) for m in messages) == [
            f"client-{n}@bench.example" for n in range(5)
        ]
        assert len({m["Message-ID"] for m in messages}) == 5
        assert all("ABCD-EFGH-JKLM" in body_text(m) for m in messages)
    finally:
        controller.stop()
