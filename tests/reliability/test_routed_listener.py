"""The soak's slow link between a service and Kafka (devtools/soak.py): a broker with kafka.sh's
routed listener advertises the proxy's port there, so a client that bootstraps on the proxy
keeps every connection, the group coordinator's included, on the proxy, and the proxy's delay
slows it. Without the routed listener a proxy sees only the bootstrap connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devtools.proxy import TcpProxy
from tests.conftest import free_port
from tests.reliability.infrastructure import LocalKafka

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DELAY = 0.05


class CountingProxy(TcpProxy):
    connections = 0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await super()._accept(reader, writer)


@pytest.fixture(scope="module")
async def routed() -> AsyncIterator[tuple[LocalKafka, CountingProxy]]:
    listening, advertised = free_port(), free_port()
    node = LocalKafka(9982, routed=(listening, advertised))
    await asyncio.to_thread(node.start, fresh=True)
    proxy = CountingProxy(advertised, listening)
    await proxy.start()
    try:
        yield node, proxy
    finally:
        await proxy.stop()
        await asyncio.to_thread(node.stop)


async def test_a_client_bootstrapped_on_the_proxy_stays_on_it_and_is_slowed(
    routed: tuple[LocalKafka, CountingProxy],
) -> None:
    node, proxy = routed
    admin = AIOKafkaAdminClient(bootstrap_servers=node.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("routed", 1, 1)])
    finally:
        await admin.close()
    via_proxy = f"127.0.0.1:{proxy.port}"

    producer = AIOKafkaProducer(bootstrap_servers=via_proxy)
    await producer.start()
    try:
        await producer.send_and_wait("routed", b"warm-up")
        started = time.monotonic()
        await producer.send_and_wait("routed", b"fast")
        fast = time.monotonic() - started
        proxy.delay = DELAY
        started = time.monotonic()
        await producer.send_and_wait("routed", b"slow")
        slow = time.monotonic() - started
        proxy.delay = 0
    finally:
        await producer.stop()
    # a request and its answer each wait DELAY at the proxy
    assert slow >= 2 * DELAY > fast, (fast, slow)
    producer_connections = proxy.connections
    assert producer_connections >= 2  # bootstrap, then the partition leader: both on the proxy

    consumer = AIOKafkaConsumer(
        "routed", bootstrap_servers=via_proxy, group_id="routed", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(values) < 3 and time.monotonic() < deadline:
            got = await consumer.getmany(timeout_ms=1000)
            values += [
                record.value for records in got.values() for record in records if record.value
            ]
    finally:
        await consumer.stop()
    assert values == [b"warm-up", b"fast", b"slow"]
    # bootstrap, the leader and the group coordinator: all reached through the proxy
    assert proxy.connections >= producer_connections + 2
