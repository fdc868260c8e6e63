"""Migrations are idempotent; pooled connections skip the reset only when they hold nothing; mail goes out through the real SMTP sink, surviving an outage."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from devtools.smtp_sink import body_text, start_sink
from shared.clock import SystemClock
from shared.crypto import PiiCipher
from shared.db import apply_migrations, create_pool, keeps_session_state
from shared.mailer import MailRelay, QueuedMail, RenderedMail, SmtpSender, enqueue_mails
from tests.conftest import free_port
from tests.integration.shared.conftest import PROBE_MIGRATIONS

pytestmark = pytest.mark.integration


async def test_migrations_run_twice_are_a_no_op(database_url) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}_migr"
    pool = await create_pool(database_url, schema)
    try:
        first = await apply_migrations(pool, schema, PROBE_MIGRATIONS)
        second = await apply_migrations(pool, schema, PROBE_MIGRATIONS)
        assert first == [
            "platform/0001_platform",
            "platform/0002_mail_outbox_order",
            "service/0001_probe",
        ]
        assert second == []
        concurrent = await asyncio.gather(
            *(apply_migrations(pool, schema, PROBE_MIGRATIONS) for _ in range(3))
        )
        assert concurrent == [[], [], []]
    finally:
        await pool.close()


async def test_a_released_connection_is_reset_only_when_it_kept_session_state(
    database_url,
) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}_reset"
    pool = await create_pool(database_url, schema, max_size=1)
    held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    try:
        async with pool.acquire() as conn:
            keeps_session_state(conn)
            await conn.execute("SELECT pg_advisory_lock(4242)")  # never unlocked, as if cancelled
        async with pool.acquire() as conn:  # the pool's only connection, reset on release
            assert await conn.fetchval(held) == 0
            tx = conn.transaction()
            await tx.start()
            await conn.execute("CREATE TEMPORARY TABLE left_open (n int) ON COMMIT DROP")
            # released inside a transaction: rolled back even though no reset query runs
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT to_regclass('pg_temp.left_open')") is None
            assert await conn.fetchval("SELECT current_schema()") == schema
            await conn.execute("SELECT pg_advisory_xact_lock(4243)")
            assert await conn.fetchval(held) == 0  # a transaction lock ends with its statement
    finally:
        await pool.close()


async def test_queued_mail_is_read_back_from_the_sink_after_an_outage(database_url) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}_mail"
    pool = await create_pool(database_url, schema)
    await apply_migrations(pool, schema, None)
    cipher = PiiCipher("test-key")
    port = free_port()
    relay = MailRelay(
        pool,
        cipher,
        SmtpSender("127.0.0.1", port, "ratings@test.example"),
        SystemClock(),
        service="test",
        poll_seconds=0.05,
    )
    to = f"client-{uuid.uuid4().hex[:6]}@example.com"
    mail = RenderedMail(
        subject="Your survey",
        text="Your PIN is 1234-5678-9ABC\n",
        html="<p>Your PIN is <b>1234-5678-9ABC</b></p>",
    )
    async with pool.acquire() as conn:
        assert await enqueue_mails(conn, cipher, [QueuedMail(to, mail, "k1")]) == {"k1"}
        assert await enqueue_mails(conn, cipher, [QueuedMail(to, mail, "k1")]) == set()
        sealed = await conn.fetchval("SELECT sealed FROM mail_outbox")
        assert b"1234-5678" not in bytes(sealed)
        assert to.encode() not in bytes(sealed)

    assert await relay.send_due() == 0  # nobody listens on the port yet
    async with pool.acquire() as conn:
        attempts, error = await conn.fetchrow("SELECT attempts, last_error FROM mail_outbox")
        assert attempts == 1
        assert error
        await conn.execute("UPDATE mail_outbox SET next_attempt_at = now()")

    controller, sink = start_sink(port=port)
    try:
        sink.bind_loop(asyncio.get_running_loop())
        assert await relay.send_due() == 1
        assert await relay.send_due() == 0
        received = await sink.wait_for(lambda m: to in str(m["To"]), timeout=5)
        assert received["Subject"] == "Your survey"
        assert "1234-5678-9ABC" in body_text(received)
        assert len(sink.to(to)) == 1
        async with pool.acquire() as conn:
            row = await conn.fetchrow("SELECT sealed, sent_at FROM mail_outbox")
            assert row["sealed"] is None
            assert row["sent_at"] is not None
    finally:
        await relay.sender.close()
        controller.stop()
        await pool.close()
