"""The inbox: processed `ce_id`s recorded in the same transaction as the effects they caused."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg


async def first_delivery(conn: asyncpg.Connection, ce_id: str, ce_type: str) -> bool:
    """Record `ce_id`; False when it was processed before (then the caller does nothing)."""
    inserted = await conn.fetchval(
        "INSERT INTO inbox (ce_id, ce_type) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
        ce_id,
        ce_type,
    )
    return bool(inserted)


async def first_deliveries(conn: asyncpg.Connection, events: Sequence[tuple[str, str]]) -> set[str]:
    """Batch form: record many (ce_id, ce_type) at once; return the ids not seen before."""
    if not events:
        return set()
    rows = await conn.fetch(
        """INSERT INTO inbox (ce_id, ce_type)
           SELECT * FROM unnest($1::text[], $2::text[])
           ON CONFLICT DO NOTHING RETURNING ce_id""",
        [ce_id for ce_id, _ in events],
        [ce_type for _, ce_type in events],
    )
    return {row["ce_id"] for row in rows}
