"""Session fixtures for the real local stack: Kafka, PostgreSQL and an SMTP sink.

`make test` starts Kafka and PostgreSQL once for the session (deploy/local/*.sh); when pytest is
run on its own, these fixtures start what is not already running and stop it afterwards.
Integration tests get a fresh database schema per service instance, so tests do not share state.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from devtools.smtp_sink import MailSink, start_sink
from shared.settings import ServiceSettings
from shared.topics import ensure_topics
from tests.support.kafka import EventPublisher, TopicReader

# CI runs on a cold 2-core machine with no example database: the first draws of strategies
# such as st.emails() can take over a second, which is slowness of the machine, not of the
# code under test. Every example still runs; only the timing checks are relaxed.
settings.register_profile("project", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("project")

ROOT = Path(__file__).resolve().parent.parent
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    started = False
    if not _port_open(host, int(port)):
        subprocess.run([ROOT / "deploy/local/kafka.sh", "start"], check=True)
        started = True
    asyncio.run(ensure_topics(bootstrap))
    yield bootstrap
    if started:
        subprocess.run([ROOT / "deploy/local/kafka.sh", "stop"], check=False)


@pytest.fixture(scope="session")
def database_url() -> str:
    url = os.environ.get("DATABASE_URL", "postgresql://ratings:ratings@127.0.0.1:5432/ratings")

    async def reachable() -> bool:
        try:
            conn = await asyncpg.connect(url, timeout=3)
        except (OSError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    if not asyncio.run(reachable()):
        subprocess.run([ROOT / "deploy/local/postgres.sh", "start"], check=True)
    return url


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[MailSink]:
    controller, sink = start_sink(port=free_port())
    yield sink
    controller.stop()


@pytest.fixture
async def mail(smtp_sink: MailSink) -> MailSink:
    """The SMTP sink, ready to be awaited from this test's event loop."""
    smtp_sink.bind_loop(asyncio.get_running_loop())
    return smtp_sink


@pytest.fixture
def service_settings(
    kafka_bootstrap: str, database_url: str, smtp_sink: MailSink
) -> Callable[..., Any]:
    """Build a service's settings pointed at the local stack, with a fresh schema."""

    def build(cls: type[SettingsT], **overrides: Any) -> SettingsT:
        service = overrides.pop("service_name", None) or cls.model_fields["service_name"].default
        values: dict[str, Any] = {
            "environment": "test",
            "kafka_bootstrap_servers": kafka_bootstrap,
            "database_url": database_url,
            "database_schema": f"t_{uuid.uuid4().hex[:10]}_{service}",
            "smtp_port": smtp_sink.port,
            "kafka_group_id": f"test-{service}",
            "scheduler_interval_seconds": 0.2,
            "outbox_poll_seconds": 0.05,
        }
        values.update(overrides)
        return cls(**values)

    return build


@pytest.fixture(scope="session")
async def _producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
def publish_event(_producer: AIOKafkaProducer) -> EventPublisher:
    """`await publish_event(EVENT_TYPE, model, ce_id=None)`: a CloudEvent on the real broker."""
    return EventPublisher(_producer)


@pytest.fixture
async def topic_reader(kafka_bootstrap: str) -> AsyncIterator[Callable[[str], Any]]:
    """`reader = await topic_reader("ratings")`: what arrives on the topic from now on."""
    readers: list[TopicReader] = []

    async def open_reader(topic: str) -> TopicReader:
        reader = await TopicReader(kafka_bootstrap, topic).start()
        readers.append(reader)
        return reader

    yield open_reader
    for reader in readers:
        await reader.stop()


@asynccontextmanager
async def running_app(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run a service app in-process (its lifespan starts broker, relays and timers)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client


@pytest.fixture
def run_app() -> Callable[[FastAPI], Any]:
    """`async with run_app(app) as client:` — the service runs for the block."""
    return running_app
