"""Consumer lag of a service's group, for `/metrics`: what Kafka holds that the group has not
committed yet.

Measured from the broker, not from the subscribers' own positions: the committed offset is what
a restart resumes from (a subscriber's position runs ahead of it by the records it prefetched or
holds in a stuck handler), and the broker still answers when a subscriber is wedged, which is
when the number matters. It costs three small requests a round (the topics' partitions, the
group's committed offsets, the end offsets) whatever the traffic, and every instance of the
group reports the same figure (dashboards and alerts take the max over instances).
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.kafka_security import Kafka, kafka_client_options


class ConsumerLag:
    def __init__(self, kafka: Kafka, group_id: str, topics: Iterable[str]) -> None:
        self.group_id = group_id
        self.topics = sorted(set(topics))
        connection = kafka_client_options(kafka)
        self._admin = AIOKafkaAdminClient(**connection, client_id=f"{group_id}-lag")
        # no group: it only asks for offsets, never joins or commits
        self._offsets = AIOKafkaConsumer(
            **connection,
            client_id=f"{group_id}-lag",
            enable_auto_commit=False,
            # end = the last stable offset: records of an open transaction are not yet readable
            isolation_level="read_committed",
        )

    async def start(self) -> None:
        try:
            await self._admin.start()
            await self._offsets.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        await self._offsets.stop()
        await self._admin.close()

    async def measure(self) -> dict[str, int]:
        """Records not yet committed by the group, per topic. A partition the group never
        committed counts from its beginning (the subscribers start at the earliest offset).

        A transactional topic (one an outbox relay writes) ends with a commit marker that takes
        an offset and that no commit ever passes, so a caught-up group may show a lag of one
        per partition there: alert on lag that grows, not on lag above zero."""
        described = await self._admin.describe_topics(self.topics)
        partitions = [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in described
            for partition in topic["partitions"]
        ]
        committed = {
            tp: meta.offset
            for tp, meta in (await self._admin.list_consumer_group_offsets(self.group_id)).items()
            if meta.offset >= 0
        }
        ends = await self._offsets.end_offsets(partitions)
        never_committed = [tp for tp in partitions if tp not in committed]
        if never_committed:
            committed.update(await self._offsets.beginning_offsets(never_committed))
        lag = dict.fromkeys(self.topics, 0)
        for tp in partitions:
            lag[tp.topic] += max(0, ends[tp] - committed[tp])
        return lag
