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

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = ROOT / ".local"


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
    (the jar cache in .local/kafka-jars is shared with the other brokers)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.broker_dir = STATE_DIR / f"kafka-{port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _script(self, command: str, timeout: float = 240) -> str:
        env = {k: v for k, v in os.environ.items() if k != "KAFKA_CONTROLLER_PORT"}
        env |= {"KAFKA_PORT": str(self.port), "STATE_DIR": str(STATE_DIR), "PYTHON": sys.executable}
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
