"""Migrations are idempotent; pooled connections skip the reset only when they hold nothing; a
unit of work writes its events and mail in one statement, or nothing; mail goes out through the
real SMTP sink, surviving an outage."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller

from devtools.smtp_sink import MailSink, body_text, start_sink
from shared.clock import FixedClock, SystemClock
from shared.contracts import PARTICIPATION_CHANGED
from shared.crypto import PiiCipher
from shared.db import apply_migrations, create_pool, keeps_session_state
from shared.mailer import MailRelay, QueuedMail, RenderedMail, SmtpSender, mail_queue_insert
from shared.uow import UnitOfWorkFactory
from tests.conftest import free_port
from tests.integration.shared.conftest import PROBE_MIGRATIONS
from tests.support.builders import participation_changed

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


async def test_every_instant_a_contract_accepts_comes_back_from_the_database_aware(
    database_url,
) -> None:
    """asyncpg turns the calendar's first and last microseconds into -infinity and infinity
    and reads those back naive; the contracts refuse exactly those two (test_contracts)."""
    schema = f"t_{uuid.uuid4().hex[:10]}_instants"
    pool = await create_pool(database_url, schema)
    first, last = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    accepted = [first + timedelta(microseconds=1), last - timedelta(microseconds=1)]
    try:
        async with pool.acquire() as conn:
            refused = [await conn.fetchval("SELECT $1::timestamptz", v) for v in (first, last)]
            kept = [await conn.fetchval("SELECT $1::timestamptz", v) for v in accepted]
        assert [value.tzinfo for value in refused] == [None, None]  # why they are refused
        assert kept == accepted and all(value.tzinfo is not None for value in kept)
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


@pytest.mark.parametrize("events", [0, 2], ids=["mail only", "mail and events"])
async def test_a_unit_of_work_writes_its_events_and_mail_together_or_not_at_all(
    database_url, events: int
) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}_uow"
    pool = await create_pool(database_url, schema)
    await apply_migrations(pool, schema, None)
    cipher = PiiCipher("test-key")
    unit_of_work = UnitOfWorkFactory(
        pool, FixedClock(datetime(2026, 11, 2, tzinfo=UTC)), "test", cipher
    )
    mail = RenderedMail(subject="Hello", text="Hi\n", template="probe")
    stored = "SELECT array_agg(dedupe_key ORDER BY id) FROM mail_outbox"
    sent_events = "SELECT array_agg(message_key ORDER BY id) FROM outbox"
    try:
        async with pool.acquire() as conn:
            assert await enqueue_mails(conn, cipher, [QueuedMail("a@x.example", mail, "old")])

        async def failing_handler() -> None:
            async with unit_of_work() as uow:
                await uow.publish(
                    PARTICIPATION_CHANGED,
                    participation_changed("A-0", changed_at=datetime(2026, 11, 1, tzinfo=UTC)),
                )
                await uow.send_mail(to="b@x.example", mail=mail, dedupe_key="rolled-back")
                raise RuntimeError("the handler failed")

        with pytest.raises(RuntimeError):
            await failing_handler()
        async with unit_of_work() as uow:
            for n in range(events):
                await uow.publish(
                    PARTICIPATION_CHANGED,
                    participation_changed(
                        f"A-{n + 1}", changed_at=datetime(2026, 11, 1, tzinfo=UTC)
                    ),
                )
            await uow.send_mail(to="c@x.example", mail=mail, dedupe_key="new-1")
            await uow.send_mails(
                [
                    QueuedMail("a@x.example", mail, "old"),  # queued before: skipped
                    QueuedMail("d@x.example", mail, "new-2"),
                    QueuedMail("d@x.example", mail, "new-2"),  # twice here: once
                ]
            )
            async with pool.acquire() as other:  # nothing is visible before the commit
                assert await other.fetchval(stored) == ["old"]
        assert uow.mailed == 2
        assert uow.published == events
        async with pool.acquire() as conn:
            assert await conn.fetchval(stored) == ["old", "new-1", "new-2"]
            keys = await conn.fetchval(sent_events)
            assert keys == ([f"A-{n + 1}" for n in range(events)] or None)
    finally:
        await pool.close()


async def mail_schema_and_relay(
    database_url: str, cipher: PiiCipher, port: int
) -> tuple[asyncpg.Pool, MailRelay]:
    """A fresh schema with the platform's mail outbox, and a relay sending to `port`."""
    schema = f"t_{uuid.uuid4().hex[:10]}_mail"
    pool = await create_pool(database_url, schema)
    await apply_migrations(pool, schema, None)
    sender = SmtpSender("127.0.0.1", port, "ratings@test.example")
    return pool, MailRelay(pool, cipher, sender, SystemClock(), service="test", poll_seconds=0.05)


async def test_queued_mail_is_read_back_from_the_sink_after_an_outage(database_url) -> None:
    cipher, port = PiiCipher("test-key"), free_port()
    pool, relay = await mail_schema_and_relay(database_url, cipher, port)
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


async def enqueue_mails(
    conn: asyncpg.Connection, cipher: PiiCipher, mails: list[QueuedMail]
) -> set[str]:
    """Queue mails as a unit of work does; the dedupe keys queued now."""
    insert, arguments = mail_queue_insert(cipher, mails)
    rows = await conn.fetch(insert + " RETURNING dedupe_key", *arguments)
    return {row["dedupe_key"] for row in rows}


class SlowSink(MailSink):
    """Takes each message only after `delay` seconds, saying when one is being taken."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.taking = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.taking.set()
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


async def test_a_relay_stopped_while_the_server_takes_a_mail_marks_it_sent(database_url) -> None:
    """A graceful stop mid-round lets the round end: the mail the server is taking is marked
    sent, so no other instance sends it again (a cancelled round would roll the mark back)."""
    cipher, port, sink = PiiCipher("test-key"), free_port(), SlowSink(delay=1.0)
    pool, relay = await mail_schema_and_relay(database_url, cipher, port)
    controller = Controller(sink, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    mail = RenderedMail(subject="Your survey", text="PIN\n", html="<p>PIN</p>")
    task = asyncio.create_task(relay.run())
    try:
        async with pool.acquire() as conn:
            await enqueue_mails(conn, cipher, [QueuedMail("c@example.com", mail, "k1")])
        relay.wakeup.set()
        assert await asyncio.to_thread(sink.taking.wait, 10)
        relay.stop()
        await asyncio.wait_for(task, timeout=10)
        assert len(sink.raw) == 1
        async with pool.acquire() as conn:
            assert (
                await conn.fetchval("SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL") == 0
            )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        controller.stop()
        await pool.close()
