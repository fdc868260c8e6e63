"""Run one outbox relay as its own process, so a test can `kill -9` it mid-stream.

Usage: python -m tests.support.relay_process DATABASE_URL SCHEMA BOOTSTRAP RELAY_NAME
"""

from __future__ import annotations

import asyncio
import sys

from shared.db import create_pool
from shared.outbox import OutboxRelay


async def main(database_url: str, schema: str, bootstrap: str, name: str) -> None:
    pool = await create_pool(database_url, schema)
    relay = OutboxRelay(pool, kafka=bootstrap, relay_name=name, batch_size=50, poll_seconds=0.05)
    await relay.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
