"""A three-node KRaft cluster on loopback for broker-loss tests, driven through the cluster mode
of deploy/local/kafka.sh, and the admin-client views of it the tests assert on."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "local" / "kafka.sh"
NODES = (1, 2, 3)


@dataclass(frozen=True, order=True)
class PartitionState:
    topic: str
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


class KafkaCluster:
    """Node n listens on base_port + 2(n-1) (clients) and the next port (controller)."""

    def __init__(self, base_port: int = 9792) -> None:
        self.base_port = base_port
        self.state_dir = ROOT / ".local" / f"kafka-cluster-{base_port}"

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.base_port + 2 * (n - 1)}" for n in NODES)

    def _script(self, *args: str, timeout: float = 300) -> str:
        env = {**os.environ, "KAFKA_CLUSTER_PORT": str(self.base_port), "PYTHON": sys.executable}
        done = subprocess.run(
            [str(SCRIPT), "cluster", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"kafka.sh cluster {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stdout}{done.stderr}"
            )
        return done.stdout

    def start(self, *, fresh: bool = True) -> None:
        """Fresh: wipe what an earlier run left, so topics, groups and offsets start empty."""
        if fresh:
            self._script("stop")
            shutil.rmtree(self.state_dir, ignore_errors=True)
        self._script("start")

    def stop(self) -> None:
        self._script("stop")

    def kill(self, node: int) -> None:
        """kill -9 one node: no controlled shutdown, no leadership handed over."""
        self._script("kill", str(node))

    def start_node(self, node: int) -> None:
        self._script("start-node", str(node))

    def active_controller(self) -> int:
        """The KRaft quorum leader, from Kafka's own MetadataQuorumCommand."""
        return int(self._script("leader", timeout=90).strip())


async def partition_states(
    bootstrap: str, topics: Iterable[str] | None = None
) -> list[PartitionState]:
    """Leader, replicas and in-sync replicas of every partition (all topics if none given)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics) if topics is not None else None)
    finally:
        await admin.close()
    return sorted(
        PartitionState(
            topic["topic"],
            part["partition"],
            part["leader"],
            tuple(sorted(part["replicas"])),
            tuple(sorted(part["isr"])),
        )
        for topic in described
        for part in topic["partitions"]
    )


async def topic_configs(
    bootstrap: str, topics: Iterable[str], names: Iterable[str]
) -> dict[str, dict[str, str]]:
    """The given config values of each topic, as the brokers report them."""
    wanted = set(names)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
        )
    finally:
        await admin.close()
    found: dict[str, dict[str, str]] = {}
    for response in responses:
        for _code, _message, _type, name, entries in response.resources:
            found[name] = {entry[0]: entry[1] for entry in entries if entry[0] in wanted}
    return found


async def coordinators(
    bootstrap: str, groups: Iterable[str], transactional_ids: Iterable[str]
) -> dict[str, int]:
    """The node coordinating each consumer group and each transactional producer."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        found = {f"group {g}": await admin.find_coordinator(g, 0) for g in groups}
        for tid in transactional_ids:
            found[f"transactions {tid}"] = await admin.find_coordinator(tid, 1)
        return found
    finally:
        await admin.close()


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float, every: float = 0.5
) -> float:
    """Seconds until `check()` held; TimeoutError after `timeout`. A failing check (a node
    refusing an admin request mid-failover) counts as not yet."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        try:
            held = await check()
        except Exception:
            held = False
        if held:
            return loop.time() - started
        if loop.time() - started > timeout:
            name = getattr(check, "__name__", "condition")
            raise TimeoutError(f"{name}: not met within {timeout:.0f}s")
        await asyncio.sleep(every)
