"""The bare reviews handler of `devtools.bench_flows`: what the reviews service's submission must
do at least, as a process of its own served like the service (uvicorn), driven by the same `wrk`.

    python -m devtools.bare_reviews --port P --database-url URL --bootstrap HOST:PORT

A plain ASGI app, no framework: per POST it hashes the PIN, and in one transaction marks the
invitation used (returning it), inserts the review and writes the two outbox rows the service
writes for a submission (`survey.answered`, `review.published`), then answers 201. The
project's own outbox relay (`shared.outbox.OutboxRelay`) puts the rows on
`BARE_REVIEWS_TOPIC`, as the service's relay puts its own on `reviews.published`: the comparison
is the handler's cost, the relay being the same. The benchmark creates the `bench_bare_rev`
tables (`prepare`) and stops this process with SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import asyncpg
import uvicorn

from shared.db import apply_migrations, create_pool
from shared.outbox import OutboxRelay
from shared.settings import ServiceSettings

BARE_REVIEWS_TOPIC = "bench.bare.reviews"
SCHEMA = "bench_bare_rev"
HEADERS = '{{"ce_id": "{}", "ce_specversion": "1.0", "ce_type": "{}", "ce_source": "/bare"}}'

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def prepare(database_url: str, pins: list[tuple[str, str, str]]) -> None:
    """A fresh `bench_bare_rev` schema: the platform's outbox, invitations (pin hash, invitation
    id, agent id) and reviews."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            f"""DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA};
               CREATE TABLE {SCHEMA}.invitations (pin_hash text PRIMARY KEY,
                   invitation_id text NOT NULL, agent_id text NOT NULL, used_at timestamptz);
               CREATE TABLE {SCHEMA}.reviews (review_id text PRIMARY KEY,
                   invitation_id text NOT NULL UNIQUE, agent_id text NOT NULL,
                   scores jsonb NOT NULL, comment text, submitted_at timestamptz NOT NULL)"""
        )
        await conn.copy_records_to_table(
            "invitations",
            schema_name=SCHEMA,
            records=pins,
            columns=("pin_hash", "invitation_id", "agent_id"),
        )
    finally:
        await conn.close()
    pool = await create_pool(database_url, SCHEMA, max_size=1)
    try:
        await apply_migrations(pool, SCHEMA, None)  # the platform's outbox
    finally:
        await pool.close()


class BareReviews:
    """The ASGI app: lifespan opens the pool and runs the relay; POST stores a review."""

    def __init__(self, database_url: str, bootstrap: str) -> None:
        self.database_url = database_url
        self.bootstrap = bootstrap
        self.hasher = ServiceSettings().secret_hasher()
        self.pool: asyncpg.Pool | None = None
        self.relay: OutboxRelay | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["method"] != "POST":  # wrk's idle connections ask for /healthz
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, reply = await self.submit(json.loads(body))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": reply})

    async def submit(self, body: dict[str, Any]) -> tuple[int, bytes]:
        assert self.pool is not None and self.relay is not None
        review_id = str(uuid.uuid4())
        scores = json.dumps(body["scores"])
        async with self.pool.acquire() as conn, conn.transaction():
            invitation = await conn.fetchrow(
                "UPDATE invitations SET used_at = now() WHERE pin_hash = $1 AND used_at IS NULL "
                "RETURNING invitation_id, agent_id",
                self.hasher.pin_hash(body["pin"]),
            )
            if invitation is None:
                return 404, b'{"title": "unknown or used PIN"}'
            agent_id = invitation["agent_id"]
            await conn.execute(
                "INSERT INTO reviews VALUES ($1, $2, $3, $4, $5, now())",
                review_id,
                invitation["invitation_id"],
                agent_id,
                scores,
                body["comment"],
            )
            answered = json.dumps({"review_id": review_id, "agent_id": agent_id}).encode()
            published = json.dumps({"review_id": review_id, "agent_id": agent_id, **body})
            await conn.execute(
                "INSERT INTO outbox (topic, message_key, ce_id, ce_type, headers, payload) "
                "SELECT $1, $2, unnest($3::text[]), unnest($4::text[]), "
                "unnest($5::text[])::jsonb, unnest($6::bytea[])",
                BARE_REVIEWS_TOPIC,
                agent_id,
                ids := [str(uuid.uuid4()), str(uuid.uuid4())],
                types := ["bench.survey.answered", "bench.review.published"],
                [HEADERS.format(ce_id, ce_type) for ce_id, ce_type in zip(ids, types, strict=True)],
                [answered, published.encode()],
            )
        self.relay.wakeup.set()
        return 201, json.dumps({"review_id": review_id, "status": "published"}).encode()

    async def lifespan(self, receive: Receive, send: Send) -> None:
        relaying: asyncio.Task[None] | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.pool = await create_pool(self.database_url, SCHEMA, min_size=4, max_size=10)
                settings = ServiceSettings(
                    kafka_bootstrap_servers=self.bootstrap, database_schema=SCHEMA
                )
                self.relay = OutboxRelay.for_service(self.pool, settings)
                relaying = asyncio.create_task(self.relay.run())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if relaying is not None:
                    relaying.cancel()
                    await asyncio.gather(relaying, return_exceptions=True)
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--bootstrap", required=True)
    args = parser.parse_args(argv)
    uvicorn.run(
        BareReviews(args.database_url, args.bootstrap),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
