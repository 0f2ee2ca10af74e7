"""The deploy/ manifests hold together: every workload is complete, probed, limited and
unprivileged, and each port agrees everywhere it is written."""

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

DEPLOY = Path(__file__).resolve().parent.parent
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
OVERLAYS = K8S / "overlays"
SERVICES = {
    "identity": 50051,
    "tenancy": 50052,
    "ingestion": 50053,
    "canonical": 50054,
    "audit": 50055,
}
WORKLOADS = [*SERVICES, "gateway"]
HTTP_PORT = 8080
SFTP_PORT = 2222
INGESTION_MOUNT = "/var/lib/canopy/ingestion"

Obj = dict[str, Any]


def load(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def base_objects() -> list[Obj]:
    kustomization = load(BASE / "kustomization.yaml")[0]
    return [doc for name in kustomization["resources"] for doc in load(BASE / name)]


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: found {len(found)}"
    return found[0]


def container(deployment: Obj) -> Obj:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, deployment["metadata"]["name"]
    return containers[0]


def env_of(c: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in c.get("env", [])}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def ingress_ports(policy: Obj) -> set[int]:
    return {p["port"] for rule in policy["spec"].get("ingress", []) for p in rule["ports"]}


def pod_specs(objects: list[Obj]) -> list[Any]:
    named = [(f"{o['kind']}/{o['metadata']['name']}", o) for o in objects]
    return [
        pytest.param(where, o["spec"]["template"]["spec"], id=where)
        for where, o in named
        if o["kind"] in ("Deployment", "Job")
    ]


def kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


@pytest.mark.parametrize("kustomization", kustomizations(), ids=lambda p: p.parent.name)
def test_every_kustomization_lists_every_file_in_its_folder(kustomization: Path) -> None:
    folder = kustomization.parent
    spec = load(kustomization)[0]
    listed = [r for r in spec.get("resources", []) if not (folder / r).is_dir()]
    listed += [p["path"] for p in spec.get("patches", []) if "path" in p]
    for name in listed:
        assert (folder / name).is_file(), f"{folder.name}/kustomization.yaml names {name}"
    on_disk = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(listed) == sorted(on_disk)


def test_base_is_namespaced_and_denies_by_default() -> None:
    objects = base_objects()
    assert load(BASE / "kustomization.yaml")[0]["namespace"] == "canopy"
    assert find(objects, "Namespace", "canopy")
    deny = find(objects, "NetworkPolicy", "default-deny")["spec"]
    assert deny["podSelector"] == {}
    assert sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny and "egress" not in deny


@pytest.mark.parametrize("name", WORKLOADS)
def test_every_workload_has_deployment_service_budget_and_network_policy(name: str) -> None:
    objects = base_objects()
    deployment = find(objects, "Deployment", name)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] == 2
    assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    assert selects(find(objects, "Service", name)["spec"]["selector"], pod_labels)
    budget = find(objects, "PodDisruptionBudget", name)["spec"]
    assert budget["minAvailable"] == 1
    assert selects(budget["selector"]["matchLabels"], pod_labels)
    policy = find(objects, "NetworkPolicy", name)["spec"]
    assert selects(policy["podSelector"]["matchLabels"], pod_labels)
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]


@pytest.mark.parametrize(("name", "port"), SERVICES.items())
def test_a_services_grpc_port_agrees_everywhere(name: str, port: int) -> None:
    objects = base_objects()
    c = container(find(objects, "Deployment", name))
    assert c["args"] == [f"services.{name}", "serve"]
    assert env_of(c)["CANOPY_GRPC_PORT"]["value"] == str(port)
    assert {"name": "grpc", "containerPort": port} in c["ports"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["grpc"]["port"] == port, probe
    (service_port,) = find(objects, "Service", name)["spec"]["ports"]
    assert service_port["port"] == port
    assert service_port["targetPort"] in ("grpc", port)
    config = find(objects, "ConfigMap", "canopy-config")["data"]
    assert config[f"CANOPY_{name.upper()}_ADDRESS"] == f"{name}:{port}"
    policy = find(objects, "NetworkPolicy", name)["spec"]
    grpc_rule = next(r for r in policy["ingress"] if r.get("from"))
    assert [p["port"] for p in grpc_rule["ports"]] == [port]
    (peers,) = grpc_rule["from"]
    assert peers["podSelector"]["matchLabels"] == {"app.kubernetes.io/part-of": "canopy"}
    (components,) = peers["podSelector"]["matchExpressions"]
    assert sorted(components["values"]) == ["gateway", "service"]


@pytest.mark.parametrize("name", SERVICES)
def test_a_service_reads_config_and_secrets_and_reaches_its_backends(name: str) -> None:
    objects = base_objects()
    c = container(find(objects, "Deployment", name))
    assert {"configMapRef": {"name": "canopy-config"}} in c["envFrom"]
    assert {"secretRef": {"name": "canopy-secrets"}} in c["envFrom"]
    egress = find(objects, "NetworkPolicy", name)["spec"]["egress"]
    open_ports = {p["port"] for rule in egress if "to" not in rule for p in rule["ports"]}
    assert open_ports == {53, 5432, 4222}
    (peers,) = [rule for rule in egress if "to" in rule]
    assert {p["port"] for p in peers["ports"]} == set(SERVICES.values())


def test_gateway_serves_http_on_one_port_and_holds_only_the_context_key() -> None:
    objects = base_objects()
    c = container(find(objects, "Deployment", "gateway"))
    env = env_of(c)
    assert c["args"] == ["gateway"]
    assert env["CANOPY_HTTP_HOST"]["value"] == "0.0.0.0"
    assert env["CANOPY_HTTP_PORT"]["value"] == str(HTTP_PORT)
    assert {"name": "http", "containerPort": HTTP_PORT} in c["ports"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": HTTP_PORT}, probe
    (service_port,) = find(objects, "Service", "gateway")["spec"]["ports"]
    assert service_port["port"] == HTTP_PORT
    assert c["envFrom"] == [{"configMapRef": {"name": "canopy-config"}}]
    secret_keys = {e["valueFrom"]["secretKeyRef"]["key"] for e in env.values() if "valueFrom" in e}
    assert secret_keys == {"CANOPY_CONTEXT_KEY"}
    policy = find(objects, "NetworkPolicy", "gateway")["spec"]
    assert policy["ingress"] == [{"ports": [{"protocol": "TCP", "port": HTTP_PORT}]}]


def test_config_binds_grpc_on_every_interface() -> None:
    config = find(base_objects(), "ConfigMap", "canopy-config")["data"]
    assert config["CANOPY_GRPC_HOST"] == "0.0.0.0"


def test_ingestion_keeps_files_on_a_shared_volume_and_its_host_key_in_a_secret() -> None:
    objects = base_objects()
    deployment = find(objects, "Deployment", "ingestion")
    pod = deployment["spec"]["template"]["spec"]
    c = container(deployment)
    env = {name: e["value"] for name, e in env_of(c).items() if "value" in e}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}

    claim = mounts[INGESTION_MOUNT]["persistentVolumeClaim"]["claimName"]
    assert find(objects, "PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteMany"]
    assert env["CANOPY_STORAGE_DIR"].startswith(INGESTION_MOUNT + "/")
    key_dir, key_file = env["CANOPY_HOST_KEY_PATH"].rsplit("/", 1)
    secret = mounts[key_dir]["secret"]
    assert secret["secretName"] == "canopy-sftp-host-key"
    assert [item["path"] for item in secret["items"]] == [key_file]

    assert env["CANOPY_SFTP_HOST"] == "0.0.0.0"
    assert env["CANOPY_SFTP_PORT"] == str(SFTP_PORT)
    assert {"name": "sftp", "containerPort": SFTP_PORT} in c["ports"]
    (sftp,) = find(objects, "Service", "ingestion-sftp")["spec"]["ports"]
    assert sftp["targetPort"] in ("sftp", SFTP_PORT)
    policy = find(objects, "NetworkPolicy", "ingestion")["spec"]
    anywhere = [r for r in policy["ingress"] if "from" not in r]
    assert [p["port"] for r in anywhere for p in r["ports"]] == [SFTP_PORT]


def test_migration_job_migrates_every_schema_with_the_admin_url_only() -> None:
    objects = base_objects()
    job = find(objects, "Job", "canopy-migrate")
    c = container(job)
    assert c["args"] == ["canopyctl", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    env = env_of(c)
    url = env["CANOPY_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert url["name"] == "canopy-db-admin"
    assert "canopy-db-admin" not in json.dumps([o for o in objects if o is not job])
    policy = find(objects, "NetworkPolicy", "canopy-migrate")["spec"]
    assert "ingress" not in policy
    assert {p["port"] for rule in policy["egress"] for p in rule["ports"]} == {53, 5432}


@pytest.mark.parametrize(("where", "pod"), pod_specs(base_objects()))
def test_every_pod_runs_unprivileged_with_probes_and_limits(where: str, pod: Obj) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for c in pod["containers"]:
        security = c["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        for bound in ("requests", "limits"):
            assert set(c["resources"][bound]) == {"cpu", "memory"}, (where, bound)
        assert c["image"] == "canopy"
        if where.startswith("Deployment/"):
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in c, (where, probe)


def test_every_object_carries_the_canopy_labels() -> None:
    for o in base_objects():
        labels = o["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "canopy", o["metadata"]["name"]
        assert labels["app.kubernetes.io/name"], o["metadata"]["name"]
        if "template" in o.get("spec", {}):
            template = o["spec"]["template"]["metadata"]["labels"]
            assert template["app.kubernetes.io/part-of"] == "canopy"


def test_containerfile_builds_one_unprivileged_image_whose_command_picks_the_process() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.M)
    assert "python scripts/gen_protos.py" in text
    assert re.search(r"^RUN pip install --no-deps \.", text, re.M)
    (user,) = re.findall(r"^USER (\d+):(\d+)$", text, re.M)
    assert int(user[0]) != 0 and int(user[1]) != 0
    assert re.findall(r"^ENTRYPOINT (.+)$", text, re.M) == ['["python", "-m"]']
    stages = re.findall(r"^FROM ", text, re.M)
    assert len(stages) == 2


def render(overlay: str) -> list[Obj]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: overlays not rendered")
    out = subprocess.run(
        [kubectl, "kustomize", str(OVERLAYS / overlay)], capture_output=True, text=True, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def test_dev_overlay_runs_one_small_replica_of_everything() -> None:
    objects = render("dev")
    for name in WORKLOADS:
        deployment = find(objects, "Deployment", name)
        assert deployment["spec"]["replicas"] == 1
        assert container(deployment)["image"] == "canopy:dev"
        assert container(deployment)["resources"]["limits"]["memory"] == "512Mi"
        assert find(objects, "PodDisruptionBudget", name)["spec"]["minAvailable"] == 0
    assert find(objects, "PersistentVolumeClaim", "ingestion-data")["spec"]["accessModes"] == [
        "ReadWriteOnce"
    ]
    assert find(objects, "Deployment", "ingestion")["spec"]["strategy"]["type"] == "Recreate"
    namespaced = [o for o in objects if o["kind"] != "Namespace"]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"canopy"}


def test_prod_overlay_runs_three_replicas_autoscales_and_exposes_sftp() -> None:
    objects = render("prod")
    autoscaled = {"gateway", "canonical"}
    for name in WORKLOADS:
        deployment = find(objects, "Deployment", name)
        assert container(deployment)["image"].startswith("registry.example.com/canopy:")
        if name in autoscaled:
            assert "replicas" not in deployment["spec"]
            hpa = find(objects, "HorizontalPodAutoscaler", name)["spec"]
            assert hpa["scaleTargetRef"] == {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": name,
            }
            assert hpa["minReplicas"] == 3
        else:
            assert deployment["spec"]["replicas"] == 3
    sftp = find(objects, "Service", "ingestion-sftp")["spec"]
    assert sftp["type"] == "LoadBalancer"
    assert sftp["ports"][0]["targetPort"] in ("sftp", SFTP_PORT)
    for name in SERVICES:
        assert find(objects, "Service", name)["spec"].get("type", "ClusterIP") == "ClusterIP"
