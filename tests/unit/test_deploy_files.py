"""No Docker engine runs here, so docker-compose.yml is checked by reading it: services, ports,
commands and environment must match the settings the code really reads."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.demo import Demo, demo_schema
from shared.settings import COMMITTED_SECRETS, ServiceSettings
from tests.support.kafka import consumed_by

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "invitations": 8001,
    "reviews": 8002,
    "scoring": 8003,
    "removals": 8004,
    "directory": 8006,
}


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _settings_class(service: str) -> type[ServiceSettings]:
    if importlib.util.find_spec(f"services.{service}.settings") is None:
        pytest.skip(f"services.{service} is not implemented yet (its issue is still open)")
    module = importlib.import_module(f"services.{service}.settings")
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, ServiceSettings) and obj is not ServiceSettings
    ]
    assert len(classes) == 1, f"services.{service}.settings should define one settings class"
    return classes[0]


def test_compose_has_the_stack_and_the_services() -> None:
    services = _compose()["services"]
    assert {"kafka", "postgres", "mailpit", "topics", *SERVICES} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["topics"]["command"] == ["python", "-m", "shared.topics"]


@pytest.mark.parametrize(("service", "port"), sorted(SERVICES.items()))
def test_each_service_runs_its_module_on_its_port_with_health_checks(
    service: str, port: int
) -> None:
    spec = _compose()["services"][service]
    assert spec["command"] == ["python", "-m", f"services.{service}"]
    assert spec["environment"]["HTTP_PORT"] == str(port)
    assert f"{port}:{port}" in spec["ports"]
    assert "/readyz" in " ".join(spec["healthcheck"]["test"])
    assert spec["restart"] == "unless-stopped"
    assert spec["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert _settings_class(service)().http_port == port, "compose and the default port differ"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_environment_variable_is_a_setting_the_service_reads(service: str) -> None:
    settings_class = _settings_class(service)
    known = {name.upper() for name in settings_class.model_fields}
    environment = _compose()["services"][service]["environment"]
    unknown = sorted(set(environment) - known)
    assert not unknown, f"{service} is given variables it never reads: {unknown}"


def test_compose_images_are_pinned_and_kafka_is_the_version_run_locally() -> None:
    services = _compose()["services"]
    for name, spec in services.items():
        image = spec["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image} is not pinned"
    kafka_sh = (ROOT / "deploy" / "local" / "kafka.sh").read_text()
    pom = (ROOT / "deploy" / "local" / "kafka" / "pom.xml").read_text()
    version = services["kafka"]["image"].split(":")[1]
    assert f"\nKAFKA_VERSION={version}\n" in kafka_sh, "compose and kafka.sh run other Kafkas"
    assert f"<kafka.version>{version}</kafka.version>" in pom, "kafka.sh fetches another Kafka"


def test_kafka_is_reachable_from_the_host_and_keeps_its_data() -> None:
    compose = _compose()
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    host_listener = next(
        listener
        for listener in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
        if listener.startswith("HOST://")
    )
    port = host_listener.rsplit(":", 1)[1]
    assert host_listener.startswith("HOST://localhost:")
    assert f"{port}:{port}" in kafka["ports"], "the advertised host port is not published"
    assert f"HOST://:{port}" in env["KAFKA_LISTENERS"]
    data = env["KAFKA_LOG_DIRS"]
    assert any(v.endswith(f":{data}") for v in kafka["volumes"]) and env["CLUSTER_ID"]
    assert {v.split(":")[0] for v in kafka["volumes"]} <= set(compose["volumes"])


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_services_stop_gracefully_and_wait_for_a_healthy_stack(service: str) -> None:
    spec = _compose()["services"][service]
    assert int(spec["stop_grace_period"].rstrip("s")) > 20, "shorter than the graceful shutdown"
    assert {dep["condition"] for dep in spec["depends_on"].values()} <= {
        "service_healthy",
        "service_completed_successfully",
    }
    assert "healthcheck" in _compose()["services"]["mailpit"]


def test_services_reach_the_stack_by_its_compose_names_and_ports() -> None:
    compose = _compose()
    services = compose["services"]
    env = services["invitations"]["environment"]
    host, port = env["KAFKA_BOOTSTRAP_SERVERS"].split(":")
    assert host == "kafka"
    assert (
        f"PLAINTEXT://{host}:{port}"
        in services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["SMTP_HOST"] == "mailpit"
    assert env["SMTP_PORT"] == "1025"
    assert "1025:1025" in services["mailpit"]["ports"]


def test_dockerfile_installs_the_pinned_dependencies() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "constraints.txt" in dockerfile
    assert "FROM python:3.11" in dockerfile


def _manifests(service: str) -> dict[str, dict[str, Any]]:
    documents = yaml.safe_load_all(
        (ROOT / "deploy" / "k8s" / "base" / f"{service}.yaml").read_text()
    )
    return {doc["kind"]: doc for doc in documents}


@pytest.mark.parametrize(("service", "port"), sorted(SERVICES.items()))
def test_kubernetes_manifests_match_the_service(service: str, port: int) -> None:
    manifests = _manifests(service)
    assert {"Deployment", "Service", "ScaledObject"} <= set(manifests)
    container = manifests["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", f"services.{service}"]
    assert container["ports"][0]["containerPort"] == port
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["HTTP_PORT"] == str(port)
    # logs in to Kafka as its own KafkaUser (kafka-acls.yaml), with the password Strimzi keeps
    password = next(item for item in container["env"] if item["name"] == "KAFKA_SASL_PASSWORD")
    assert env["KAFKA_SASL_USERNAME"] == f"ratings-{service}"
    assert password["valueFrom"]["secretKeyRef"]["name"] == f"ratings-{service}"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    known = {name.upper() for name in _settings_class(service).model_fields}
    assert set(env) <= known
    scaled = manifests["ScaledObject"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == manifests["Deployment"]["metadata"]["name"]
    assert scaled["maxReplicaCount"] <= 6, "more replicas than partitions would idle"
    groups = {trigger["metadata"]["consumerGroup"] for trigger in scaled["triggers"]}
    assert groups == {env["KAFKA_GROUP_ID"]}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_kubernetes_scales_on_the_lag_of_every_topic_the_service_consumes(service: str) -> None:
    _settings_class(service)  # skips services not written yet
    triggers = _manifests(service)["ScaledObject"]["spec"]["triggers"]
    assert {trigger["metadata"]["topic"] for trigger in triggers} == consumed_by(service)


@pytest.mark.parametrize("service", SERVICES)
def test_each_demo_service_uses_the_schema_the_demo_drops_before_a_run(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make demo` starts from empty schemas; a service writing elsewhere kept the last run's
    rows, deduped the new run's closings and showed the old ratings (seen on a second run)."""
    monkeypatch.delenv("DATABASE_SCHEMA", raising=False)
    for name, value in Demo.per_service_env(service).items():
        monkeypatch.setenv(name, value)
    assert _settings_class(service)().db_schema == demo_schema(service)


def _kafka_acls() -> dict[str, list[dict[str, Any]]]:
    """Each Kafka user's ACLs, from deploy/k8s/base/kafka-acls.yaml."""
    users = yaml.safe_load_all((ROOT / "deploy/k8s/base/kafka-acls.yaml").read_text())
    return {u["metadata"]["name"]: u["spec"]["authorization"]["acls"] for u in users}


def _topics_allowed(acls: list[dict[str, Any]], operation: str) -> set[str]:
    return {
        acl["resource"]["name"]
        for acl in acls
        if acl["resource"]["type"] == "topic" and operation in acl["operations"]
    }


def test_only_scoring_reads_the_internal_review_log_and_only_reviews_writes_it() -> None:
    acls = _kafka_acls()
    readers = {
        user
        for user, rules in acls.items()
        if "reviews.published" in _topics_allowed(rules, "Read")
    }
    writers = {
        user
        for user, rules in acls.items()
        if "reviews.published" in _topics_allowed(rules, "Write")
    }
    assert readers == {"ratings-scoring"}
    assert writers == {"ratings-reviews"}
    assert _topics_allowed(acls["downstream-site"], "Read") == {"ratings", "reviews.public"}


def test_the_directory_reads_only_the_public_streams_and_the_roster_and_writes_no_topic() -> None:
    rules = _kafka_acls()["ratings-directory"]
    assert _topics_allowed(rules, "Read") == {"ratings", "reviews.public", "mls.agents"}
    assert all(topic.endswith(".dlq") for topic in _topics_allowed(rules, "Write"))
    assert not [acl for acl in rules if acl["resource"]["type"] == "transactionalId"]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_may_read_what_it_consumes_and_dead_letter_it(service: str) -> None:
    rules = _kafka_acls()[f"ratings-{service}"]
    consumed = {str(topic) for topic in consumed_by(service)}
    assert _topics_allowed(rules, "Read") - {"outbox.relay.cursors"} == consumed
    assert {f"{topic}.dlq" for topic in consumed} <= _topics_allowed(rules, "Write")


def _k8s_documents() -> list[dict[str, Any]]:
    return [
        document
        for path in sorted((ROOT / "deploy" / "k8s" / "base").glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if isinstance(document, dict) and document.get("kind") != "Kustomization"
    ]


SECRET_VARIABLES = {*ServiceSettings().secrets_in_use(), "DATABASE_URL"}


def test_no_secret_is_committed_in_the_kubernetes_manifests() -> None:
    documents = _k8s_documents()
    assert not [doc["metadata"]["name"] for doc in documents if doc["kind"] == "Secret"]
    for doc in documents:
        if doc["kind"] == "ConfigMap":
            assert not SECRET_VARIABLES & set(doc["data"]), "a secret in a ConfigMap"
        if doc["kind"] == "Deployment":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            assert not SECRET_VARIABLES & {item["name"] for item in container.get("env", [])}


def test_every_deployment_reads_the_secret_the_readme_tells_the_operator_to_create() -> None:
    readme = (ROOT / "README.md").read_text()
    command = readme[readme.index("kubectl create secret generic ") :].split("\nkubectl apply")[0]
    name = command.split()[4]
    assert {f"--from-literal={variable}=" in command for variable in SECRET_VARIABLES} == {True}
    assert "$(new_secret)" in command, "the README should generate secrets, not show values"
    for doc in _k8s_documents():
        if doc["kind"] == "Deployment":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            assert {"secretRef": {"name": name}} in container["envFrom"]


def test_every_secret_value_in_compose_is_one_production_refuses() -> None:
    """Compose is for local use and may keep placeholders, which are then public: a value
    committed here must be in COMMITTED_SECRETS, or production would accept it."""
    environment = _compose()["x-service-env"]
    for variable in ServiceSettings().secrets_in_use():
        value = environment[variable]
        default = value.split(":-", 1)[1].rstrip("}") if value.startswith("${") else value
        assert default in COMMITTED_SECRETS, f"{variable} default {default!r} is not refused"
