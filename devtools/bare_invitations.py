"""The bare invitations loop of `devtools.bench_flows`, run as a process of its own like the
service it is compared with. In the benchmark's process it shared the interpreter with the
in-process SMTP sink's thread, which the service, in a process of its own, never did.

    python -m devtools.bare_invitations --database-url URL --bootstrap HOST:PORT
                                        --smtp-port N --count N

aiokafka → asyncpg → aiosmtplib, no framework: per batch, record the event ids, insert an
invitation per client with a hashed PIN, send each its invitation (the service's template and
MIME form: the same bytes on the wire) over as many SMTP connections as the service has, mark
them sent, commit the offsets. Prints `{"started": <time.monotonic()>}` when it has consumed `count`
closings, and `"finished"` when the server has answered its last mail; the benchmark times it
between the two.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiosmtplib
import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from devtools.smtp_ceiling import invitation
from shared.crypto import new_pin
from shared.mailer import mime_message
from shared.settings import ServiceSettings
from shared.topics import Topic, partitions_of

BARE_INVITATIONS = """
DROP SCHEMA IF EXISTS bench_bare_inv CASCADE;
CREATE SCHEMA bench_bare_inv;
CREATE TABLE bench_bare_inv.inbox (ce_id text PRIMARY KEY);
CREATE TABLE bench_bare_inv.invitations (invitation_id text PRIMARY KEY,
    transaction_id text NOT NULL, agent_id text NOT NULL, email text NOT NULL,
    pin_hash text NOT NULL, sent_at timestamptz);
"""


async def _consumer_from_start(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    """A consumer of every partition of `topic` from offset 0, in a group of its own."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"bench-bare-{time.time_ns()}",
        enable_auto_commit=False,
    )
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    return consumer


async def _send(smtp: aiosmtplib.SMTP, sender: str, rows: list[tuple[str, ...]]) -> None:
    """Each row's invitation, one after another over `smtp`."""
    for invitation_id, _, _, email, _, pin, _ in rows:
        raw = mime_message(sender, email, invitation(pin), f"<{invitation_id}@bench.example>")
        await smtp.sendmail("bench@ratings.example", [email], raw)


async def run(database_url: str, bootstrap: str, smtp_port: int, count: int) -> tuple[float, float]:
    """Consume `count` closings from the start of the topic; returns when it started and when
    its last mail was answered."""
    conn = await asyncpg.connect(database_url)
    await conn.execute(BARE_INVITATIONS)
    settings = ServiceSettings()
    hasher = settings.secret_hasher()
    sender = settings.smtp_from
    connections = [
        aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, start_tls=False)
        for _ in range(settings.smtp_connections)
    ]
    for smtp in connections:
        await smtp.connect()
    consumer = await _consumer_from_start(bootstrap, Topic.MLS_TRANSACTIONS)
    started = time.monotonic()
    done = 0
    try:
        while done < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            rows: list[tuple[str, ...]] = []
            for records in batch.values():
                for record in records:
                    data = json.loads(record.value)
                    for rep in data["representations"]:
                        for client in rep["clients"]:
                            pin = new_pin()
                            rows.append(
                                (
                                    f"{data['transaction_id']}:{client['email']}",
                                    data["transaction_id"],
                                    rep["agent_id"],
                                    client["email"],
                                    hasher.pin_hash(pin),
                                    pin,
                                    dict(record.headers)["ce_id"].decode(),
                                )
                            )
            if not rows:
                continue
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO bench_bare_inv.inbox SELECT unnest($1::text[]) "
                    "ON CONFLICT DO NOTHING",
                    [r[6] for r in rows],
                )
                await conn.execute(
                    """INSERT INTO bench_bare_inv.invitations
                       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                                            $5::text[]) ON CONFLICT DO NOTHING""",
                    *[[r[i] for r in rows] for i in range(5)],
                )
            shares = [rows[n :: len(connections)] for n in range(len(connections))]
            await asyncio.gather(
                *(
                    _send(smtp, sender, share)
                    for smtp, share in zip(connections, shares, strict=True)
                )
            )
            await conn.execute(
                "UPDATE bench_bare_inv.invitations SET sent_at = now() "
                "WHERE invitation_id = ANY($1::text[])",
                [r[0] for r in rows],
            )
            await consumer.commit()
            done += sum(len(records) for records in batch.values())
        finished = time.monotonic()
    finally:
        await consumer.stop()
        for smtp in connections:
            await smtp.quit()
        await conn.execute("DROP SCHEMA bench_bare_inv CASCADE")
        await conn.close()
    return started, finished


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    started, finished = asyncio.run(
        run(args.database_url, args.bootstrap, args.smtp_port, args.count)
    )
    print(json.dumps({"started": started, "finished": finished}), flush=True)


if __name__ == "__main__":
    main()
