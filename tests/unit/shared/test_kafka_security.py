"""Every Kafka client connects as `KAFKA_*` settings say, and production refuses plaintext
Kafka unless KAFKA_ALLOW_PLAINTEXT=true says so (docs/design.md 3.4)."""

from __future__ import annotations

import re
import secrets
import ssl
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka.security import parse_security
from faststream.security import SASLPlaintext, SASLScram256, SASLScram512
from pydantic import ValidationError

from shared.kafka_security import faststream_security, kafka_client_options
from shared.runtime import ServiceRuntime
from shared.settings import KafkaSettings, ServiceSettings
from tests.support.tls import write_throwaway_tls


def _production(**kafka: Any) -> dict[str, Any]:
    generated = {
        name: secrets.token_urlsafe(48) for name in ("auth_secret", "pii_key", "token_pepper")
    }
    return {"environment": "production", **generated, **kafka}


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_production_refuses_unencrypted_kafka_naming_the_variable_that_allows_it(
    protocol: str,
) -> None:
    with pytest.raises(ValidationError) as refused:
        ServiceSettings(**_production(kafka_security_protocol=protocol))
    assert f"KAFKA_SECURITY_PROTOCOL={protocol} is unencrypted" in str(refused.value)
    assert "KAFKA_ALLOW_PLAINTEXT=true" in str(refused.value)


def test_the_command_line_tools_refuse_it_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="KAFKA_ALLOW_PLAINTEXT=true"):
        KafkaSettings()
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    assert KafkaSettings().kafka_security_protocol == "SSL"


def test_production_takes_plaintext_kafka_when_allowed_explicitly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_ALLOW_PLAINTEXT", "true")
    settings = ServiceSettings(**_production())
    assert settings.kafka_security_protocol == "PLAINTEXT"


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_production_takes_encrypted_kafka(protocol: str) -> None:
    password = secrets.token_urlsafe(32)
    settings = ServiceSettings(
        **_production(kafka_security_protocol=protocol, kafka_sasl_password=password)
    )
    assert settings.kafka_uses_tls


def test_the_sasl_password_is_a_secret_only_when_sasl_is_used() -> None:
    """Not one we generate (the Kafka operator issues it): any length, but never shared."""
    production = _production(kafka_security_protocol="SASL_SSL")
    with pytest.raises(ValidationError, match="PII_KEY and KAFKA_SASL_PASSWORD are equal"):
        ServiceSettings(**production | {"kafka_sasl_password": production["pii_key"]})
    ServiceSettings(**production | {"kafka_sasl_password": "twelve-chars"})
    ServiceSettings(**_production(kafka_security_protocol="SSL"))
    ServiceSettings(environment="local", kafka_security_protocol="SASL_SSL")


def test_a_bootstrap_string_is_a_plaintext_broker_split_on_commas() -> None:
    assert kafka_client_options("h1:9092, h2:9092") == {"bootstrap_servers": ["h1:9092", "h2:9092"]}


def test_plaintext_settings_add_no_tls_and_no_sasl() -> None:
    options = kafka_client_options(KafkaSettings(kafka_bootstrap_servers="h1:9092,h2:9092"))
    assert options == {
        "bootstrap_servers": ["h1:9092", "h2:9092"],
        "security_protocol": "PLAINTEXT",
    }
    assert faststream_security(KafkaSettings()) is None


def test_sasl_ssl_verifies_the_broker_against_the_configured_ca(tmp_path: Path) -> None:
    tls = write_throwaway_tls(tmp_path, ["127.0.0.1"])
    settings = KafkaSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="ratings",
        kafka_sasl_password="s3cret",
        kafka_ssl_ca_file=str(tls.ca),
    )
    options = kafka_client_options(settings)
    context = options.pop("ssl_context")
    assert options == {
        "bootstrap_servers": ["127.0.0.1:9092"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "ratings",
        "sasl_plain_password": "s3cret",
    }
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert [ca["subject"] for ca in context.get_ca_certs()] == [
        ((("commonName", "agent-ratings throwaway test CA"),),)
    ]


def test_a_client_certificate_is_presented_when_configured(tmp_path: Path) -> None:
    tls = write_throwaway_tls(tmp_path, ["127.0.0.1"])
    settings = KafkaSettings(
        kafka_security_protocol="SSL",
        kafka_ssl_ca_file=str(tls.ca),
        kafka_ssl_cert_file=str(tls.certificate),
        kafka_ssl_key_file=str(tls.key),
    )
    assert kafka_client_options(settings)["ssl_context"] is not None
    broken = settings.model_copy(update={"kafka_ssl_key_file": str(tls.ca)})
    with pytest.raises(ssl.SSLError):
        kafka_client_options(broken)


@pytest.mark.parametrize(
    ("protocol", "mechanism", "security_class"),
    [
        ("SSL", "SCRAM-SHA-512", None),
        ("SASL_SSL", "PLAIN", SASLPlaintext),
        ("SASL_SSL", "SCRAM-SHA-256", SASLScram256),
        ("SASL_SSL", "SCRAM-SHA-512", SASLScram512),
        ("SASL_PLAINTEXT", "SCRAM-SHA-512", SASLScram512),
    ],
)
def test_faststream_connects_exactly_as_the_aiokafka_clients_do(
    protocol: str, mechanism: str, security_class: type | None
) -> None:
    settings = KafkaSettings(
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="ratings",
        kafka_sasl_password="s3cret",
    )
    security = faststream_security(settings)
    if security_class is not None:
        assert type(security) is security_class
    faststream = parse_security(security)
    aiokafka = kafka_client_options(settings)
    del aiokafka["bootstrap_servers"]
    assert faststream.keys() >= aiokafka.keys()
    for name, value in aiokafka.items():
        if name == "ssl_context":
            assert isinstance(faststream[name], ssl.SSLContext)
        else:
            assert faststream[name] == value, name


def test_the_service_broker_is_built_with_the_security_of_the_settings() -> None:
    settings = ServiceSettings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_username="ratings", kafka_sasl_password="p"
    )
    security = ServiceRuntime(settings).broker.specification.security
    assert isinstance(security, SASLScram512)
    assert (security.username, security.password, security.use_ssl) == ("ratings", "p", True)


OWN_CONNECTION = re.compile(r"(?<![\w.])bootstrap_servers=")


def test_no_kafka_client_of_the_services_connects_on_its_own() -> None:
    """A client built with its own `bootstrap_servers=` would skip TLS and SASL: every one goes
    through kafka_client_options (or the broker through faststream_security)."""
    root = Path(__file__).resolve().parents[3]
    own = [
        str(path.relative_to(root))
        for package in ("shared", "services")
        for path in sorted((root / package).rglob("*.py"))
        if path.name != "kafka_security.py" and OWN_CONNECTION.search(path.read_text())
    ]
    assert own == []
