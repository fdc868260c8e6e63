"""A downstream site's copy of public ratings and reviews, kept right from the public streams.

This is the example the README points MLS sites at. It reads only `ratings` and `reviews.public`
(CloudEvents 1.0 binary mode: the type is the `ce_type` header, the value is the JSON data),
needs nothing of this project but aiokafka, and keeps the copy correct through an agent going
public (their reviews arrive), going hidden or leaving (a `review.withdrawn.v1` with reason
`agent_not_public` for each review shown, and a rating whose `visibility` is not `public`), and
moderators' withdrawals. Applying the same record twice changes nothing, so at-least-once
delivery is enough.

    python -m examples.public_site --bootstrap 127.0.0.1:9092           # read to the end, report
    python -m examples.public_site --bootstrap 127.0.0.1:9092 --follow  # and keep following
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

PUBLIC_TOPICS = ("ratings", "reviews.public")


@dataclass
class SiteCopy:
    """What a public site may show: ratings of public agents and their public reviews."""

    ratings: dict[str, dict[str, Any]] = field(default_factory=dict)
    reviews: dict[str, dict[str, Any]] = field(default_factory=dict)

    def apply(self, ce_type: str, data: dict[str, Any]) -> None:
        if ce_type == "rating.updated.v1":
            if data["visibility"] == "public":
                self.ratings[data["agent_id"]] = data
            else:  # hidden or opted out now: take the stars down
                self.ratings.pop(data["agent_id"], None)
        elif ce_type == "review.published.v1":
            self.reviews[data["review_id"]] = data  # a republication replaces the older copy
        elif ce_type == "review.withdrawn.v1":
            self.reviews.pop(data["review_id"], None)
        # other types: a tolerant reader skips what it does not know

    def reviews_of(self, agent_id: str) -> list[dict[str, Any]]:
        mine = [r for r in self.reviews.values() if r["agent_id"] == agent_id]
        return sorted(mine, key=lambda r: r["submitted_at"], reverse=True)


def record_type(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> str | None:
    for name, value in headers:
        if name == "ce_type":
            return value.decode()
    return None


async def read(bootstrap: str, site: SiteCopy, *, follow: bool = False) -> SiteCopy:
    """Read both public topics from their beginning into `site`: to their current ends, or for
    ever with `follow`. Only committed records (`read_committed`): the producers write in Kafka
    transactions. A real site commits offsets with a group id and stores its copy."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic, numbers in (await partitions_of(bootstrap, PUBLIC_TOPICS)).items()
            for p in numbers
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while True:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    ce_type = record_type(record.headers)
                    if ce_type and record.value:
                        site.apply(ce_type, json.loads(record.value))
            if not follow and all([await consumer.position(tp) >= ends[tp] for tp in partitions]):
                return site
    finally:
        await consumer.stop()


async def partitions_of(bootstrap: str, topics: tuple[str, ...]) -> dict[str, list[int]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return {t["topic"]: sorted(p["partition"] for p in t["partitions"]) for t in described}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--follow", action="store_true")
    args = parser.parse_args()
    site = asyncio.run(read(args.bootstrap, SiteCopy(), follow=args.follow))
    print(f"{len(site.ratings)} public agents, {len(site.reviews)} public reviews")


if __name__ == "__main__":
    main()
