"""deploy/k8s/: every manifest valid for Kubernetes (kubernetes-validate, its vendored
schemas: offline, strict, so a misspelt field is an error, not ignored), and what the
README promises of them: replicas, probes on the services' own /readyz and /healthz,
a PodDisruptionBudget and a Service for each Deployment, resources, Secrets for every
password and key, the migration as a Job."""
from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from shared.config import SERVICE_PORTS

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
#: The oldest Kubernetes still supported upstream when this was written; the schemas of
#: every later one the package holds accept the same manifests.
VERSIONS = ("1.33", "1.37")
SERVICES = ("console", "keygen", "users", "certs", "ocsp")


def _documents() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        out.extend((path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return out


DOCUMENTS = _documents()


def _of(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in DOCUMENTS if doc["kind"] == kind}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name, doc", DOCUMENTS, ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in DOCUMENTS])
def test_every_manifest_is_valid_kubernetes(name, doc, version):
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_a_deployment_per_service_with_replicas_probes_and_resources():
    deployments = _of("Deployment")
    assert set(deployments) == set(SERVICES)
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        assert spec["replicas"] >= 2, name
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name
        (container,) = spec["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", f"services.{name}"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["http"] == SERVICE_PORTS[name]
        if name == "ocsp":
            assert ports["online"] == SERVICE_PORTS["ocsp_tls"]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        resources = container["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"], name
        assert resources["limits"]["memory"], name
        assert container["securityContext"]["runAsNonRoot"] is True


def test_each_deployment_has_a_disruption_budget_and_a_service_selecting_it():
    budgets, services = _of("PodDisruptionBudget"), _of("Service")
    for name, deployment in _of("Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        budget = budgets[name]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert 1 <= budget["spec"]["minAvailable"] < deployment["spec"]["replicas"], name
        assert services[name]["spec"]["selector"].items() <= labels.items()
        ports = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
        assert {p["targetPort"] for p in services[name]["spec"]["ports"]} == ports


def test_passwords_and_keys_come_from_secrets_only():
    secrets = _of("Secret")
    config = _of("ConfigMap")["siui-config"]["data"]
    assert not any("password" in key.lower() or "@" in value for key, value in config.items())
    for _, doc in DOCUMENTS:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        for container in pod["containers"]:
            for env in container.get("env", []):
                if "value" in env:
                    assert "URL" not in env["name"] or "@" not in env["value"], env
                else:
                    ref = env["valueFrom"]["secretKeyRef"]
                    assert ref.get("optional") or ref["key"] in secrets[ref["name"]]["stringData"], ref
        for volume in pod["volumes"]:
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets
    # Every file the services read from <data dir>/secrets has its key.
    assert {f"amqp-{s}" for s in SERVICES} <= set(secrets["siui-secrets"]["stringData"])


def test_the_migration_is_a_job_of_the_same_image():
    (job,) = _of("Job").values()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "deploy.migrate"]
    images = {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in _of("Deployment").values()}
    assert images == {container["image"]}


def test_the_broker_url_lists_every_node():
    from shared.config import split_amqp_urls

    assert len(split_amqp_urls(_of("ConfigMap")["siui-config"]["data"]["SIUI_AMQP_URL"])) == 3
