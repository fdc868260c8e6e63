"""Run the services as separate processes (`python -m services.<name>`), as in production:
used by `make demo` and the end-to-end test.

An instance is named after its service, or `<service>@<n>` for a further instance of it (its own
HTTP port and log file; the same service environment, so the same schema and consumer group)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVICE_PORTS: dict[str, int] = {
    "invitations": 8001,
    "reviews": 8002,
    "scoring": 8003,
    "removals": 8004,
    "directory": 8006,
    "portal": 8007,
}
STATELESS = frozenset({"portal"})
"""Services with no database and no Kafka consumer (no schema, no migrations, no lag)."""
ROOT = Path(__file__).resolve().parent.parent


def service_of(instance: str) -> str:
    """`reviews` and `reviews@2` both run the reviews service."""
    return instance.split("@", 1)[0]


@dataclass
class ServiceProcesses:
    env: Mapping[str, str]
    ports: Mapping[str, int] = field(default_factory=lambda: dict(SERVICE_PORTS))
    log_dir: Path = ROOT / ".local" / "logs"
    per_service_env: Callable[[str], Mapping[str, str]] = lambda _service: {}
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self, instance: str) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        port = self.ports[instance]
        service = service_of(instance)
        env = {
            **os.environ,
            **self.env,
            **self.per_service_env(service),
            "HTTP_PORT": str(port),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        }
        if "reviews" in self.ports:  # invitations' survey links
            env["REVIEWS_PUBLIC_BASE_URL"] = self.url("reviews")
        if service == "portal":  # the APIs it calls for the signed-in person
            for name in ("invitations", "reviews", "scoring", "removals"):
                if name in self.ports:
                    env[f"{name.upper()}_URL"] = self.url(name)
        log = (self.log_dir / f"{instance}.log").open("ab")
        self.procs[instance] = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_all(self, timeout: float = 90.0) -> None:
        for service in self.ports:
            self.start(service)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 90.0, instances: Iterable[str] | None = None) -> None:
        """Until every instance (default: every one in `ports`) answers /readyz."""
        deadline = time.monotonic() + timeout
        pending = set(self.ports if instances is None else instances)
        while pending:
            for service in sorted(pending):
                proc = self.procs[service]
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{service} exited with {proc.returncode}; see {self.log_dir / service}.log"
                    )
                try:
                    if httpx.get(f"{self.url(service)}/readyz", timeout=2).status_code == 200:
                        pending.discard(service)
                except httpx.HTTPError:
                    pass
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}")
            if pending:
                time.sleep(0.3)

    def kill(self, service: str) -> None:
        """kill -9: what a crash looks like."""
        proc = self.procs.pop(service)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self, instance: str, timeout: float = 30.0) -> bool:
        """SIGTERM: a graceful shutdown (consumers leave their group); kill -9 after `timeout`.
        True when the instance exited by itself in time."""
        proc = self.procs.pop(instance)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return False
        return True

    def stop_all(self, timeout: float = 30.0) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


@contextmanager
def running_services(env: Mapping[str, str], **kwargs: object) -> Iterator[ServiceProcesses]:
    services = ServiceProcesses(env=env, **kwargs)  # type: ignore[arg-type]
    try:
        services.start_all()
        yield services
    finally:
        services.stop_all()


async def wait_until_ready(services: ServiceProcesses, timeout: float = 90.0) -> None:
    await asyncio.to_thread(services.wait_ready, timeout)
