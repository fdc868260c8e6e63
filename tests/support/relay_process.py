"""Run one outbox relay as its own process, so a test can `kill -9` it mid-stream.

Usage: python -m tests.support.relay_process DATABASE_URL SCHEMA BOOTSTRAP RELAY_NAME [slow]

Prints `shares <n>,<n>` (or `shares -`) on stdout whenever the shares it holds change. `slow`
holds each Kafka transaction open 250 ms before its commit, so that a kill almost always lands
while a batch is numbered in PostgreSQL and not yet committed to Kafka.
"""

from __future__ import annotations

import asyncio
import sys

from aiokafka import AIOKafkaProducer

from shared.db import create_pool
from shared.outbox import OutboxRelay


class SlowCommitProducer(AIOKafkaProducer):  # type: ignore[misc]  # aiokafka is untyped
    async def commit_transaction(self) -> None:
        await asyncio.sleep(0.25)
        await super().commit_transaction()


async def _report_shares(relay: OutboxRelay) -> None:
    said: list[int] | None = None
    while True:
        if relay.owned_shares != said:
            said = relay.owned_shares
            print("shares", ",".join(map(str, said)) or "-", flush=True)
        await asyncio.sleep(0.05)


async def main(database_url: str, schema: str, bootstrap: str, name: str, *mode: str) -> None:
    pool = await create_pool(database_url, schema)
    relay = OutboxRelay(
        pool,
        kafka=bootstrap,
        relay_name=name,
        batch_size=50,
        poll_seconds=0.05,
        producer_factory=SlowCommitProducer if mode == ("slow",) else AIOKafkaProducer,
    )
    reporting = asyncio.create_task(_report_shares(relay))
    try:
        await relay.run()
    finally:
        reporting.cancel()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
