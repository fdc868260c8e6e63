"""Configuration of the removals service, from the environment (documented in the README)."""

from __future__ import annotations

from pydantic import Field

from services.removals.domain.proof import DEFAULT_MAX_PROOF_BYTES
from shared.settings import ServiceSettings


class RemovalsSettings(ServiceSettings):
    """`SERVICE_NAME` (default `removals`) also names the consumer group and database schema;
    `HTTP_PORT` defaults to 8004."""

    service_name: str = "removals"
    http_port: int = 8004
    proof_max_bytes: int = Field(
        default=DEFAULT_MAX_PROOF_BYTES,
        ge=1024,
        le=50 * 1024 * 1024,
        description="The largest proof document an agent may upload, in bytes (5 MiB).",
    )
