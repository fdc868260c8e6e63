"""PostgreSQL access: one pool per service confined to its own schema, and the migrations runner."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import asyncpg

logger = logging.getLogger(__name__)

PLATFORM_MIGRATIONS = Path(__file__).parent / "migrations"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MIGRATION_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class PoolConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped
    """A pool connection returns to the pool without asyncpg's reset statement (a round trip on
    every release: about one in ten of a request's statements) unless it took session state.

    The pool still rolls back a transaction left open. Session state here is only the session
    advisory locks of the outbox relay and the migrations runner; they call
    `keeps_session_state` first, so a cancellation that skips their unlock cannot leave a lock
    behind on a pooled connection. Nothing else issues SET, LISTEN or DECLARE outside a
    transaction (search_path is a startup parameter, not a SET)."""

    _session_state = False

    def keep_session_state(self) -> None:
        self._session_state = True

    def get_reset_query(self) -> str:
        if not self._session_state:
            return ""
        self._session_state = False
        query: str = super().get_reset_query()
        return query


def keeps_session_state(conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy) -> None:
    """Call before taking session-level state (a session advisory lock) on a pool connection:
    its release then runs the full reset, which releases what a cancellation left held. Other
    connections (not from `create_pool`) always run it."""
    keep = getattr(conn, "keep_session_state", None)
    if keep is not None:
        keep()


def _checked_schema(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


async def create_pool(
    database_url: str, schema: str, *, min_size: int = 1, max_size: int = 10
) -> asyncpg.Pool:
    """A pool whose connections see only `schema` (created if missing)."""
    schema = _checked_schema(schema)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        connection_class=PoolConnection,
        server_settings={"search_path": schema, "application_name": f"ratings-{schema}"},
    )
    if pool is None:
        raise RuntimeError(f"no connection pool for {schema}")
    return pool


def migration_files(directory: Path) -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise ValueError(f"migration file name must be NNNN_name.sql: {path}")
        found.append((int(match.group(1)), path.stem, path))
    versions = [version for version, _, _ in found]
    if len(versions) != len(set(versions)):
        raise ValueError(f"duplicate migration numbers in {directory}")
    return found


async def apply_migrations(pool: asyncpg.Pool, schema: str, service_dir: Path | None) -> list[str]:
    """Apply the platform's then the service's numbered migrations once each, under an advisory
    lock so that several instances starting together do not race. Returns what was applied."""
    schema = _checked_schema(schema)
    sets = [("platform", PLATFORM_MIGRATIONS)]
    if service_dir is not None and service_dir.is_dir():  # noqa: ASYNC240 - once, at start
        sets.append(("service", service_dir))
    applied: list[str] = []
    async with pool.acquire() as conn:
        keeps_session_state(conn)
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"migrations:{schema}")
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       namespace text NOT NULL, version integer NOT NULL, name text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now(),
                       PRIMARY KEY (namespace, version))"""
            )
            for namespace, directory in sets:
                done = {
                    row["version"]
                    for row in await conn.fetch(
                        "SELECT version FROM schema_migrations WHERE namespace = $1", namespace
                    )
                }
                for version, name, path in migration_files(directory):
                    if version in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(path.read_text())
                        await conn.execute(
                            "INSERT INTO schema_migrations (namespace, version, name) VALUES ($1, $2, $3)",
                            namespace,
                            version,
                            name,
                        )
                    applied.append(f"{namespace}/{name}")
                    logger.info("migration applied", extra={"schema": schema, "migration": name})
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"migrations:{schema}")
    return applied


def one_row(row: asyncpg.Record | None) -> asyncpg.Record:
    """The row of a statement that always returns one (aggregates, locks with sub-selects)."""
    if row is None:
        raise RuntimeError("a statement that returns one row returned none")
    return row
