"""How every Kafka client connects: the bootstrap servers, TLS and SASL of `KafkaSettings`.

`kafka_client_options` gives aiokafka's keyword arguments (producers, consumers, admin clients)
and `faststream_security` FastStream's `security=` object, both from the same settings, so no
client can be the one left talking plaintext. A bare bootstrap string stands for a plaintext
broker: what tests and development tools pass for the local one.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from shared.settings import KafkaSettings

Kafka = KafkaSettings | str
"""Where a Kafka client connects: settings, or a plaintext broker's bootstrap servers."""

_SASL_SECURITY: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
    "PLAIN": SASLPlaintext,
    "SCRAM-SHA-256": SASLScram256,
    "SCRAM-SHA-512": SASLScram512,
}


def bootstrap_servers(kafka: Kafka) -> list[str]:
    """A list: aiokafka splits only a bare string on commas, and FastStream wraps a string in a
    list, so "host1:9092,host2:9092" would there be read as a single host."""
    servers = kafka if isinstance(kafka, str) else kafka.kafka_bootstrap_servers
    return [server.strip() for server in servers.split(",") if server.strip()]


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context of SSL and SASL_SSL: the broker's certificate verified against
    KAFKA_SSL_CA_FILE (or the system's CAs), its host name checked; a client certificate if set."""
    if not settings.kafka_uses_tls:
        return None
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.kafka_ssl_ca_file,
        certfile=settings.kafka_ssl_cert_file,
        keyfile=settings.kafka_ssl_key_file,
    )
    return context


def kafka_client_options(kafka: Kafka) -> dict[str, Any]:
    """aiokafka's connection arguments: `AIOKafkaProducer(**kafka_client_options(kafka), ...)`."""
    options: dict[str, Any] = {"bootstrap_servers": bootstrap_servers(kafka)}
    if isinstance(kafka, str):
        return options
    options["security_protocol"] = kafka.kafka_security_protocol
    if kafka.kafka_uses_tls:
        options["ssl_context"] = ssl_context(kafka)
    if kafka.kafka_uses_sasl:
        options |= {
            "sasl_mechanism": kafka.kafka_sasl_mechanism,
            "sasl_plain_username": kafka.kafka_sasl_username,
            "sasl_plain_password": kafka.kafka_sasl_password,
        }
    return options


def faststream_security(settings: KafkaSettings) -> BaseSecurity | None:
    """FastStream's `KafkaBroker(security=...)` for the same connection (None: plaintext)."""
    context = ssl_context(settings)
    if settings.kafka_uses_sasl:
        security = _SASL_SECURITY[settings.kafka_sasl_mechanism]
        return security(
            settings.kafka_sasl_username,
            settings.kafka_sasl_password,
            ssl_context=context,
            use_ssl=settings.kafka_uses_tls,
        )
    if context is not None:
        return BaseSecurity(ssl_context=context)
    return None
