"""The Kubernetes manifests as a cluster would receive them: both overlays rendered by
`kubectl kustomize` (or kustomize itself, which make test builds when the machine has no
kubectl), then checked for
what an operations team relies on."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.processes import SERVICE_PORTS, STATELESS

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("local", "production")


def render(overlay: str) -> list[dict[str, Any]]:
    kubectl, kustomize = shutil.which("kubectl"), ROOT / ".local" / "bin" / "kustomize"
    if kubectl:
        command = [kubectl, "kustomize"]
    elif kustomize.exists():
        command = [str(kustomize), "build"]
    else:
        pytest.fail("neither kubectl nor kustomize: run deploy/local/kubectl.sh (make test does)")
    rendered = subprocess.run(
        [*command, str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def of_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] == kind}


def pod_specs(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        f"{doc['kind']}/{doc['metadata']['name']}": doc["spec"]["template"]["spec"]
        for doc in documents
        if doc["kind"] in ("Deployment", "Job")
    }


def test_every_service_has_a_deployment_service_budget_and_network_policy(
    manifests: list[dict[str, Any]],
) -> None:
    deployments = of_kind(manifests, "Deployment")
    assert set(deployments) == set(SERVICE_PORTS)
    budgets = {
        doc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for doc in of_kind(manifests, "PodDisruptionBudget").values()
    }
    allowed_in = {
        doc["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/name")
        for doc in of_kind(manifests, "NetworkPolicy").values()
    }
    assert set(SERVICE_PORTS) <= budgets
    assert set(SERVICE_PORTS) <= allowed_in
    assert set(SERVICE_PORTS) <= set(of_kind(manifests, "Service"))
    # scaled on consumer lag; the stateless portal consumes nothing and is scaled on CPU
    assert set(SERVICE_PORTS) - STATELESS <= set(of_kind(manifests, "ScaledObject"))
    assert set(of_kind(manifests, "HorizontalPodAutoscaler")) >= STATELESS


def test_every_pod_meets_the_restricted_pod_security_profile(
    manifests: list[dict[str, Any]],
) -> None:
    for name, spec in pod_specs(manifests).items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert context["readOnlyRootFilesystem"] is True, name
            assert container["resources"]["limits"]["memory"], name
            assert container["resources"]["requests"]["cpu"], name


def test_the_jobs_a_deployment_needs_are_there(manifests: list[dict[str, Any]]) -> None:
    jobs = of_kind(manifests, "Job")
    commands = {
        name: job["spec"]["template"]["spec"]["containers"][0]["command"]
        for name, job in jobs.items()
    }
    assert commands["kafka-topics"] == ["python", "-m", "shared.topics"]
    assert not {f"{service}-migrations" for service in STATELESS} & set(commands)
    for service in set(SERVICE_PORTS) - STATELESS:
        assert commands[f"{service}-migrations"] == [
            "python",
            "-m",
            f"services.{service}",
            "migrate",
        ]
    assert jobs["scoring-policy-replay"]["spec"]["suspend"] is True
    assert "services.scoring.replay" in " ".join(commands["scoring-policy-replay"])


def test_the_public_survey_directory_and_portal_are_routed_and_nothing_else(
    manifests: list[dict[str, Any]],
) -> None:
    [ingress] = of_kind(manifests, "Ingress").values()
    paths = {
        (p["path"], p["backend"]["service"]["name"])
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert paths == {
        ("/survey", "reviews"),
        ("/api/v1/reviews", "reviews"),
        ("/", "directory"),
        ("/", "portal"),
    }
    hosts = [rule["host"] for rule in ingress["spec"]["rules"]]
    assert len(set(hosts)) == 2, "the portal has a host of its own"


def test_no_overlay_renders_a_secret_and_every_workload_reads_the_operator_s(
    manifests: list[dict[str, Any]],
) -> None:
    assert not of_kind(manifests, "Secret")
    for name, spec in pod_specs(manifests).items():
        if name == "Job/kafka-topics":
            continue  # needs Kafka only
        assert {"secretRef": {"name": "ratings-secrets"}} in spec["containers"][0]["envFrom"], name


def test_production_runs_in_production_mode_with_a_pinned_image_and_tls() -> None:
    documents = render("production")
    [config] = of_kind(documents, "ConfigMap").values()
    assert config["data"]["ENVIRONMENT"] == "production"
    images = {c["image"] for spec in pod_specs(documents).values() for c in spec["containers"]}
    assert all(not image.endswith(":latest") and ":" in image for image in images), images
    [ingress] = of_kind(documents, "Ingress").values()
    assert ingress["spec"]["tls"]
    assert all(d["spec"]["replicas"] >= 2 for d in of_kind(documents, "Deployment").values())
    assert all(
        h["spec"]["minReplicas"] >= 2
        for h in of_kind(documents, "HorizontalPodAutoscaler").values()
    )


def test_the_local_overlay_runs_in_local_mode() -> None:
    [config] = of_kind(render("local"), "ConfigMap").values()
    assert config["data"]["ENVIRONMENT"] == "local"
