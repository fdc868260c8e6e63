"""Transactional outbox: events are written in the handler's DB transaction and relayed to Kafka.

Exactly once on the topic, in per-key order, across relay crashes, with every instance of a
service relaying: the outbox is split into shares by message key (`share_of`), the instances'
relays split the shares between them (a Kafka consumer group over the partitions of
`OUTBOX_CURSOR_TOPIC`, one per share), and each share is relayed as the single relay of earlier
versions relayed the whole outbox: its relay numbers the rows it picks up (`relay_seq`, gap-free
within the share) and publishes them in a Kafka transaction, under the share's own transactional
id, that also commits the share's cursor as a consumer-group offset on its partition. Messages
and cursor commit together or not at all, so the share's next holder resumes exactly after the
last committed row, whatever PostgreSQL had recorded (`OutboxRelay`, `OutboxShare`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
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
SHARE_SEQ_BITS = 40
"""A share's `relay_seq`s are `share << 40` plus its own gap-free count (a trillion rows a share):
disjoint between shares, as the column's uniqueness needs, and share 0's are the numbers the
single relay of earlier versions gave, so its cursor (partition 0) carries over."""
SHARE_SEQ_SPAN = 1 << SHARE_SEQ_BITS
HEARTBEAT_INTERVAL_MS = 1000
"""The relays' group notices a member joining or leaving within a second (aiokafka: 3 s)."""
SESSION_TIMEOUT_MS = 10_000
"""aiokafka's default, as the services' consumers: a killed instance's shares move after it."""


def share_of(key: str | None, shares: int) -> int:
    """The share of the outbox a row with this message key belongs to: the first 32 bits of the
    key's MD5, modulo the number of shares (a row without a key counts as the empty key). One key
    is in one share, and one relay at a time publishes a share, so a key's events keep their
    order. `share_condition` is the same mapping in SQL; MD5 because PostgreSQL and Python both
    have it (Kafka's murmur2 and PostgreSQL's `hashtext` exist on one side only)."""
    if shares < 1:
        raise ValueError(f"{shares} shares")
    digest = hashlib.md5((key or "").encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:4], "big") % shares


def share_condition(share: int, shares: int) -> str:
    """The SQL condition that an outbox row belongs to `share` of `shares` (`share_of`)."""
    if not 0 <= share < shares:
        raise ValueError(f"share {share} of {shares}")
    if shares == 1:
        return "TRUE"
    return (
        f"('x' || left(md5(COALESCE(message_key, '')), 8))::bit(32)::bigint % {int(shares)}"
        f" = {int(share)}"
    )


class Bell:
    """Rings every share an instance relays: a handler's commit may have written to any."""

    def __init__(self) -> None:
        self.events: set[asyncio.Event] = set()

    def set(self) -> None:
        for event in self.events:
            event.set()


class OutboxRelay:
    """Moves a service's outbox rows to Kafka. Run one per service instance: the instances split
    the outbox's shares between them and each relays the shares it holds.

    The shares are the partitions of `OUTBOX_CURSOR_TOPIC` (a row's share: `share_of` its key).
    Each instance's relay is a member of the consumer group `outbox-relay.<name>.members`
    subscribed to that topic, so Kafka's group protocol hands each share to one member and moves
    it when instances come and go (a graceful stop at once, a killed instance after its session
    timeout). Before any member is given a share, every member gives up the ones it held (an
    eager rebalance), so a share changes hands without overlap; a member that stalls past its
    session is fenced by the share's transactional id instead (`OutboxShare`). The group never
    reads or commits anything: the cursors are committed by the shares' transactions, under
    the group `outbox-relay.<name>`, as the single relay of earlier versions did. That relay led
    while it held an advisory lock on the same name; a member holds it shared, so the two
    never relay together."""

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
        """The group the cursors are committed under; share 0's transactional id."""
        self.members_group_id = f"{self.group_id}.members"
        self.relayed = 0
        self.wakeup = Bell()
        self.shares: dict[int, tuple[OutboxShare, asyncio.Task[None]]] = {}
        self.share_count = 0
        """How many shares the outbox has (the cursor topic's partitions), once a member."""
        self.leaving = False
        """Set while the member leaves its group: a late assignment then starts nothing."""

    @classmethod
    def for_service(
        cls, pool: asyncpg.Pool, settings: ServiceSettings, *, poll_seconds: float | None = None
    ) -> OutboxRelay:
        """The relay of the service `settings` configure, wherever it is built (the service, the
        scoring replay): the same name, so the same Kafka cursors and group, and the same
        batching."""
        return cls(
            pool,
            kafka=settings,
            relay_name=f"{settings.service_name}.{settings.db_schema}",
            poll_seconds=settings.outbox_poll_seconds if poll_seconds is None else poll_seconds,
            batch_size=settings.outbox_batch_size,
            linger_seconds=settings.outbox_linger_seconds,
        )

    @property
    def owned_shares(self) -> list[int]:
        """The shares this instance relays now."""
        return sorted(self.shares)

    async def run(self) -> None:
        """Relay until cancelled; on errors, back off and start over (the cursors make it safe)."""
        backoff = 0.5
        while True:
            try:
                await self._run_as_member()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception(
                    "outbox relay failed; restarting", extra={"relay": self.relay_name}
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _run_as_member(self) -> None:
        async with self.pool.acquire() as lock_conn:
            keeps_session_state(lock_conn)
            # the single relay of earlier versions took this lock exclusively to lead: held
            # shared by every member, it keeps such a relay from leading beside the shares
            # (it would number rows into share 1's range), and the shares from starting while
            # one leads. PostgreSQL cannot notify its release, so this polls.
            while not await lock_conn.fetchval(  # noqa: ASYNC110
                "SELECT pg_try_advisory_lock_shared(hashtext($1))", self.group_id
            ):
                await asyncio.sleep(1.0)
            try:
                await self._relay_as_member()
            finally:
                await lock_conn.execute(
                    "SELECT pg_advisory_unlock_shared(hashtext($1))", self.group_id
                )

    async def _relay_as_member(self) -> None:
        consumer = AIOKafkaConsumer(
            **kafka_client_options(self.kafka),
            group_id=self.members_group_id,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            client_id=self.members_group_id,
        )
        consumer.subscribe([OUTBOX_CURSOR_TOPIC], listener=_ShareListener(self, consumer))
        self.leaving = False
        try:
            await consumer.start()
            while True:
                # the topic is never written: a poll only tells aiokafka that the member lives
                # (one that does not poll for `max_poll_interval_ms` leaves its group)
                await consumer.getmany(timeout_ms=1000)
        finally:
            # the group's rebalance callbacks run in aiokafka's own task: one may hand this
            # member shares while it stops, and their relays would outlive it (and its pool)
            self.leaving = True
            await self._stop_shares()
            try:
                async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                    await consumer.stop()  # leaves the group: the others take the shares at once
            except TimeoutError:
                logger.warning("outbox relay did not leave its group in time")
            finally:
                await self._stop_shares()

    def _start_shares(self, shares: Sequence[int], share_count: int) -> None:
        if self.leaving:
            return
        self.share_count = share_count
        for number in shares:
            if number not in self.shares:
                share = OutboxShare(self, number, share_count)
                task = asyncio.create_task(share.run(), name=f"outbox-share-{number}")
                self.shares[number] = (share, task)
        logger.info(
            "outbox relay holds its shares",
            extra={"relay": self.relay_name, "shares": self.owned_shares, "of": share_count},
        )

    async def _stop_shares(self) -> None:
        """Stop every share this instance relays, and wait until each has (its open Kafka
        transaction aborted, its producer closed): only then may another member start it."""
        running = list(self.shares.values())
        self.shares.clear()
        for share, task in running:
            task.cancel()
            self.wakeup.events.discard(share.wakeup)
        if not running:
            return
        done, pending = await asyncio.wait(
            [task for _share, task in running], timeout=2 * STOP_TIMEOUT_SECONDS
        )
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: a share's run only ends by cancellation
        if pending:
            # an abort stuck on an unreachable broker: the next holder's producer fences it
            logger.warning(
                "outbox relay shares did not stop in time",
                extra={"relay": self.relay_name, "shares": len(pending)},
            )


class _ShareListener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, relay: OutboxRelay, consumer: AIOKafkaConsumer) -> None:
        self.relay = relay
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.relay._stop_shares()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        numbers = sorted(tp.partition for tp in assigned)
        partitions = self.consumer.partitions_for_topic(OUTBOX_CURSOR_TOPIC) or set()
        self.relay._start_shares(numbers, max(len(partitions), *(n + 1 for n in numbers), 1))


class OutboxShare:
    """The rows of one share of a service's outbox, moved to Kafka exactly once and in order.

    Exactly once on the topic, across relay crashes and shares changing hands: the share's
    relay numbers the share's rows it picks up (`relay_seq`, gap-free within the share because
    only the share's relay assigns it) and publishes them in a Kafka transaction that also
    commits the share's cursor as a consumer-group offset on its partition of
    `OUTBOX_CURSOR_TOPIC`. Messages and cursor commit together or not at all, so the next holder
    resumes exactly after the last committed row, whatever PostgreSQL had recorded. Each share
    has its own transactional id: a new holder's producer fences the previous one's (an open
    transaction is aborted, a later one refused), and a stale holder still numbering rows in
    PostgreSQL numbers from where the new one does, so one of them fails on the column's
    uniqueness and starts over."""

    def __init__(self, relay: OutboxRelay, share: int, shares: int) -> None:
        self.relay = relay
        self.share = share
        self.shares = shares
        self.base = share << SHARE_SEQ_BITS
        self.partition = TopicPartition(OUTBOX_CURSOR_TOPIC, share)
        self.transactional_id = relay.group_id if share == 0 else f"{relay.group_id}.{share}"
        """Share 0 keeps the single relay's id: a relay of an earlier version still running
        during an upgrade is fenced by it."""
        self.mine = share_condition(share, shares)
        self.cursor = 1
        """The next of the share's own numbers to publish (its `relay_seq` less `base`)."""
        self.next_seq = 1
        """The share's number the next new row gets (gap-free: advanced only by committed
        numbering)."""
        self.caught_up = False
        """Whether every row numbered before this holding began is published and marked."""
        self.wakeup = asyncio.Event()
        relay.wakeup.events.add(self.wakeup)

    async def run(self) -> None:
        """Relay the share until cancelled; on errors, back off and start over."""
        backoff = 0.5
        while True:
            try:
                await self._hold()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception(
                    "outbox relay share failed; restarting",
                    extra={"relay": self.relay.relay_name, "share": self.share},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _hold(self) -> None:
        producer = self._new_producer()
        try:
            # inside: a start that cannot bootstrap leaves a client to close too. The start
            # fences the share's previous holder, so the cursor read next is final.
            await producer.start()
            self.cursor = await self._committed_cursor()
            await self._recover(self.cursor)
            await self._relay_rounds(producer)
        finally:
            # a send stuck on a missing topic would otherwise hold shutdown for the producer's
            # full delivery timeout; the cursor makes an abandoned batch safe
            try:
                async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                    await producer.stop()
            except TimeoutError:
                logger.warning(
                    "outbox producer did not stop in time",
                    extra={"relay": self.relay.relay_name, "share": self.share},
                )

    def _new_producer(self) -> AIOKafkaProducer:
        """The transactional producer of one holding (its id fences a stale holder)."""
        return self.relay.producer_factory(
            **kafka_client_options(self.relay.kafka),
            transactional_id=self.transactional_id,
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
            client_id=self.transactional_id,
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
                await wait_event(self.wakeup, self.relay.poll_seconds)
            elif moved < self.relay.batch_size:
                await asyncio.sleep(self.relay.linger_seconds)

    async def _committed_cursor(self) -> int:
        """The share's next number to publish, as committed to Kafka with its last transaction."""
        consumer = AIOKafkaConsumer(
            **kafka_client_options(self.relay.kafka),
            group_id=self.relay.group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        try:
            await consumer.start()
            committed = await consumer.committed(self.partition)
        finally:
            await consumer.stop()
        return int(committed) if committed is not None else 1

    async def _recover(self, cursor: int) -> None:
        """Rows below the Kafka cursor were published, even if PostgreSQL never heard of it."""
        async with self.relay.pool.acquire() as conn:
            fixed = await conn.execute(
                """UPDATE outbox SET published_at = now()
                   WHERE published_at IS NULL AND relay_seq >= $1 AND relay_seq < $2""",
                self.base,
                self.base + cursor,
            )
            # never hand out a number at or below the cursor again
            last = await conn.fetchval(
                "SELECT MAX(relay_seq) FROM outbox WHERE relay_seq >= $1 AND relay_seq < $2",
                self.base,
                self.base + SHARE_SEQ_SPAN,
            )
        self.next_seq = max(cursor, (last - self.base + 1) if last is not None else 1)
        self.caught_up = False
        logger.info(
            "outbox relay share held",
            extra={
                "relay": self.relay.relay_name,
                "share": self.share,
                "cursor": cursor,
                "recovered": fixed,
            },
        )

    async def _relay_batch(self, producer: AIOKafkaProducer) -> int:
        relay = self.relay
        rows: list[asyncpg.Record] = []
        if not self.caught_up:
            # after a (re)start: the Kafka transaction may have committed while PostgreSQL
            # was unreachable, and rows numbered before an aborted one go first
            async with relay.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    """UPDATE outbox SET published_at = now()
                           WHERE published_at IS NULL AND relay_seq >= $1 AND relay_seq < $2""",
                    self.base,
                    self.base + self.cursor,
                )
                rows = await conn.fetch(
                    """SELECT relay_seq, topic, message_key, headers, payload FROM outbox
                           WHERE published_at IS NULL AND relay_seq >= $1 AND relay_seq < $2
                           ORDER BY relay_seq LIMIT $3""",
                    self.base + self.cursor,
                    self.base + SHARE_SEQ_SPAN,
                    relay.batch_size,
                )
            self.caught_up = not rows
        if not rows:
            async with relay.pool.acquire() as conn:
                rows = await self._number_new_rows(conn)
        if not rows:
            return 0
        last_seq = rows[-1]["relay_seq"] - self.base
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
                {self.partition: OffsetAndMetadata(last_seq + 1, "")}, relay.group_id
            )
        self.cursor = last_seq + 1
        async with relay.pool.acquire() as conn:
            await conn.execute(
                """UPDATE outbox SET published_at = now()
                    WHERE published_at IS NULL AND relay_seq >= $1 AND relay_seq < $2""",
                self.base,
                self.base + self.cursor,
            )
        relay.relayed += len(rows)
        return len(rows)

    async def _number_new_rows(self, conn: asyncpg.Connection) -> list[asyncpg.Record]:
        """Give the share's oldest unrelayed rows consecutive numbers from `next_seq` in id
        order, in one statement (the holder only: nobody else numbers the share's rows, so the
        holder's count is the truth; a failure starts the holding over, which reads it again)."""
        numbered = await conn.fetch(
            f"""WITH picked AS (
                   SELECT id FROM outbox WHERE relay_seq IS NULL AND {self.mine}
                    ORDER BY id LIMIT $1 FOR UPDATE),
               numbered AS (
                   SELECT id, $2::bigint + row_number() OVER (ORDER BY id) - 1 AS seq FROM picked)
               UPDATE outbox o SET relay_seq = n.seq FROM numbered n WHERE o.id = n.id
               RETURNING o.relay_seq, o.topic, o.message_key, o.headers, o.payload""",
            self.relay.batch_size,
            self.base + self.next_seq,
        )
        return sorted(numbered, key=lambda row: row["relay_seq"])
