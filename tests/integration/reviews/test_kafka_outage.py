"""The survey stays up while Kafka is down: the reviews service runs against a broker of the
test's own, the broker is stopped, and a client still opens the survey and submits it; the
review reaches the topic once the broker is back (the outbox held it)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaProducer

from devtools.smtp_sink import MailSink
from services.reviews.app import create_app
from shared.clock import FixedClock
from shared.topics import Topic, ensure_topics
from tests.conftest import running_app
from tests.integration.reviews.conftest import (
    GOOD,
    START,
    Service,
    issue_invitation,
    reviews_settings,
)
from tests.reliability.infrastructure import LocalKafka
from tests.support.kafka import EventPublisher, TopicReader

pytestmark = pytest.mark.integration

KAFKA_PORT = 9592  # and 9593 for its controller; the shared broker is 9092


@pytest.fixture(scope="module")
def own_kafka() -> Iterator[LocalKafka]:
    kafka = LocalKafka(KAFKA_PORT)
    kafka.start(fresh=True)
    asyncio.run(ensure_topics(kafka.bootstrap))
    try:
        yield kafka
    finally:
        kafka.stop()


async def test_a_client_submits_the_survey_while_kafka_is_down(
    own_kafka: LocalKafka, database_url: str, smtp_sink: MailSink
) -> None:
    clock = FixedClock(START)
    settings = reviews_settings(own_kafka.bootstrap, database_url, smtp_sink.port)
    producer = AIOKafkaProducer(bootstrap_servers=own_kafka.bootstrap, acks="all")
    await producer.start()
    try:
        app = create_app(settings, clock=clock)
        async with running_app(app) as client:
            service = Service(app, client, clock, settings)
            issued = await issue_invitation(EventPublisher(producer), service)
            assert (await client.get("/readyz")).json()["checks"] == {
                "database": True,
                "kafka": True,
            }

            await asyncio.to_thread(own_kafka.stop)
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["kafka"] is False
            page = await client.get("/survey", params={"token": issued.token})
            assert page.status_code == 200 and "<form" in page.text
            submitted = await client.post(
                "/api/v1/reviews", json={"scores": GOOD, "comment": "Great.", "pin": issued.pin}
            )
            assert submitted.status_code == 201, submitted.text
            review_id = submitted.json()["review_id"]

            await asyncio.to_thread(own_kafka.start)
            reader = await TopicReader(own_kafka.bootstrap, Topic.REVIEWS_PUBLISHED).start()
            try:
                await reader.consumer.seek_to_beginning()  # type: ignore[union-attr]
                published = await reader.wait_for(
                    lambda e: e.data.get("review_id") == review_id, timeout=90
                )
            finally:
                await reader.stop()
            assert published.key == issued.agent_id
    finally:
        await producer.stop()
