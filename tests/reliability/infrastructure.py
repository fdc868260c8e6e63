"""A test's own single-node Kafka and own PostgreSQL, on ports of their own, driven through
deploy/local/kafka.sh and deploy/local/postgres.sh: stopped, killed and started again by
infrastructure-fault tests without touching the shared local stack (9092, 5432)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = ROOT / ".local"
_SET_PER_NODE = {
    "KAFKA_CONTROLLER_PORT",
    "KAFKA_DIR",
    "KAFKA_NODE_ID",
    "KAFKA_VOTERS",
    "KAFKA_REPLICATION",
    "KAFKA_CLUSTER_ID",
    "KAFKA_HEAP_OPTS",
    "KAFKA_SASL_SSL_PORT",
    "KAFKA_SASL_SSL_USER",
    "KAFKA_SASL_SSL_PASSWORD",
    "KAFKA_ROUTED_PORT",
    "KAFKA_ROUTED_ADVERTISED_PORT",
}
"""kafka.sh variables a node of a test's own must not inherit from the caller's environment."""


def _run(script: str, args: list[str], env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(
        [str(ROOT / "deploy" / "local" / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{script} {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done.stdout + done.stderr


class LocalKafka:
    """One KRaft node (broker + controller) of deploy/local/kafka.sh on 127.0.0.1:port, its
    controller on port + 1, state in .local/kafka-<port> (the jar cache in .local/kafka-jars is
    shared with the other nodes). With a `sasl_ssl_port`, also a SASL_SSL listener there
    (SCRAM-SHA-512, a throwaway CA). Alone by default; tests.reliability.cluster makes three
    of them one cluster (node_id, voters, replication, cluster_id, broker_dir)."""

    SASL_USER = "ratings"
    SASL_PASSWORD = "ratings-local-only"

    def __init__(
        self,
        port: int,
        *,
        sasl_ssl_port: int | None = None,
        node_id: int = 1,
        voters: str | None = None,
        replication: int = 1,
        cluster_id: str | None = None,
        broker_dir: Path | None = None,
        heap: str | None = None,
        routed: tuple[int, int] | None = None,
    ) -> None:
        """`routed`: (port, advertised port) of a listener reached through a proxy (kafka.sh's
        KAFKA_ROUTED_PORT): its clients keep every connection on the proxy's port."""
        self.port = port
        self.sasl_ssl_port = sasl_ssl_port
        self.broker_dir = broker_dir or STATE_DIR / f"kafka-{port}"
        self._node = {
            "KAFKA_PORT": str(port),
            "KAFKA_DIR": str(self.broker_dir),
            "KAFKA_NODE_ID": str(node_id),
            "KAFKA_REPLICATION": str(replication),
            **({"KAFKA_VOTERS": voters} if voters else {}),
            **({"KAFKA_CLUSTER_ID": cluster_id} if cluster_id else {}),
            **({"KAFKA_HEAP_OPTS": heap} if heap else {}),
            **(
                {
                    "KAFKA_ROUTED_PORT": str(routed[0]),
                    "KAFKA_ROUTED_ADVERTISED_PORT": str(routed[1]),
                }
                if routed
                else {}
            ),
        }

    @property
    def ca_file(self) -> Path:
        """The CA that signed the SASL_SSL listener's certificate."""
        return self.broker_dir / "tls" / "ca.pem"

    def sasl_ssl_settings(self, password: str = SASL_PASSWORD) -> dict[str, Any]:
        """The `KAFKA_*` settings of a client of the SASL_SSL listener."""
        if self.sasl_ssl_port is None:
            raise ValueError("started without a SASL_SSL listener")
        return {
            "kafka_bootstrap_servers": f"127.0.0.1:{self.sasl_ssl_port}",
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": self.SASL_USER,
            "kafka_sasl_password": password,
            "kafka_ssl_ca_file": str(self.ca_file),
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def script(self, *args: str, timeout: float = 240) -> str:
        """deploy/local/kafka.sh <args> for this node: its output; RuntimeError if it fails."""
        env = {k: v for k, v in os.environ.items() if k not in _SET_PER_NODE}
        env |= {"STATE_DIR": str(STATE_DIR), **self._node}
        if self.sasl_ssl_port is not None:
            env |= {
                "KAFKA_SASL_SSL_PORT": str(self.sasl_ssl_port),
                "KAFKA_SASL_SSL_USER": self.SASL_USER,
                "KAFKA_SASL_SSL_PASSWORD": self.SASL_PASSWORD,
            }
        return _run("kafka.sh", list(args), env, timeout)

    def start(self, *, fresh: bool = False) -> None:
        """Until ready. Fresh: wipe an earlier run's data, so topics, groups and offsets start
        empty; otherwise start on the data the last stop or kill left."""
        if fresh:
            self.stop()
            shutil.rmtree(self.broker_dir, ignore_errors=True)
        said = self.script("start")
        if not (self.broker_dir / "kafka.pid").exists():
            # kafka.sh leaves a broker of another directory alone (the shared one, started from
            # another checkout): a test's own node must be its own, or it would stop nothing
            raise RuntimeError(f"127.0.0.1:{self.port} is another broker's:\n{said}")

    def launch(self) -> None:
        """Start the JVM without waiting for it (start() afterwards waits)."""
        self.script("launch")

    def stop(self) -> None:
        """SIGTERM: a controlled shutdown (the script sends SIGKILL after 30 s)."""
        self.script("stop")

    def kill(self) -> None:
        """kill -9 of the broker the script started: no controlled shutdown, no flush."""
        self.script("kill")

    def is_ready(self) -> bool:
        try:
            self.script("status", timeout=90)
        except RuntimeError:
            return False
        return True


class LocalPostgres:
    """A PostgreSQL cluster of its own on 127.0.0.1:port, data in .local/postgres-<port>."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.data_dir = STATE_DIR / f"postgres-{port}"
        self.url = f"postgresql://ratings:ratings@127.0.0.1:{port}/ratings"

    def _script(self, command: str, stop_mode: str = "fast") -> str:
        # without DATABASE_URL: a reachable one would make the script start nothing
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env |= {"PG_PORT": str(self.port), "STATE_DIR": str(STATE_DIR), "PG_STOP_MODE": stop_mode}
        return _run("postgres.sh", [command], env, timeout=120)

    def start(self, *, fresh: bool = False) -> None:
        if fresh:
            self.stop("immediate")
            shutil.rmtree(self.data_dir, ignore_errors=True)
        self._script("start")

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop -m fast (sessions rolled back and disconnected, then a checkpoint) or
        -m immediate (no checkpoint: crash recovery from the WAL on the next start)."""
        self._script("stop", stop_mode=mode)
