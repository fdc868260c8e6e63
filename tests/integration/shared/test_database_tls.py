"""PostgreSQL TLS is chosen in DATABASE_URL (`?sslmode=verify-full&sslrootcert=...`), and
asyncpg, through the services' pool, honours it (docs/design.md 3.4)."""

from __future__ import annotations

import uuid

import pytest

from shared.db import create_pool

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("sslmode", ["require", "verify-full"])
async def test_a_url_that_demands_tls_is_refused_by_a_server_without_it(
    database_url: str, sslmode: str
) -> None:
    """The local PostgreSQL has no TLS (ssl=off): a URL that demands it cannot fall back to a
    plaintext connection, which is what production's verify-full is for."""
    url = f"{database_url}?sslmode={sslmode}&sslrootcert=/etc/ssl/certs/ca-certificates.crt"
    with pytest.raises(ConnectionError, match="rejected SSL upgrade"):
        await create_pool(url, f"t_{uuid.uuid4().hex[:10]}_tls")
