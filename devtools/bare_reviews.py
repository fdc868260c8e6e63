"""The bare reviews handler of `devtools.bench_flows`, run as a process of its own like the
service (the comparison), and in the benchmark's own event loop beside its HTTP clients (for
reference: a request then never leaves the process, which no service can do).

    python -m devtools.bare_reviews --port P --database-url URL --bootstrap HOST:PORT

asyncio HTTP/1.1 → asyncpg → aiokafka, no framework: per request look the PIN hash up and mark the
invitation used, insert the review, produce the event, answer. The benchmark creates the
`bench_bare_rev` tables and stops this process with SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal

import asyncpg
from aiokafka import AIOKafkaProducer

from shared.settings import ServiceSettings

BARE_REVIEWS_TOPIC = "bench.bare.reviews"


async def serve(port: int, database_url: str, bootstrap: str, stop: asyncio.Event) -> None:
    """Answer on `port` until `stop` is set."""
    hasher = ServiceSettings().secret_hasher()
    pool = await asyncpg.create_pool(database_url, min_size=4, max_size=16)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    sequence = itertools.count()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                body = json.loads(await reader.readexactly(length))
                review_id = f"R-bare-{next(sequence)}"
                async with pool.acquire() as conn, conn.transaction():
                    invitation = await conn.fetchrow(
                        "UPDATE bench_bare_rev.invitations SET used_at = now() "
                        "WHERE pin_hash = $1 AND used_at IS NULL "
                        "RETURNING invitation_id, agent_id",
                        hasher.pin_hash(body["pin"]),
                    )
                    await conn.execute(
                        "INSERT INTO bench_bare_rev.reviews VALUES ($1, $2, $3, $4, $5, now())",
                        review_id,
                        invitation["invitation_id"],
                        invitation["agent_id"],
                        json.dumps(body["scores"]),
                        body["comment"],
                    )
                await producer.send_and_wait(
                    BARE_REVIEWS_TOPIC,
                    key=invitation["agent_id"].encode(),
                    value=json.dumps({"review_id": review_id, **body}).encode(),
                )
                reply = json.dumps({"review_id": review_id}).encode()
                writer.write(
                    b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(reply)}\r\n\r\n".encode()
                    + reply
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass
        except Exception as exc:
            print(f"bare reviews: {type(exc).__name__}: {exc}", flush=True)
            writer.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        await stop.wait()
    finally:
        server.close()
        await producer.stop()
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--bootstrap", required=True)
    args = parser.parse_args(argv)

    async def until_terminated() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await serve(args.port, args.database_url, args.bootstrap, stop)

    asyncio.run(until_terminated())


if __name__ == "__main__":
    main()
