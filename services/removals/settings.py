"""Configuration of the removals service, from the environment (documented in the README)."""

from __future__ import annotations

from shared.settings import ServiceSettings


class RemovalsSettings(ServiceSettings):
    """`SERVICE_NAME` (default `removals`) also names the consumer group and database schema;
    `HTTP_PORT` defaults to 8004."""

    service_name: str = "removals"
    http_port: int = 8004
