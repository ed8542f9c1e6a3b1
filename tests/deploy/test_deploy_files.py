"""deploy/: Kubernetes manifests against the Kubernetes schemas, compose against the
compose-spec, the Dockerfile and the gateway configs checked for structure.

No network and no Docker engine: ``kubernetes-validate`` ships the Kubernetes JSON
schemas, ``compose-spec`` the Compose specification (strict parser + models generated
from the spec's schema).
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from compose_spec import PyCompose
from compose_spec.models import ComposeSpecification

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S_VERSIONS = ["1.30.0", "1.33.0"]
GATEWAY_ARGS = ["gateway", "--config", "/etc/flext-api/gateway.yaml"]


def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def manifest(kind: str) -> dict[str, Any]:
    [found] = [d for d in manifests() if d["kind"] == kind]
    return found


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    lines: list[tuple[str, str]] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        instruction, _, arguments = line.partition(" ")
        lines.append((instruction.upper(), arguments.strip()))
    return lines


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_validate_against_kubernetes_schemas(version: str) -> None:
    """Every manifest is valid (strict: no unknown fields) for Kubernetes 1.30 and 1.33."""
    docs = manifests()
    assert {d["kind"] for d in docs} == {
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
    }
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_schema_validation_catches_a_typo() -> None:
    """The validator really checks: a misspelt probe field is rejected."""
    doc = manifest("Deployment")
    doc["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSIONS[0], strict=True)


def gateway_admin(config_text: str) -> dict[str, Any]:
    """The ``admin`` section of a gateway config."""
    admin: dict[str, Any] = yaml.safe_load(config_text)["admin"]
    return admin


def test_deployment_probes_health_and_ready() -> None:
    """Startup and liveness probe /health, readiness /ready, on the port the gateway serves
    them on: its admin port, open on every interface (kubelet probes the pod's IP). They
    pointed at the proxy's port, where a gateway answers 404 no_route."""
    [container] = manifest("Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["args"][:3] == GATEWAY_ARGS
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == 8000
    admin = gateway_admin(manifest("ConfigMap")["data"]["gateway.yaml"])
    assert admin["host"] == "0.0.0.0"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert ports[container[probe]["httpGet"]["port"]] == admin["port"], probe


def test_deployment_runs_as_non_root_with_time_to_drain() -> None:
    """Pods run as a non-root user and the grace period covers preStop plus the drain."""
    spec = manifest("Deployment")["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    [container] = spec["containers"]
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert spec["terminationGracePeriodSeconds"] > pre_stop + 30  # 30 s: the default drain


def test_service_pdb_and_configmap_select_the_deployment() -> None:
    """Service and PDB select the Deployment's pods; the ConfigMap is what it mounts."""
    deployment = manifest("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        doc = manifest(kind)
        selector = doc["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= labels.items(), kind
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": "config", "configMap": {"name": manifest("ConfigMap")["metadata"]["name"]}} in (
        volumes
    )
    assert manifest("PodDisruptionBudget")["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_configmap_and_compose_gateway_configs_route_alike() -> None:
    """The ConfigMap's gateway.yaml and deploy/gateway.yaml have the same routes."""
    in_cluster = yaml.safe_load(manifest("ConfigMap")["data"]["gateway.yaml"])
    in_compose = yaml.safe_load((DEPLOY / "gateway.yaml").read_text())
    assert in_cluster["routes"] == in_compose["routes"]
    clusters = {c["name"] for c in in_compose["clusters"]}
    assert {r["cluster"] for r in in_compose["routes"]} <= clusters


def test_gateway_configs_pass_gateway_check(tmp_path: Path) -> None:
    """When the gateway is installed, `flext-api gateway check` accepts both configs."""
    if importlib.util.find_spec("flext_api.gateway") is None:
        pytest.skip("flext_api.gateway is not part of this build")
    in_cluster = tmp_path / "configmap-gateway.yaml"
    in_cluster.write_text(manifest("ConfigMap")["data"]["gateway.yaml"])
    for path in (DEPLOY / "gateway.yaml", in_cluster):
        checked = subprocess.run(
            [sys.executable, "-m", "flext_api.cli", "gateway", "check", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_compose_file_follows_the_compose_spec() -> None:
    """compose.yaml parses strictly and validates against the compose-spec models."""
    parsed = PyCompose.from_json(json.dumps(compose()))  # merge keys resolved by PyYAML
    parsed.validate()
    assert isinstance(parsed.to_spec(), ComposeSpecification)
    assert parsed.service_names() == ["gateway", "orders", "inventory", "redis"]


def test_compose_parser_rejects_unknown_keys() -> None:
    """The compose validation really checks: an unknown service key is refused."""
    data = compose()
    data["services"]["orders"]["healthchek"] = {}
    with pytest.raises(ValueError, match="healthchek"):
        PyCompose.from_json(json.dumps(data))


def test_compose_wires_gateway_services_and_redis() -> None:
    """The gateway waits for healthy services; services use Redis; all but Redis probe /health."""
    services = compose()["services"]
    gateway = services["gateway"]
    assert gateway["command"][:3] == GATEWAY_ARGS
    assert set(gateway["depends_on"]) == {"orders", "inventory"}
    for name in ("orders", "inventory"):
        assert services[name]["environment"]["REDIS_URL"].startswith("redis://redis:")
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    admin_port = gateway_admin((DEPLOY / "gateway.yaml").read_text())["port"]
    probe = " ".join(services["gateway"]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{admin_port}/health" in probe  # the gateway's admin port
    for name in ("orders", "inventory"):
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert "http://127.0.0.1:8000/health" in probe  # flext-api serve's port
    config_host = {u["url"].split("//")[1].split(":")[0] for c in yaml.safe_load(
        (DEPLOY / "gateway.yaml").read_text())["clusters"] for u in c["instances"]}  # fmt: skip
    assert config_host <= set(services)


def test_dockerfile_is_multi_stage_and_non_root() -> None:
    """Two stages; the final one switches to a numeric non-root user before running."""
    instructions = dockerfile_instructions()
    stages = [args for ins, args in instructions if ins == "FROM"]
    assert len(stages) == 2 and all(" AS " in s for s in stages)
    final = instructions[max(i for i, (ins, _) in enumerate(instructions) if ins == "FROM") :]
    [user] = [args for ins, args in final if ins == "USER"]
    assert user.split(":")[0] not in {"0", "root"}
    assert [ins for ins, _ in final].index("USER") < [ins for ins, _ in final].index("CMD")
    assert any(ins == "COPY" and args.startswith("--from=build") for ins, args in final)


def test_dockerfile_health_check_and_command() -> None:
    """HEALTHCHECK probes the gateway's /health on its admin port; the image runs the
    gateway with the mounted config, and installs the gateway extra it needs to (an image
    with the server extra only failed at start-up: no wsproto)."""
    instructions = dict(dockerfile_instructions())
    admin_port = gateway_admin((DEPLOY / "gateway.yaml").read_text())["port"]
    assert f"http://127.0.0.1:{admin_port}/health" in instructions["HEALTHCHECK"]
    assert instructions["STOPSIGNAL"] == "SIGTERM"
    assert json.loads(instructions["ENTRYPOINT"]) == ["flext-api"]
    assert json.loads(instructions["CMD"])[:3] == GATEWAY_ARGS
    assert shlex.split(instructions["EXPOSE"]) == ["8000", str(admin_port)]
    extras = [args for ins, args in dockerfile_instructions() if ins == "ARG"]
    extras = [a.partition("=")[2] for a in extras if a.startswith("EXTRAS=")]
    assert len(extras) == 2
    for value in extras:
        assert "gateway" in value.split(","), value
