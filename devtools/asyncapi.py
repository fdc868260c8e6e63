"""Export the AsyncAPI 3.0 documents of the Kafka contract to docs/asyncapi/ (`make asyncapi`).

`asyncapi.json` (and the same as `asyncapi.yaml`) is the whole system: every topic, who writes
and who reads it. Each service serves its own part at `/asyncapi` (shared.runtime).
A unit test (tests/unit/shared/test_asyncapi.py) fails when these files are stale.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import yaml

from shared.asyncapi import contract_document
from shared.messaging import EventDispatcher

DOC_DIR = Path(__file__).resolve().parents[1] / "docs" / "asyncapi"
SERVICES = ("invitations", "reviews", "scoring", "removals", "directory")
SERVERS = ["127.0.0.1:9092"]
"""The local stack's broker; a running service names its own `KAFKA_BOOTSTRAP_SERVERS`."""

TITLE = "Agent ratings: the Kafka contract"
DESCRIPTION = (
    "Every topic of the client-experience rating system, the CloudEvents 1.0 (binary content "
    "mode) events on it, their keys and JSON schemas, and who publishes and who reads each. "
    "MLS systems publish `mls.agents` and `mls.transactions`; downstream sites read `ratings` "
    "and `reviews.public`; the rest is between this system's services. Readers ignore "
    "properties they do not know and validate the known ones (docs/design.md 2.2). Generated "
    "from the code by `make asyncapi` (docs/design.md 2.5)."
)


def service_dispatcher(service: str) -> EventDispatcher:
    """The event routes and declarations of `services.<service>`, as its app built with
    default settings has them (building the app connects to nothing)."""
    app = importlib.import_module(f"services.{service}.app").create_app()
    dispatcher = app.state.runtime.dispatcher
    if not isinstance(dispatcher, EventDispatcher):
        raise TypeError(f"services.{service} builds no event dispatcher")
    return dispatcher


def dispatchers() -> list[EventDispatcher]:
    """Each service's declarations."""
    return [service_dispatcher(service) for service in SERVICES]


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render_documents() -> dict[str, str]:
    """File name -> text of every exported document."""
    every = dispatchers()
    system = contract_document(
        every, title=TITLE, description=DESCRIPTION, servers=SERVERS, whole_system=True
    )
    files = {
        "asyncapi.json": _json(system),
        "asyncapi.yaml": yaml.safe_dump(system, sort_keys=False, allow_unicode=True, width=100),
    }
    return files


def main() -> None:
    DOC_DIR.mkdir(parents=True, exist_ok=True)
    for old in [*DOC_DIR.glob("*.json"), *DOC_DIR.glob("*.yaml")]:
        old.unlink()
    files = render_documents()
    for name, text in files.items():
        (DOC_DIR / name).write_text(text)
    print(f"wrote {len(files)} AsyncAPI documents to {DOC_DIR}")


if __name__ == "__main__":
    main()
