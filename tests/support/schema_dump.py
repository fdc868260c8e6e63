"""Every row of a service's schema as text, to check what erasure leaves behind.

A sealed column is not erased data: the service holds the key. So the dump reads it as the
service could: a `bytea` value the PII cipher opens is shown opened, any other `bytea` (an outbox
payload) as UTF-8 text. What the dump shows is what someone with the database and the service's
key can read.
"""

from __future__ import annotations

import asyncpg
from cryptography.exceptions import InvalidTag

from shared.crypto import PiiCipher


async def dump_schema(
    conn: asyncpg.Connection, schema: str, cipher: PiiCipher | None = None
) -> dict[str, list[str]]:
    """Each base table of `schema` -> its rows, each row as `t::text` followed by its `bytea`
    values opened (with `cipher`, when one is given and the value is its ciphertext) or decoded."""
    tables = [
        row["table_name"]
        for row in await conn.fetch(
            """SELECT table_name FROM information_schema.tables
               WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name""",
            schema,
        )
    ]
    dump: dict[str, list[str]] = {}
    for table in tables:
        rows = await conn.fetch(f'SELECT t::text AS "row as text", t.* FROM "{schema}"."{table}" t')
        dump[table] = [_row_text(row, cipher) for row in rows]
    return dump


def mentions(dump: dict[str, list[str]], *texts: str) -> list[str]:
    """The dumped rows holding any of `texts` (case-insensitive), as `table: row`."""
    wanted = [text.lower() for text in texts if text]
    return [
        f"{table}: {row}"
        for table, rows in dump.items()
        for row in rows
        if any(text in row.lower() for text in wanted)
    ]


def _row_text(row: asyncpg.Record, cipher: PiiCipher | None) -> str:
    opened = [_readable(value, cipher) for value in row.values() if isinstance(value, bytes)]
    return " | ".join([row["row as text"], *opened])


def _readable(value: bytes, cipher: PiiCipher | None) -> str:
    if cipher is not None:
        try:
            return cipher.decrypt(value)
        except (ValueError, InvalidTag):
            pass
    return value.decode("utf-8", errors="replace")
