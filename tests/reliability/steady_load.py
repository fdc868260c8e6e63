"""What the reliability tests that run the services as processes under a steady load share: the
closings they publish, the PIN in the invitation email, waiting for an effect, and the two
end checks (nothing stranded in an outbox; the scoring store equal to a fresh replay)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg

from services.scoring.domain.publication import policy_for
from services.scoring.replay import replay
from services.scoring.settings import ScoringSettings
from shared.contracts import AGENT_UPSERTED
from shared.contracts.mls import TransactionClosed
from tests.support.builders import agent_upserted, client, transaction_closed
from tests.support.kafka import EventPublisher, consumed_by, start_group_at_end

PIN = re.compile(r"\b([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})\b")
GOOD = dict.fromkeys(
    ("communication", "friendliness", "professionalism", "area_knowledge", "overall"), 5
)
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "reliability"
RATING_COLUMNS = "agent_id, stars, status, positive_reviews_3m, positive_reviews_6m, reviews_total"

UNTHROTTLED = {
    "CODE_FAILURE_LIMIT": "100000",
    "CODE_FAILURE_GLOBAL_LIMIT": "100000",
    "REVIEW_BURST_MAX": "100000",
}
"""Clients answer as soon as their email arrives, which can be before the reviews service has
consumed the invitation: those early tries count as wrong codes, and the brute-force throttle
is not under test. The load also gives a few agents dozens of reviews within seconds, which the
burst signal (docs/design.md 3.3) rightly holds for a moderator: not under test here either."""

RatingRow = tuple[Any, ...]


def service_env(
    kafka_bootstrap: str, database_url: str, smtp_port: int, **extra: str
) -> dict[str, str]:
    """The services' environment: the local stack, and timers fast enough for a test."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "SMTP_PORT": str(smtp_port),
        "SCHEDULER_INTERVAL_SECONDS": "0.3",
        "OUTBOX_POLL_SECONDS": "0.05",
        **extra,
    }


def subscribed_topics(service: str) -> set[str]:
    """The topics the service's consumers subscribe to (one group member per topic)."""
    return consumed_by(service)


def start_groups_at_end(bootstrap: str, groups: dict[str, str]) -> None:
    """Commit each service's new consumer group (service -> group id) at the ends of the topics
    it reads: what earlier tests left on the shared topics is not this test's to consume."""
    for service, group in groups.items():
        asyncio.run(start_group_at_end(bootstrap, group, subscribed_topics(service)))


async def publish_roster(publish: EventPublisher, agents: Sequence[str], tag: str) -> None:
    """The agents on `mls.agents`, members for 400 days, in office `O-<tag>`."""
    for n, agent_id in enumerate(agents):
        await publish(
            AGENT_UPSERTED,
            agent_upserted(
                agent_id,
                name=f"Agent {n}",
                email=f"agent.{tag}.{n}@realty.example",
                office_id=f"O-{tag}",
                member_since=(datetime.now(UTC) - timedelta(days=400)).date(),
            ),
        )


def addressed_to(address: str) -> Callable[[EmailMessage], bool]:
    return lambda message: address in str(message.get("To", "")).lower()


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 120.0, every: float = 0.3
) -> Any:
    """The first truthy result of `check()`; TimeoutError after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{getattr(check, '__name__', 'condition')}: not met in time")
        await asyncio.sleep(every)
    return result


def closing(
    tag: str, n: int, agent_id: str, email: str, phone: str | None = None
) -> TransactionClosed:
    """Closing `T-<tag>-<n>`, two hours ago, with one client."""
    return transaction_closed(
        f"T-{tag}-{n}",
        agent_id,
        [client("Pat Doe", email, phone)],
        closed_at=datetime.now(UTC) - timedelta(hours=2),
        mls_number=f"MLS-{tag}-{n}",
        street=f"{n} Elm Rd",
    )


async def fetchval(database_url: str, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def stranded(database_url: str, schema: str) -> dict[str, int]:
    """Events never relayed and mail never sent in one service's schema."""
    return {
        "outbox": int(
            await fetchval(
                database_url, f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
            )
        ),
        "mail_outbox": int(
            await fetchval(
                database_url, f"SELECT count(*) FROM {schema}.mail_outbox WHERE sent_at IS NULL"
            )
        ),
    }


async def live_and_replayed_ratings(
    bootstrap: str, database_url: str, live_schema: str, replay_schema: str, agents: Sequence[str]
) -> tuple[list[RatingRow], list[RatingRow]]:
    """The agents' ratings in the live scoring store, and in `replay_schema` rebuilt from the
    topics by a fresh replay (`services/scoring/replay.py`) that publishes nothing: other tests
    on the shared broker count the rating events of their agents."""
    fresh = ScoringSettings(
        kafka_bootstrap_servers=bootstrap,
        database_url=database_url,
        database_schema=replay_schema,
    )
    await replay(fresh, policy_for(None), progress=lambda _line: None, publish=False)
    conn = await asyncpg.connect(database_url)
    try:
        live, rebuilt = [
            [
                tuple(row)
                for row in await conn.fetch(
                    f"SELECT {RATING_COLUMNS} FROM {schema}.ratings "
                    "WHERE agent_id = ANY($1::text[]) ORDER BY agent_id",
                    list(agents),
                )
            ]
            for schema in (live_schema, replay_schema)
        ]
    finally:
        await conn.close()
    return live, rebuilt
