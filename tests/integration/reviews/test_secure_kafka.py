"""Kafka over TLS with SASL SCRAM-SHA-512: the reviews service runs against a broker of the
test's own that has a SASL_SSL listener (deploy/local/kafka.sh), and every client it has, the
FastStream consumers, the outbox relay's transactional producer and cursor consumer, the admin
clients, the DLQ tool, connects there; a wrong password or an untrusted broker is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from prometheus_client.parser import text_string_to_metric_families

from devtools.smtp_sink import MailSink
from services.reviews.app import create_app
from services.scoring.domain.publication import policy_for
from services.scoring.replay import replay
from shared.clock import FixedClock
from shared.dlq import all_dlq_topics, read_dead_letters
from shared.kafka_security import kafka_client_options
from shared.settings import KafkaSettings
from shared.topics import Topic, ensure_topics
from tests.conftest import running_app
from tests.integration.reviews.conftest import (
    GOOD,
    START,
    Service,
    issue_invitation,
    reviews_settings,
    unique,
)
from tests.integration.scoring.conftest import publish_review, review, rostered, scoring_settings
from tests.reliability.infrastructure import LocalKafka
from tests.support.kafka import EventPublisher, TopicReader, dispatcher_of, start_group_at_end

pytestmark = pytest.mark.integration

KAFKA_PORT = 9692  # 9693 its controller, 9694 SASL_SSL; the shared broker is 9092
SASL_SSL_PORT = 9694


@pytest.fixture(scope="module")
def secure_kafka() -> Iterator[LocalKafka]:
    kafka = LocalKafka(KAFKA_PORT, sasl_ssl_port=SASL_SSL_PORT)
    kafka.start(fresh=True)
    try:
        yield kafka
    finally:
        kafka.stop()


async def test_the_reviews_flow_runs_over_sasl_ssl(
    secure_kafka: LocalKafka, database_url: str, smtp_sink: MailSink
) -> None:
    secure = KafkaSettings(**secure_kafka.sasl_ssl_settings())
    await ensure_topics(secure)
    settings = reviews_settings(
        secure.kafka_bootstrap_servers,
        database_url,
        smtp_sink.port,
        metrics_interval_seconds=0.2,
        **secure_kafka.sasl_ssl_settings(),
    )
    clock = FixedClock(START)
    app = create_app(settings, clock=clock)
    await start_group_at_end(secure, settings.group_id, dispatcher_of(app).subscribed)
    reviews = await TopicReader(secure, Topic.REVIEWS_PUBLISHED).start()
    producer = AIOKafkaProducer(**kafka_client_options(secure), acks="all")
    await producer.start()
    try:
        async with running_app(app) as client:
            service = Service(app, client, clock, settings)
            # consumed by the service's FastStream subscriber
            issued = await issue_invitation(EventPublisher(producer), service)
            submitted = await client.post(
                "/api/v1/reviews", json={"scores": GOOD, "comment": "Great.", "pin": issued.pin}
            )
            assert submitted.status_code == 201, submitted.text
            review_id = submitted.json()["review_id"]
            # published by the outbox relay's transactional producer
            published = await reviews.wait_for(
                lambda e: e.data.get("review_id") == review_id, timeout=60
            )
            assert published.key == issued.agent_id
            assert (await client.get("/readyz")).json()["checks"]["kafka"] is True
            # measured by the runtime's own admin client and offsets consumer
            lag = {"group": settings.group_id, "topic": str(Topic.INVITATIONS_EVENTS)}
            assert await _consumer_lag_once_caught_up(client, lag) == 0
    finally:
        await producer.stop()
        await reviews.stop()
    assert await read_dead_letters(secure, all_dlq_topics()) == []


async def test_the_scoring_replay_reads_and_republishes_over_sasl_ssl(
    secure_kafka: LocalKafka, database_url: str
) -> None:
    secure = KafkaSettings(**secure_kafka.sasl_ssl_settings())
    await ensure_topics(secure)
    agent_id = unique("A")
    producer = AIOKafkaProducer(**kafka_client_options(secure), acks="all")
    await producer.start()
    try:
        await rostered(EventPublisher(producer), agent_id)
        await publish_review(EventPublisher(producer), review(agent_id, START))
    finally:
        await producer.stop()
    ratings = await TopicReader(secure, Topic.RATINGS).start()
    try:
        settings = scoring_settings(
            secure.kafka_bootstrap_servers,
            database_url,
            clock_fixed_at=START.isoformat(),
            **secure_kafka.sasl_ssl_settings(),
        )
        report = await replay(
            settings, policy_for(settings.scoring_policy_version), progress=lambda _: None
        )
        assert report.events[Topic.REVIEWS_PUBLISHED] >= 1
        # published by the replay's own outbox relay
        await ratings.wait_for(lambda e: e.key == agent_id, timeout=60)
    finally:
        await ratings.stop()


async def test_a_wrong_password_is_refused(secure_kafka: LocalKafka) -> None:
    wrong = KafkaSettings(**secure_kafka.sasl_ssl_settings(password="not-the-password"))
    producer = AIOKafkaProducer(**kafka_client_options(wrong), request_timeout_ms=5000)
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()


async def test_a_broker_whose_certificate_no_trusted_ca_signed_is_refused(
    secure_kafka: LocalKafka,
) -> None:
    """Without KAFKA_SSL_CA_FILE the system's CAs are trusted, and none signed the local one."""
    untrusting = KafkaSettings(**{**secure_kafka.sasl_ssl_settings(), "kafka_ssl_ca_file": None})
    producer = AIOKafkaProducer(**kafka_client_options(untrusting), request_timeout_ms=5000)
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()


def test_the_plaintext_listener_of_the_same_broker_is_not_the_one_used(
    secure_kafka: LocalKafka,
) -> None:
    """The flow above cannot have gone through the PLAINTEXT port: SASL_SSL advertises itself."""
    assert secure_kafka.sasl_ssl_settings()["kafka_bootstrap_servers"].endswith(f":{SASL_SSL_PORT}")
    assert asyncio.run(_advertised_ports(secure_kafka)) == {SASL_SSL_PORT}


async def _consumer_lag_once_caught_up(
    client: httpx.AsyncClient, labels: dict[str, str], timeout: float = 30.0
) -> float | None:
    """The group's lag as /metrics serves it: 0 once measured after the commit, else the last
    value seen (None if it was never measured)."""
    deadline = asyncio.get_running_loop().time() + timeout
    value = None
    while value != 0 and asyncio.get_running_loop().time() < deadline:
        for family in text_string_to_metric_families((await client.get("/metrics")).text):
            for sample in family.samples:
                if sample.name == "ratings_consumer_lag" and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    value = float(sample.value)
        await asyncio.sleep(0.2)
    return value


async def _advertised_ports(kafka: LocalKafka) -> set[int]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka_client_options(KafkaSettings(**kafka.sasl_ssl_settings())))
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    return {broker["port"] for broker in cluster["brokers"]}
