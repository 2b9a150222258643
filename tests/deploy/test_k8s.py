"""The Kubernetes manifests in docker/k8s/ (issue 17, item 5).

How each is checked, without a cluster or the network:
- Kubernetes' own kinds: `kubernetes-validate --strict` (its bundled schemas: unknown fields,
  types and required fields), against the oldest Kubernetes that docs/DEPLOY.md supports and the
  newest the pinned kubernetes-validate ships. Every such resource must be reported as passed:
  the tool only warns about a kind it has no schema for, so a warning is a failure here too.
- KEDA's kinds (custom resources, which kubernetes-validate skips): KEDA 2.16.1's schemas
  vendored in docker/k8s/schemas/ (README.md there names their source), made strict the same way.
- Then what matters to an operator: one beat with Recreate, a GPU per GPU worker, probes on
  every Deployment, grace periods and KEDA's waits above the classify task's hard time limit,
  disruption budgets, and that names and labels between the resources agree.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml
from django.conf import settings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "docker" / "k8s"
SCHEMAS = K8S / "schemas"
DOCKERFILE = REPO / "docker" / "Dockerfile"
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
# The oldest Kubernetes docs/DEPLOY.md supports, and the newest kubernetes-validate 1.37.0 ships.
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")
KEDA_API = "keda.sh/v1alpha1"
IMAGES = {"ecgsite-web", "ecgsite-worker-cpu", "ecgsite-worker-gpu"}
# The Redis lists scaler's parameters, as KEDA's documentation lists them.
REDIS_SCALER_PARAMETERS = {
    "address",
    "addressFromEnv",
    "host",
    "hostFromEnv",
    "port",
    "portFromEnv",
    "usernameFromEnv",
    "passwordFromEnv",
    "listName",
    "listLength",
    "activationListLength",
    "enableTLS",
    "unsafeSsl",
    "databaseIndex",
}


def manifest_files() -> list[Path]:
    return sorted(path for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")


def load(path: Path) -> list[dict]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


@pytest.fixture(scope="module")
def resources() -> list[dict]:
    return [document for path in manifest_files() for document in load(path)]


def named(resources: list[dict], kind: str, name: str) -> dict:
    (found,) = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def deployments(resources: list[dict]) -> list[dict]:
    return [r for r in resources if r["kind"] == "Deployment"]


def pod_specs(resources: list[dict]) -> Iterator[tuple[str, dict]]:
    for resource in resources:
        if resource["kind"] in ("Deployment", "Job"):
            yield resource["metadata"]["name"], resource["spec"]["template"]["spec"]


def main_container(deployment: dict) -> dict:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def pod_labels(deployment: dict) -> dict[str, str]:
    return deployment["spec"]["template"]["metadata"]["labels"]


def role(container: dict) -> str:
    return container["args"][0]


@pytest.fixture(scope="module")
def config(resources) -> dict[str, str]:
    return named(resources, "ConfigMap", "ecgsite-config")["data"]


@pytest.fixture(scope="module")
def classify_hard_limit(config) -> int:
    """The classify task's hard time limit, in seconds: the task's own (worker.tasks, from
    settings), or 1.2 x the soft limit the ConfigMap sets, whichever is larger."""
    from worker import tasks

    limits = [tasks.classify.time_limit, int(settings.CLASSIFY_SOFT_TIME_LIMIT * 1.2)]
    if config.get("ECGSITE_CLASSIFY_SOFT_TIME_LIMIT"):
        limits.append(int(int(config["ECGSITE_CLASSIFY_SOFT_TIME_LIMIT"]) * 1.2))
    return max(limits)


@pytest.fixture(scope="module")
def maintenance_hard_limit(config) -> int:
    from worker import tasks

    maintenance = (tasks.deliver_webhook, tasks.sweep_webhooks, tasks.reap_stale_jobs)
    limits = [task.time_limit for task in maintenance]
    if config.get("ECGSITE_MAINTENANCE_SOFT_TIME_LIMIT"):
        limits.append(int(int(config["ECGSITE_MAINTENANCE_SOFT_TIME_LIMIT"]) * 1.5))
    return max(limits)


# Schema validation.


def kubernetes_validate(*paths: Path) -> subprocess.CompletedProcess:
    versions = [argument for version in KUBERNETES_VERSIONS for argument in ("-k", version)]
    return subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", *versions, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_kubernetes_validate_strict_passes_every_kubernetes_resource():
    files = manifest_files()
    result = kubernetes_validate(*files)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout
    passed = set(
        re.findall(r"^INFO (\S+) passed for resource (\S+) against version (\S+)$", result.stdout, re.M)
    )
    expected = {
        (str(path), f"{document['kind'].lower()}/{document['metadata']['name']}", version.rsplit(".", 1)[0])
        for path in files
        for document in load(path)
        if document["apiVersion"] != KEDA_API
        for version in KUBERNETES_VERSIONS
    }
    assert passed == expected
    # The only kinds it has no schema for are KEDA's, checked below.
    for warning in re.findall(r"^WARN .*$", result.stdout, re.M):
        assert f"api version {KEDA_API} " in warning, warning


def test_kubernetes_validate_strict_rejects_an_unknown_field(tmp_path):
    """The check above fails when a field is misspelt (strict), not only when YAML is broken."""
    beat = load(K8S / "beat.yaml")[0]
    beat["spec"]["template"]["spec"]["terminationGracePeriod"] = 30
    broken = tmp_path / "beat.yaml"
    broken.write_text(yaml.safe_dump(beat))

    result = kubernetes_validate(broken)

    assert result.returncode != 0
    assert "'terminationGracePeriod' was unexpected" in result.stdout


def strict(schema: object) -> object:
    """additionalProperties: false on every object schema that lists its properties (as
    kubernetes-validate's strict schemas have), so an unknown field fails."""
    if isinstance(schema, dict):
        if schema.get("properties") and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def keda_validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"keda.sh-v1alpha1-{kind.lower()}.json").read_text())
    return jsonschema.Draft202012Validator(strict(schema))


def keda_resources(resources: list[dict]) -> list[dict]:
    return [r for r in resources if r["apiVersion"] == KEDA_API]


def test_keda_resources_match_kedas_schema(resources):
    found = keda_resources(resources)

    assert {r["kind"] for r in found} == {"ScaledObject", "TriggerAuthentication"}
    for resource in found:
        errors = [error.message for error in keda_validator(resource["kind"]).iter_errors(resource)]
        assert errors == [], f"{resource['kind']}/{resource['metadata']['name']}: {errors}"


@pytest.mark.parametrize(
    "path, value",
    [
        (("spec", "cooldownPeriods"), 300),  # misspelt
        (("spec", "triggers", 0, "metadata", "listLength"), 2),  # a number where KEDA wants a string
        (("spec", "minReplicaCount"), "one"),
    ],
)
def test_kedas_schema_rejects_a_broken_scaled_object(resources, path, value):
    scaled = copy.deepcopy(named(resources, "ScaledObject", "ecgsite-worker-gpu"))
    node = scaled
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value

    assert list(keda_validator("ScaledObject").iter_errors(scaled))


# What matters to an operator.


def test_beat_is_one_replica_replaced_by_recreate(resources):
    beat = named(resources, "Deployment", "ecgsite-beat")

    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert role(main_container(beat)) == "beat"
    assert [d["metadata"]["name"] for d in deployments(resources) if role(main_container(d)) == "beat"] == [
        "ecgsite-beat"
    ]


def test_the_gpu_worker_asks_for_one_gpu(resources):
    worker = named(resources, "Deployment", "ecgsite-worker-gpu")
    container = main_container(worker)

    assert int(container["resources"]["requests"]["nvidia.com/gpu"]) == 1
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) == 1
    assert container["image"] == "ecgsite-worker-gpu"
    assert role(container) == "worker"
    assert container_env(container)["WORKER_CONCURRENCY"] == "1"


def container_env(container: dict) -> dict[str, str]:
    return {variable["name"]: variable["value"] for variable in container.get("env", [])}


def probe_target(probe: dict) -> str:
    if "httpGet" in probe:
        return probe["httpGet"]["path"]
    return " ".join(probe["exec"]["command"])


DEPLOYMENTS = (
    "ecgsite-web",
    "ecgsite-worker-gpu",
    "ecgsite-worker-cpu",
    "ecgsite-worker-maintenance",
    "ecgsite-beat",
)
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_every_deployment_has_its_probes(resources, name):
    container = main_container(named(resources, "Deployment", name))
    probes = {kind: probe_target(container[kind]) for kind in PROBES}

    expected = {
        "web": {
            "startupProbe": "/health/live/",
            "livenessProbe": "/health/live/",
            # Dependencies only: no worker running must not take the web out of service.
            "readinessProbe": "/health/?check=database,broker,cache",
        },
        "worker": dict.fromkeys(probes, "/app/docker/healthcheck.sh worker"),
        "worker-maintenance": dict.fromkeys(probes, "/app/docker/healthcheck.sh worker"),
        "beat": dict.fromkeys(probes, "/app/docker/healthcheck.sh beat"),
    }[role(container)]
    assert probes == expected


def test_every_deployment_is_listed_above(resources):
    assert {d["metadata"]["name"] for d in deployments(resources)} == set(DEPLOYMENTS)


def test_the_web_probes_ask_the_port_the_web_listens_on(resources):
    container = main_container(named(resources, "Deployment", "ecgsite-web"))
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}

    assert ports == {"http": 8000}  # docker/entrypoint.sh: daphne -p 8000
    for kind in PROBES:
        assert container[kind]["httpGet"]["port"] == "http"


def test_classify_workers_finish_their_task_before_they_are_killed(resources, classify_hard_limit):
    workers = [d for d in deployments(resources) if role(main_container(d)) == "worker"]

    assert {d["metadata"]["name"] for d in workers} == {"ecgsite-worker-gpu", "ecgsite-worker-cpu"}
    for worker in workers:
        grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > classify_hard_limit, worker["metadata"]["name"]


def test_the_maintenance_worker_finishes_its_task_before_it_is_killed(resources, maintenance_hard_limit):
    worker = named(resources, "Deployment", "ecgsite-worker-maintenance")

    assert role(main_container(worker)) == "worker-maintenance"
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > maintenance_hard_limit


def test_the_scaled_object_scales_a_classify_worker_on_the_classify_list(resources, classify_hard_limit):
    (scaled,) = [r for r in resources if r["kind"] == "ScaledObject"]
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]

    assert target.get("kind", "Deployment") == "Deployment"
    assert target["name"] in {"ecgsite-worker-gpu", "ecgsite-worker-cpu"}
    worker = named(resources, "Deployment", target["name"])
    assert role(main_container(worker)) == "worker"
    # KEDA's HPA owns the count: a `replicas` in the Deployment would reset it at every apply.
    assert "replicas" not in worker["spec"]

    (trigger,) = spec["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == "classify" == settings.CELERY_TASK_DEFAULT_QUEUE
    assert set(trigger["metadata"]) <= REDIS_SCALER_PARAMETERS
    assert int(trigger["metadata"]["listLength"]) >= 1

    # The list does not count tasks being run (kombu's unacked hash): never zero workers under
    # one, and wait out a task's hard limit before acting on a lower reading.
    assert spec["minReplicaCount"] >= 1
    assert spec["maxReplicaCount"] >= spec["minReplicaCount"]
    assert spec["cooldownPeriod"] >= classify_hard_limit
    scale_down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] >= classify_hard_limit


def test_kedas_redis_settings_come_from_the_configmap_and_the_secret(resources, config):
    (scaled,) = [r for r in resources if r["kind"] == "ScaledObject"]
    (trigger,) = scaled["spec"]["triggers"]
    authentication = named(resources, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    secret = load(K8S / "secret.example.yaml")[0]

    # *FromEnv is read from the scale target's container, which takes the ConfigMap (envFrom).
    assert trigger["metadata"]["addressFromEnv"] in config
    (reference,) = authentication["spec"]["secretTargetRef"]
    assert reference["parameter"] == "password"
    assert reference["name"] == secret["metadata"]["name"]
    assert reference["key"] in secret["stringData"]
    redis_database = re.search(r"/(\d+)$", secret["stringData"]["REDIS_URL"]).group(1)
    assert redis_database == trigger["metadata"]["databaseIndex"]


def test_disruption_budgets_cover_the_web_and_the_classify_workers(resources):
    budgets = [r for r in resources if r["kind"] == "PodDisruptionBudget"]
    labels = {d["metadata"]["name"]: pod_labels(d) for d in deployments(resources)}

    covered = set()
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"]
        matching = [name for name, pod in labels.items() if selector.items() <= pod.items()]
        assert len(matching) == 1, budget["metadata"]["name"]
        covered.update(matching)
    assert covered == {"ecgsite-web", "ecgsite-worker-gpu", "ecgsite-worker-cpu"}
    web_budget = named(resources, "PodDisruptionBudget", "ecgsite-web")["spec"]
    assert web_budget["minAvailable"] < named(resources, "Deployment", "ecgsite-web")["spec"]["replicas"]


def test_the_service_and_the_ingress_reach_the_web(resources):
    web = named(resources, "Deployment", "ecgsite-web")
    service = named(resources, "Service", "ecgsite-web")
    ingress = named(resources, "Ingress", "ecgsite")

    assert service["spec"]["selector"].items() <= web["spec"]["template"]["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in main_container(web)["ports"]}
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == "ecgsite-web"
            assert backend["port"]["name"] == port["name"]


def test_every_selector_matches_its_pod_template(resources):
    for deployment in deployments(resources):
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_every_pod_runs_as_the_images_user_without_privileges(resources):
    (image_user,) = set(re.findall(r"^USER (\S+)$", DOCKERFILE.read_text(), re.M))
    uid, gid = (int(part) for part in image_user.split(":"))

    for name, pod in pod_specs(resources):
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert (security["runAsUser"], security["runAsGroup"]) == (uid, gid), name
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name


def test_every_container_runs_an_image_target_and_a_role_the_entrypoint_knows(resources):
    roles = set(re.findall(r"^\s*([a-z-]+)\)", ENTRYPOINT.read_text(), re.M))
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    secret_name = load(K8S / "secret.example.yaml")[0]["metadata"]["name"]

    for name, pod in pod_specs(resources):
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert container["image"] in IMAGES, name
            if container["args"][0] != "sh":
                assert container["args"][0] in roles, name
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] == "ecgsite-config"
                else:
                    assert source["secretRef"]["name"] == secret_name
    assert {image["name"] for image in kustomization["images"]} == IMAGES


def test_the_kustomization_applies_every_manifest_but_the_example_secret():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())

    assert sorted(kustomization["resources"]) == sorted(
        path.name for path in manifest_files() if path.name != "secret.example.yaml"
    )


def test_every_resource_is_in_the_ecgsite_namespace(resources):
    for resource in resources:
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == "ecgsite", resource["metadata"]["name"]
