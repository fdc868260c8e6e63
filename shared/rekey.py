"""Re-encryption after a PII key rotation (docs/design.md 3.5, docs/operations.md "Rotate
keys"): every sealed value not under the current key is sealed again under it, and the blind
indexes kept beside it are recomputed from the decrypted value. `python -m services.<name>
rekey` runs it on the service's `SealedColumn`s (each service lists its own; the mail outbox is
every service's). Batches commit one by one; a row already under the current key is never
selected again, so the job is idempotent and can be stopped and rerun at any time."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from shared.crypto import KEY_ID_BYTES, PiiCipher

Reindex = Callable[[asyncpg.Connection, PiiCipher, str, asyncpg.Record], Awaitable[dict[str, Any]]]
"""The index columns to write for a row, from its decrypted value (and the row's `extra`
columns); it may carry what else is keyed by the old index along, in the same transaction."""


@dataclass(frozen=True)
class SealedColumn:
    table: str
    key: tuple[str, ...]
    sealed: str
    reindex: Reindex
    extra: tuple[str, ...] = field(default=())
    batch: int | None = None
    """Rows per transaction when not the job's default (large values: fewer)."""

    def select(self) -> str:
        columns = ", ".join((*self.key, self.sealed, *self.extra))
        order = ", ".join(self.key)
        return (
            f"SELECT {columns} FROM {self.table} WHERE {self.sealed} IS NOT NULL "
            f"AND substring({self.sealed} FROM 1 FOR {1 + KEY_ID_BYTES}) <> $1 "
            f"ORDER BY {order} LIMIT $2 FOR UPDATE SKIP LOCKED"
        )


async def _mail_recipient(
    _conn: asyncpg.Connection, cipher: PiiCipher, plaintext: str, _row: asyncpg.Record
) -> dict[str, Any]:
    return {"recipient_index": cipher.blind_index(json.loads(plaintext)["to"])}


MAIL_OUTBOX = SealedColumn("mail_outbox", ("id",), "sealed", _mail_recipient)
"""Every service's queued mail (shared/mailer.py): sealed until sent, then erased."""


async def rekey_column(
    pool: asyncpg.Pool,
    cipher: PiiCipher,
    column: SealedColumn,
    *,
    batch: int = 200,
    progress: Callable[[str], None] = print,
) -> int:
    """Seal `column`'s values again under the current key, a batch per transaction; the number
    of rows rewritten."""
    prefix = b"\x02" + cipher.current_key_id
    batch = column.batch or batch
    done = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(column.select(), prefix, batch)
            for row in rows:
                try:
                    plaintext = cipher.decrypt(bytes(row[column.sealed]))
                except ValueError as unreadable:
                    where = ", ".join(f"{name}={row[name]}" for name in column.key)
                    raise SystemExit(
                        f"{column.table} ({where}): {unreadable}; add the key it was sealed "
                        "with to PII_KEYS_RETIRED and run rekey again"
                    ) from unreadable
                values = {column.sealed: cipher.encrypt(plaintext)}
                values |= await column.reindex(conn, cipher, plaintext, row)
                names = list(values)
                assignments = ", ".join(f"{name} = ${n}" for n, name in enumerate(names, 1))
                where = " AND ".join(
                    f"{name} = ${n}" for n, name in enumerate(column.key, len(names) + 1)
                )
                await conn.execute(
                    f"UPDATE {column.table} SET {assignments} WHERE {where}",
                    *values.values(),
                    *(row[name] for name in column.key),
                )
        done += len(rows)
        if rows:
            progress(f"{column.table}.{column.sealed}: {done} rows sealed under the current key")
        if len(rows) < batch:
            progress(f"{column.table}.{column.sealed}: done, {done} rows rewritten")
            return done


async def rekey(
    pool: asyncpg.Pool,
    cipher: PiiCipher,
    columns: Sequence[SealedColumn],
    *,
    batch: int = 200,
    progress: Callable[[str], None] = print,
) -> dict[str, int]:
    """Every column in turn; rows rewritten per `table.column`."""
    return {
        f"{column.table}.{column.sealed}": await rekey_column(
            pool, cipher, column, batch=batch, progress=progress
        )
        for column in columns
    }
