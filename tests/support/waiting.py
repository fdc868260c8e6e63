"""Polling helpers for conditions that no event announces."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg

from shared.settings import ServiceSettings


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 30, every: float = 0.1
) -> None:
    """Wait until `check()` is true; TimeoutError after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(every)


async def until_stored(
    settings: ServiceSettings, table: str, key_column: str, key: str, timeout: float = 30
) -> None:
    """Wait until the service's own store has the row. Kafka orders no two topics: a test that
    publishes on a second topic what must come after an event on the first waits on this."""
    query = f"SELECT count(*) FROM {settings.db_schema}.{table} WHERE {key_column} = $1"
    conn = await asyncpg.connect(settings.database_url)
    try:

        async def stored() -> bool:
            return bool(await conn.fetchval(query, key))

        await eventually(stored, timeout)
    finally:
        await conn.close()
