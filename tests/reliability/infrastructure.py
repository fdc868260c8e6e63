"""A test's own single-node Kafka and own PostgreSQL, on ports of their own, driven through
deploy/local/kafka.sh and deploy/local/postgres.sh: stopped, killed and started again by
infrastructure-fault tests without touching the shared local stack (9092, 5432)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = ROOT / ".local"
_SET_PER_BROKER = {
    "KAFKA_CONTROLLER_PORT",
    "KAFKA_SASL_SSL_PORT",
    "KAFKA_SASL_SSL_USER",
    "KAFKA_SASL_SSL_PASSWORD",
}
"""kafka.sh variables a broker of a test's own must not inherit from the caller's environment."""


def _run(script: str, command: str, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(
        [str(ROOT / "deploy" / "local" / script), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{script} {command} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done.stdout + done.stderr


class LocalKafka:
    """One KRaft node (broker + controller) on 127.0.0.1:port, state in .local/kafka-<port>
    (the jar cache in .local/kafka-jars is shared with the other brokers). With a
    `sasl_ssl_port`, also a SASL_SSL listener there (SCRAM-SHA-512, a throwaway CA)."""

    SASL_USER = "ratings"
    SASL_PASSWORD = "ratings-local-only"

    def __init__(self, port: int, *, sasl_ssl_port: int | None = None) -> None:
        self.port = port
        self.sasl_ssl_port = sasl_ssl_port
        self.broker_dir = STATE_DIR / f"kafka-{port}"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the SASL_SSL listener's certificate."""
        return self.broker_dir / "tls" / "ca.pem"

    def sasl_ssl_settings(self, password: str = SASL_PASSWORD) -> dict[str, Any]:
        """The `KAFKA_*` settings of a client of the SASL_SSL listener."""
        assert self.sasl_ssl_port is not None, "started without a SASL_SSL listener"
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

    def _script(self, command: str, timeout: float = 240) -> str:
        env = {k: v for k, v in os.environ.items() if k not in _SET_PER_BROKER}
        env |= {"KAFKA_PORT": str(self.port), "STATE_DIR": str(STATE_DIR), "PYTHON": sys.executable}
        if self.sasl_ssl_port is not None:
            env |= {
                "KAFKA_SASL_SSL_PORT": str(self.sasl_ssl_port),
                "KAFKA_SASL_SSL_USER": self.SASL_USER,
                "KAFKA_SASL_SSL_PASSWORD": self.SASL_PASSWORD,
            }
        return _run("kafka.sh", command, env, timeout)

    def start(self, *, fresh: bool = False) -> None:
        """Fresh: wipe an earlier run's data, so topics, groups and offsets start empty;
        otherwise start on the data the last stop or kill left."""
        if fresh:
            self.stop()
            shutil.rmtree(self.broker_dir, ignore_errors=True)
        self._script("start")

    def stop(self) -> None:
        """SIGTERM: a controlled shutdown (the script sends SIGKILL after 30 s)."""
        self._script("stop")

    def kill(self) -> None:
        """kill -9 of the broker the script started: no controlled shutdown, no flush."""
        pid = int((self.broker_dir / "kafka.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        if f"kafka.Kafka {self.broker_dir / 'server.properties'}" not in cmdline:
            raise RuntimeError(f"pid {pid} is not the broker of {self.broker_dir}: {cmdline}")
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid)


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
        return _run("postgres.sh", command, env, timeout=120)

    def start(self, *, fresh: bool = False) -> None:
        if fresh:
            self.stop("immediate")
            shutil.rmtree(self.data_dir, ignore_errors=True)
        self._script("start")

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop -m fast (sessions rolled back and disconnected, then a checkpoint) or
        -m immediate (no checkpoint: crash recovery from the WAL on the next start)."""
        self._script("stop", stop_mode=mode)


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return
        if state == "Z":  # dead; its parent (not us) has yet to reap it
            return
        time.sleep(0.05)
    raise TimeoutError(f"pid {pid} still alive {timeout:.0f}s after SIGKILL")
