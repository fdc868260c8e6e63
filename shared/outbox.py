"""Transactional outbox: events are written in the handler's DB transaction and relayed to Kafka.

Exactly once on the topic, across relay crashes: one relay per service (a PostgreSQL advisory
lock elects it; a Kafka transactional id fences a stale one) numbers the rows it picks up
(`relay_seq`, gap-free because only the relay assigns it) and publishes them in a Kafka
transaction that also commits the relay's cursor as a consumer-group offset on
`OUTBOX_CURSOR_TOPIC`. Messages and cursor commit together or not at all, so on restart the
relay resumes exactly after the last committed row, whatever PostgreSQL had recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from pydantic import BaseModel

from shared.cloudevents import binary_headers
from shared.contracts import EventType
from shared.db import keeps_session_state
from shared.kafka_security import Kafka, kafka_client_options
from shared.settings import ServiceSettings
from shared.topics import OUTBOX_CURSOR_TOPIC
from shared.waiting import wait_event

logger = logging.getLogger(__name__)


OutboxRow = tuple[str, str, str, str, str, bytes]
"""(topic, message key, ce_id, ce_type, headers as JSON, payload): one event as the relay sends it."""


def outbox_rows(
    event_type: EventType,
    items: Sequence[BaseModel],
    *,
    source: str,
    time: datetime,
    ce_ids: Sequence[str | None] | None = None,
    payloads: Sequence[bytes] | None = None,
    trace: Mapping[str, str] | None = None,
) -> list[OutboxRow]:
    """The events encoded as outbox rows, as `encode` would write each. Give a deterministic
    `ce_id` when the same decision may be taken twice (a retried job): the unique constraint
    then keeps one row. Give `payloads` (each item's `model_dump_json()`) when the caller has
    them already, and `trace` (`ce_traceparent`, `ce_tracestate`: `shared.tracing`) to send the
    publisher's trace context with every row.

    The headers every row of a batch shares are serialised once; a row adds its `ce_id` (the
    JSON dump and the header dict a row cost 6 % of the scoring service's samples)."""
    ids: Sequence[str | None] = ce_ids if ce_ids is not None else [None] * len(items)
    shared = binary_headers(event_type.ce_type, source=source, ce_id="", time=time)
    del shared["ce_id"]
    common = {name: value.decode() for name, value in shared.items()}
    if trace:
        common.update(trace)
    rest = json.dumps(common)[1:]
    model, key_field, topic = event_type.model, event_type.key_field, event_type.topic
    dumped: Sequence[bytes | None] = payloads if payloads is not None else [None] * len(items)
    rows = []
    # strict: a ce_id or payload list of another length is refused
    for data, given_id, given_payload in zip(items, ids, dumped, strict=True):
        if type(data) is not model and not isinstance(data, model):
            raise TypeError(f"{event_type.ce_type} carries {model.__name__}")
        ce_id = given_id or str(uuid.uuid4())
        headers = f'{{"ce_id": {json.dumps(ce_id)}, {rest}'
        payload = given_payload if given_payload is not None else data.model_dump_json().encode()
        rows.append(
            (topic, str(getattr(data, key_field)), ce_id, event_type.ce_type, headers, payload)
        )
    return rows


async def prune_published(pool: asyncpg.Pool, older_than: timedelta, batch: int = 5000) -> int:
    """Delete outbox rows published more than `older_than` ago, a batch per statement; returns
    how many. Once on Kafka a row serves no purpose (the relay's cursor is on Kafka too), and
    kept it would grow the table for ever and keep client text an erasure must otherwise find."""
    deleted = 0
    while True:
        async with pool.acquire() as conn:
            status = await conn.execute(
                """
                DELETE FROM outbox WHERE id IN (
                    SELECT id FROM outbox
                     WHERE published_at < now() - $1::interval ORDER BY id LIMIT $2)
                """,
                older_than,
                batch,
            )
        count = int(status.split()[-1])
        deleted += count
        if count < batch:
            return deleted


async def insert_outbox_rows(conn: asyncpg.Connection, rows: Sequence[OutboxRow]) -> None:
    """Write rows to the outbox in the caller's transaction, in order, in one statement
    (executemany costs the server a statement per row); a ce_id already there is skipped."""
    if rows:
        insert, arguments = outbox_insert(rows)
        await conn.execute(insert, *arguments)


def outbox_insert(rows: Sequence[OutboxRow], first_parameter: int = 1) -> tuple[str, list[Any]]:
    """The INSERT that writes `rows` and its arguments, numbered from `first_parameter` so that
    it can run beside another statement's, as one (see `shared.uow`)."""
    p = [f"${first_parameter + offset}" for offset in range(6)]
    insert = f"""
    INSERT INTO outbox (topic, message_key, ce_id, ce_type, headers, payload)
    SELECT topic, message_key, ce_id, ce_type, headers::jsonb, payload
      FROM unnest({p[0]}::text[], {p[1]}::text[], {p[2]}::text[], {p[3]}::text[], {p[4]}::text[],
                  {p[5]}::bytea[])
           WITH ORDINALITY AS r(topic, message_key, ce_id, ce_type, headers, payload, n)
     ORDER BY n
    ON CONFLICT (ce_id) DO NOTHING"""
    return insert, [list(column) for column in zip(*rows, strict=True)]


async def outbox_state(conn: asyncpg.Connection) -> tuple[int, float]:
    """Rows not yet published, and the age in seconds of the oldest of them (0 when none waits),
    by the database's clock (the one that stamped `created_at`). Asked of the table rather than
    the relay: a standby instance's relay knows nothing, and rows not yet numbered are unknown
    to any relay until it picks them up."""
    row = await conn.fetchrow(
        """SELECT count(*) AS backlog,
                  COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS oldest
             FROM outbox WHERE published_at IS NULL"""
    )
    return int(row["backlog"]), max(0.0, float(row["oldest"]))


STOP_TIMEOUT_SECONDS = 10.0
RETRY_BACKOFF_MS = 20
"""The wait before a refused produce is retried; aiokafka's own pause between transactions."""


class OutboxRelay:
    """Moves outbox rows to Kafka. Run one per service instance; only the lock holder relays."""

    CURSOR_PARTITION = TopicPartition(OUTBOX_CURSOR_TOPIC, 0)

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        kafka: Kafka,
        relay_name: str,
        poll_seconds: float = 0.2,
        batch_size: int = 500,
        linger_seconds: float = 0.0,
        producer_factory: Callable[..., AIOKafkaProducer] = AIOKafkaProducer,
    ) -> None:
        self.pool = pool
        self.kafka = kafka
        self.relay_name = relay_name
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.linger_seconds = linger_seconds
        """After a part batch, while events keep coming: a Kafka transaction costs five round
        trips whatever its size, and one an HTTP request made it cost more than the request."""
        self.producer_factory = producer_factory
        self.group_id = f"outbox-relay.{relay_name}"
        self.relayed = 0
        self.cursor = 1
        self.next_seq = 1
        """The relay_seq the next new row gets (gap-free: advanced only by committed numbering)."""
        self.caught_up = False
        """Whether every row numbered before this leadership began is published and marked."""
        self.wakeup = asyncio.Event()

    @classmethod
    def for_service(
        cls, pool: asyncpg.Pool, settings: ServiceSettings, *, poll_seconds: float | None = None
    ) -> OutboxRelay:
        """The relay of the service `settings` configure, wherever it is built (the service, the
        scoring replay): the same name, so the same Kafka cursor, and the same batching."""
        return cls(
            pool,
            kafka=settings,
            relay_name=f"{settings.service_name}.{settings.db_schema}",
            poll_seconds=settings.outbox_poll_seconds if poll_seconds is None else poll_seconds,
            batch_size=settings.outbox_batch_size,
            linger_seconds=settings.outbox_linger_seconds,
        )

    async def run(self) -> None:
        """Relay until cancelled; on errors, back off and start over (the cursor makes it safe)."""
        backoff = 0.5
        while True:
            try:
                await self._run_as_leader()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception(
                    "outbox relay failed; restarting", extra={"relay": self.relay_name}
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _run_as_leader(self) -> None:
        async with self.pool.acquire() as lock_conn:
            keeps_session_state(lock_conn)
            # a standby instance polls the lock: PostgreSQL cannot notify its release
            while not await lock_conn.fetchval(  # noqa: ASYNC110
                "SELECT pg_try_advisory_lock(hashtext($1))", self.group_id
            ):
                await asyncio.sleep(1.0)
            try:
                producer = self._new_producer()
                try:
                    # inside: a start that cannot bootstrap leaves a client to close too
                    await producer.start()
                    self.cursor = await self._committed_cursor()
                    await self._recover(self.cursor)
                    await self._relay_rounds(producer)
                finally:
                    # a send stuck on a missing topic would otherwise hold shutdown for the
                    # producer's full delivery timeout; the cursor makes an abandoned batch safe
                    try:
                        async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                            await producer.stop()
                    except TimeoutError:
                        logger.warning(
                            "outbox producer did not stop in time", extra={"relay": self.relay_name}
                        )
            finally:
                await lock_conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self.group_id)

    def _new_producer(self) -> AIOKafkaProducer:
        """The transactional producer of one leadership (its id fences a stale leader)."""
        return self.producer_factory(
            **kafka_client_options(self.kafka),
            transactional_id=self.group_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            # Kafka 4 verifies a transaction's partitions on produce; one that arrives
            # while the previous commit's markers are still being written is refused
            # with a retriable NOT_ENOUGH_REPLICAS, and aiokafka waits retry_backoff_ms
            # before it retries: at the default 100 ms that stall was the relay's p99
            retry_backoff_ms=RETRY_BACKOFF_MS,
            # a relay batch's rows for one partition fit one producer batch (default
            # 16 KiB, ~35 ratings): send() then never waits for the sender task's turn
            max_batch_size=512 * 1024,
            client_id=self.group_id,
        )

    async def _relay_rounds(self, producer: AIOKafkaProducer) -> None:
        """Relay batch after batch; when one finds nothing, wait for a ring (the first event
        after a quiet spell goes at once) or `poll_seconds`.

        The bell is cleared before each batch looks, not after: a commit that rings while a
        batch finds nothing is then still heard, where clearing after the batch slept through
        it for up to `poll_seconds`.
        """
        while True:
            self.wakeup.clear()
            moved = await self._relay_batch(producer)
            if moved == 0:
                await wait_event(self.wakeup, self.poll_seconds)
            elif moved < self.batch_size:
                await asyncio.sleep(self.linger_seconds)

    async def _committed_cursor(self) -> int:
        """The next relay_seq to publish, as committed to Kafka with the last transaction."""
        consumer = AIOKafkaConsumer(
            **kafka_client_options(self.kafka),
            group_id=self.group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        try:
            await consumer.start()
            committed = await consumer.committed(self.CURSOR_PARTITION)
        finally:
            await consumer.stop()
        return int(committed) if committed is not None else 1

    async def _recover(self, cursor: int) -> None:
        """Rows below the Kafka cursor were published, even if PostgreSQL never heard of it."""
        async with self.pool.acquire() as conn:
            fixed = await conn.execute(
                """UPDATE outbox SET published_at = now()
                   WHERE published_at IS NULL AND relay_seq IS NOT NULL AND relay_seq < $1""",
                cursor,
            )
            # never hand out a relay_seq at or below the cursor again
            last_seq = await conn.fetchval(
                "SELECT setval('outbox_relay_seq', GREATEST($1 - 1, "
                "(SELECT COALESCE(MAX(relay_seq), 0) FROM outbox), 1))",
                cursor,
            )
        self.next_seq = last_seq + 1
        self.caught_up = False
        logger.info(
            "outbox relay leading",
            extra={"relay": self.relay_name, "cursor": cursor, "recovered": fixed},
        )

    async def _relay_batch(self, producer: AIOKafkaProducer) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            rows: list[asyncpg.Record] = []
            if not self.caught_up:
                # after a (re)start: the Kafka transaction may have committed while PostgreSQL
                # was unreachable, and rows numbered before an aborted one go first
                await conn.execute(
                    """UPDATE outbox SET published_at = now()
                           WHERE published_at IS NULL AND relay_seq < $1""",
                    self.cursor,
                )
                rows = await conn.fetch(
                    """SELECT relay_seq, topic, message_key, headers, payload FROM outbox
                           WHERE published_at IS NULL AND relay_seq >= $1
                           ORDER BY relay_seq LIMIT $2""",
                    self.cursor,
                    self.batch_size,
                )
                self.caught_up = not rows
            if not rows:
                rows = await self._number_new_rows(conn)
        if not rows:
            return 0
        last_seq = rows[-1]["relay_seq"]
        self.next_seq = max(self.next_seq, last_seq + 1)
        async with producer.transaction():
            for row in rows:
                headers: dict[str, Any] = json.loads(row["headers"])
                await producer.send(
                    row["topic"],
                    value=bytes(row["payload"]),
                    key=row["message_key"].encode() if row["message_key"] is not None else None,
                    headers=[(name, value.encode()) for name, value in headers.items()],
                )
            await producer.send_offsets_to_transaction(
                {self.CURSOR_PARTITION: OffsetAndMetadata(last_seq + 1, "")}, self.group_id
            )
        self.cursor = last_seq + 1
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE published_at IS NULL AND relay_seq < $1",
                self.cursor,
            )
        self.relayed += len(rows)
        return len(rows)

    async def _number_new_rows(self, conn: asyncpg.Connection) -> list[asyncpg.Record]:
        """Give the oldest unrelayed rows consecutive relay_seqs from `next_seq` in id order, in
        one statement (leader only: nobody else numbers, so the leader's count is the truth;
        a failure restarts leadership, which reads it again)."""
        numbered = await conn.fetch(
            """WITH picked AS (
                   SELECT id FROM outbox WHERE relay_seq IS NULL ORDER BY id LIMIT $1 FOR UPDATE),
               numbered AS (
                   SELECT id, $2::bigint + row_number() OVER (ORDER BY id) - 1 AS seq FROM picked)
               UPDATE outbox o SET relay_seq = n.seq FROM numbered n WHERE o.id = n.id
               RETURNING o.relay_seq, o.topic, o.message_key, o.headers, o.payload""",
            self.batch_size,
            self.next_seq,
        )
        return sorted(numbered, key=lambda row: row["relay_seq"])
