"""deploy/local/kafka.sh itself, on a node of the test's own (port 9392, never the shared 9092):
start is idempotent, a kill -9 leaves a node that starts again on its data, and stop is a
controlled shutdown that leaves no pid file behind; a test's node is never another's."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.reliability.infrastructure import LocalKafka

pytestmark = pytest.mark.slow

PORT = 9392  # and 9393 for its controller


@pytest.fixture(scope="module")
def node() -> Iterator[LocalKafka]:
    kafka = LocalKafka(PORT)
    kafka.start(fresh=True)
    try:
        yield kafka
    finally:
        kafka.stop()


async def _topics(bootstrap: str, create: str | None = None) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        if create:
            await admin.create_topics([NewTopic(create, 2, 1)])
        return set(await admin.list_topics())
    finally:
        await admin.close()


def _pid(kafka: LocalKafka) -> int:
    return int((kafka.broker_dir / "kafka.pid").read_text())


def test_a_second_start_leaves_the_running_node_alone(node: LocalKafka) -> None:
    pid = _pid(node)
    node.start()
    assert _pid(node) == pid
    assert node.is_ready()


def test_a_node_killed_with_sigkill_starts_again_on_its_data(node: LocalKafka) -> None:
    asyncio.run(_topics(node.bootstrap, create="local-kafka-probe"))
    killed = _pid(node)
    node.kill()
    assert not (node.broker_dir / "kafka.pid").exists()
    assert not node.is_ready()

    node.start()

    assert _pid(node) != killed
    assert "local-kafka-probe" in asyncio.run(_topics(node.bootstrap))


def test_stop_shuts_down_and_a_second_stop_is_a_no_op(node: LocalKafka) -> None:
    node.stop()
    assert not (node.broker_dir / "kafka.pid").exists()
    assert not node.is_ready()
    node.stop()
    node.start()  # for the fixture's own stop
    assert node.is_ready()


def test_a_port_where_another_directory_s_broker_runs_is_not_taken_for_ones_own(
    node: LocalKafka, tmp_path: Path
) -> None:
    other = LocalKafka(PORT, broker_dir=tmp_path / "other")
    with pytest.raises(RuntimeError, match="another broker's"):
        other.start()
    assert node.is_ready()
