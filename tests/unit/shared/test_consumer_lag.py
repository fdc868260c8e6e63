"""Consumer lag from the broker's offsets: end minus committed, summed per topic; a partition the
group never committed counts from its beginning, where the subscribers would start."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from shared.lag import ConsumerLag


class Admin:
    async def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        return [
            {"topic": topic, "partitions": [{"partition": p} for p in range(3)]} for topic in topics
        ]

    async def list_consumer_group_offsets(
        self, group_id: str
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        assert group_id == "scoring"
        return {
            TopicPartition("reviews.published", 0): OffsetAndMetadata(90, ""),
            TopicPartition("reviews.published", 1): OffsetAndMetadata(50, ""),
            TopicPartition("reviews.published", 2): OffsetAndMetadata(-1, ""),  # none
            TopicPartition("mls.agents", 0): OffsetAndMetadata(7, ""),
            TopicPartition("elsewhere", 0): OffsetAndMetadata(0, ""),  # not read by this service
        }


class Offsets:
    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 100 if tp.topic == "reviews.published" else 7 for tp in partitions}

    async def beginning_offsets(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return {tp: 40 if tp.topic == "reviews.published" else 5 for tp in partitions}


async def test_lag_is_end_minus_committed_per_topic_and_from_the_beginning_when_never_committed() -> (
    None
):
    lag = ConsumerLag("127.0.0.1:1", "scoring", ["reviews.published", "mls.agents"])
    lag._admin, lag._offsets = Admin(), Offsets()
    # reviews.published: (100 - 90) + (100 - 50) + (100 - 40, never committed)
    # mls.agents: (7 - 7) + (7 - 5) twice (never committed); the other group's topic is left out
    assert await lag.measure() == {"reviews.published": 120, "mls.agents": 4}
