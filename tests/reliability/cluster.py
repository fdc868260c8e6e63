"""A three-node KRaft cluster on loopback, for broker-loss tests and the soak: three nodes of
deploy/local/kafka.sh, each a broker and one of three controller voters (the smallest quorum
that survives losing a node). Topics, internal ones included, are replicated three times with
min.insync.replicas=2: acks=all writes go on with one node down and stop with two down.
Also the admin-client views of the cluster the tests assert on.

Node n (1..3) listens on 127.0.0.1:base_port + 2(n-1) for clients and the next port for its
controller (base 9792: 9792-9797); state in .local/kafka-cluster-<base_port>/node-<n>/.
From Python: KafkaCluster(base_port).start() / .stop() / .kill(n) / .start_node(n). By hand:

    python -m tests.reliability.cluster [--base-port 9792] start [--fresh]|stop|status|bootstrap|leader
    python -m tests.reliability.cluster [--base-port 9792] kill|start-node|stop-node N
    KAFKA_BOOTSTRAP_SERVERS=$(python -m tests.reliability.cluster bootstrap) \
      TOPIC_REPLICATION_FACTOR=3 TOPIC_MIN_INSYNC_REPLICAS=2 python -m shared.topics
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sys
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.reliability.infrastructure import STATE_DIR, LocalKafka

NODES = (1, 2, 3)
CLUSTER_ID = "YWdlbnQtcmF0aW5ncy0zbg"
"""Every node is formatted with it: Kafka's 16-byte ids in base64url, here b"agent-ratings-3n"."""
HEAP = "-Xmx384m -Xms128m"
"""Per node: three JVMs on a small machine."""


@dataclass(frozen=True, order=True)
class PartitionState:
    topic: str
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


class KafkaCluster:
    """Node n listens on base_port + 2(n-1) (clients) and the next port (controller). With
    `routed`, node n also listens on base_port + 20 + (n-1) and advertises base_port + 30 +
    (n-1) there: the ports of proxies the caller owns (`routed_links`), so clients that
    bootstrap on `routed_bootstrap` reach every broker through them."""

    def __init__(self, base_port: int = 9792, *, routed: bool = False) -> None:
        self.base_port = base_port
        self.routed = routed
        self.state_dir = STATE_DIR / f"kafka-cluster-{base_port}"
        voters = ",".join(f"{n}@127.0.0.1:{self._port(n) + 1}" for n in NODES)
        self.nodes = {
            n: LocalKafka(
                self._port(n),
                node_id=n,
                voters=voters,
                replication=len(NODES),
                cluster_id=CLUSTER_ID,
                broker_dir=self.state_dir / f"node-{n}",
                heap=HEAP,
                routed=self.routed_links[n] if routed else None,
            )
            for n in NODES
        }

    def _port(self, node: int) -> int:
        return self.base_port + 2 * (node - 1)

    @property
    def routed_links(self) -> dict[int, tuple[int, int]]:
        """Node -> (its routed listener's port, the port it advertises there: a proxy's)."""
        return {n: (self.base_port + 19 + n, self.base_port + 29 + n) for n in NODES}

    @property
    def routed_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{advertised}" for _, advertised in self.routed_links.values())

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes.values())

    def _each(self, action: Callable[[LocalKafka], object]) -> None:
        """On every node at once: stopping one by one would leave the last ones without a
        quorum to acknowledge their controlled shutdown."""
        with ThreadPoolExecutor(len(NODES)) as pool:
            for done in [pool.submit(action, node) for node in self.nodes.values()]:
                done.result()

    def start(self, *, fresh: bool = True) -> None:
        """Until every node is ready. Fresh: wipe what an earlier run left, so topics, groups
        and offsets start empty. The JVMs are launched together first: no node is ready before
        two controllers have elected a leader."""
        if fresh:
            self.stop()
            shutil.rmtree(self.state_dir, ignore_errors=True)
        for node in self.nodes.values():
            node.launch()
        for node in self.nodes.values():
            node.start()

    def stop(self) -> None:
        self._each(LocalKafka.stop)

    def kill(self, node: int) -> None:
        """kill -9 one node: no controlled shutdown, no leadership handed over."""
        self.nodes[node].kill()

    def start_node(self, node: int) -> None:
        """(Re)start one node, until it has rejoined."""
        self.nodes[node].start()

    def stop_node(self, node: int) -> None:
        """A controlled shutdown of one node."""
        self.nodes[node].stop()

    def active_controller(self) -> int:
        """The KRaft quorum leader, from Kafka's own MetadataQuorumCommand."""
        described = self.nodes[1].script(
            "tool",
            "org.apache.kafka.tools.MetadataQuorumCommand",
            "--bootstrap-server",
            self.bootstrap,
            "describe",
            "--status",
            timeout=90,
        )
        leader = re.search(r"^LeaderId:\s*(\d+)", described, re.MULTILINE)
        if leader is None:
            raise RuntimeError(f"no LeaderId in the quorum description:\n{described}")
        return int(leader.group(1))


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.cluster")
    parser.add_argument("--base-port", type=int, default=9792)
    parser.add_argument(
        "command",
        choices=[
            "start",
            "stop",
            "status",
            "bootstrap",
            "leader",
            "kill",
            "start-node",
            "stop-node",
        ],
    )
    parser.add_argument("node", nargs="?", type=int, choices=NODES)
    parser.add_argument("--fresh", action="store_true", help="start: wipe the data first")
    args = parser.parse_args(argv)
    cluster = KafkaCluster(args.base_port)
    if args.command in {"kill", "start-node", "stop-node"}:
        if args.node is None:
            parser.error(f"{args.command} needs a node number")
        {"kill": cluster.kill, "start-node": cluster.start_node, "stop-node": cluster.stop_node}[
            args.command
        ](args.node)
    elif args.command == "start":
        cluster.start(fresh=args.fresh)
    elif args.command == "stop":
        cluster.stop()
    elif args.command == "status":
        ready = {n: node.is_ready() for n, node in cluster.nodes.items()}
        for n, up in ready.items():
            print(f"node {n} 127.0.0.1:{cluster.nodes[n].port}: {'ready' if up else 'not ready'}")
        return 0 if all(ready.values()) else 1
    elif args.command == "bootstrap":
        print(cluster.bootstrap)
    else:
        print(cluster.active_controller())
    return 0


if __name__ == "__main__":
    sys.exit(main())
