"""Reading a service's whole schema as text: to prove that some data is nowhere in it."""

from __future__ import annotations

import asyncpg


async def schema_as_text(database_url: str, schema: str) -> dict[str, str]:
    """Every table of the schema, each row rendered as PostgreSQL's text form of the row, one
    string per table. Encrypted columns appear as bytea hex, so only readable data matches."""
    conn = await asyncpg.connect(database_url)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name",
            schema,
        )
        dumps = {}
        for table in tables:
            name = table["table_name"]
            rows = await conn.fetch(f'SELECT t::text AS row FROM "{schema}"."{name}" t')
            dumps[name] = "\n".join(row["row"] for row in rows)
        return dumps
    finally:
        await conn.close()


def tables_containing(dumps: dict[str, str], *needles: str) -> dict[str, list[str]]:
    """Which tables hold which of the needles (case-insensitive); empty when none does."""
    found: dict[str, list[str]] = {}
    for table, text in dumps.items():
        hits = [n for n in needles if n.lower() in text.lower()]
        if hits:
            found[table] = hits
    return found
