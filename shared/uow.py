"""The unit of work a handler, an HTTP route or a timer job runs in: one DB transaction in which
state, inbox, outbox events and queued mail commit together or not at all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
from pydantic import BaseModel

from shared.clock import Clock
from shared.cloudevents import Envelope
from shared.contracts import EventType
from shared.crypto import PiiCipher
from shared.inbox import first_delivery
from shared.mailer import QueuedMail, RenderedMail, mail_queue_insert
from shared.outbox import OutboxRow, insert_outbox_rows, outbox_insert, outbox_rows
from shared.tracing import published_trace


@dataclass
class UnitOfWork:
    conn: asyncpg.Connection
    now: datetime
    source: str
    cipher: PiiCipher
    envelope: Envelope | None = None
    published: int = 0
    mailed: int = 0
    _unwritten: list[OutboxRow] = field(default_factory=list, repr=False)
    _unqueued: list[QueuedMail] = field(default_factory=list, repr=False)

    async def first_delivery(self) -> bool:
        """Record the current event's id in the inbox; False if it was processed before."""
        if self.envelope is None:
            raise RuntimeError("only events have an id to deduplicate")
        return await first_delivery(self.conn, self.envelope.id, self.envelope.type)

    async def publish(
        self, event_type: EventType, data: BaseModel, *, ce_id: str | None = None
    ) -> str:
        """Publish with the transaction: the event is written to the outbox, with the others of
        this unit of work in one statement, just before the commit, and with the current trace
        context when tracing is on. Returns its `ce_id`."""
        (row,) = outbox_rows(
            event_type,
            [data],
            source=self.source,
            time=self.now,
            ce_ids=[ce_id],
            trace=published_trace(event_type.topic, 1),
        )
        self._unwritten.append(row)
        self.published += 1
        return row[2]

    async def publish_many(
        self,
        event_type: EventType,
        items: Sequence[BaseModel],
        *,
        ce_ids: Sequence[str] | None = None,
        payloads: Sequence[bytes] | None = None,
    ) -> int:
        """Many events of one type (batch consumers); written like `publish`'s, in order. Give
        `payloads` when the caller has the items as JSON already (`model_dump_json()` each)."""
        rows = outbox_rows(
            event_type,
            items,
            source=self.source,
            time=self.now,
            ce_ids=ce_ids,
            payloads=payloads,
            trace=published_trace(event_type.topic, len(items)) if items else None,
        )
        self._unwritten.extend(rows)
        self.published += len(rows)
        return len(rows)

    async def write_pending(self) -> None:
        """Write the events published and the mail queued so far, in one statement (the factory
        does, before it commits): on a request that does both, one round trip less."""
        rows, mails = self._unwritten, self._unqueued
        self._unwritten, self._unqueued = [], []
        if not mails:
            await insert_outbox_rows(self.conn, rows)
            return
        queue_mail, mail_arguments = mail_queue_insert(self.cipher, mails)
        statement = f"WITH queued AS ({queue_mail} RETURNING 1)"
        arguments = mail_arguments
        if rows:
            write_events, event_arguments = outbox_insert(rows, len(mail_arguments) + 1)
            statement += f", published AS ({write_events})"
            arguments = [*mail_arguments, *event_arguments]
        self.mailed += await self.conn.fetchval(
            f"{statement} SELECT count(*) FROM queued", *arguments
        )

    async def send_mail(
        self, *, to: str, mail: RenderedMail, dedupe_key: str, not_before: datetime | None = None
    ) -> None:
        await self.send_mails([QueuedMail(to, mail, dedupe_key, not_before)])

    async def send_mails(self, mails: Sequence[QueuedMail]) -> None:
        """Queue mail with the transaction, written like the outbox's events just before the
        commit; a dedupe key queued before (or twice here) is queued once."""
        self._unqueued.extend(mails)


@dataclass
class UnitOfWorkFactory:
    pool: asyncpg.Pool
    clock: Clock
    source: str
    cipher: PiiCipher

    @asynccontextmanager
    async def __call__(self, envelope: Envelope | None = None) -> AsyncIterator[UnitOfWork]:
        async with self.pool.acquire() as conn, conn.transaction():
            uow = UnitOfWork(conn, self.clock.now(), self.source, self.cipher, envelope)
            yield uow
            await uow.write_pending()
