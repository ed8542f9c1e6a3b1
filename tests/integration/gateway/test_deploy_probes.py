"""The gateway configs in deploy/ served for real: the probes the Kubernetes Deployment,
the Dockerfile and Compose point at get their answers (they pointed at the proxy's port,
where a gateway answers 404, and the admin port the gateway serves them on was never
opened without a token)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from flext_api.gateway import GatewayConfig
from tests.integration.gateway.conftest import LiveGateway
from tests.integration.gateway.upstream import Upstream

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def _deployment_probes() -> dict[str, str]:
    """Probe name -> path, of the gateway container in deploy/k8s/deployment.yaml."""
    docs = yaml.safe_load_all((DEPLOY / "k8s" / "deployment.yaml").read_text())
    [deployment] = [d for d in docs if d and d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {
        name: container[name]["httpGet"]["path"]
        for name in ("startupProbe", "livenessProbe", "readinessProbe")
    }


def _config(source: str, upstream: str) -> dict[str, Any]:
    """The gateway config of ``source`` with its instances (cluster DNS names) pointed at
    ``upstream`` on 127.0.0.1."""
    if source == "configmap":
        docs = yaml.safe_load_all((DEPLOY / "k8s" / "configmap.yaml").read_text())
        [configmap] = [d for d in docs if d and d["kind"] == "ConfigMap"]
        data: dict[str, Any] = yaml.safe_load(configmap["data"]["gateway.yaml"])
    else:
        data = yaml.safe_load((DEPLOY / "gateway.yaml").read_text())
    for cluster in data["clusters"]:
        cluster["instances"] = [{"url": upstream + "/echo"}]  # the recording endpoint
    return data


@pytest.mark.parametrize("source", ["configmap", "compose"])
async def test_the_deploy_configs_answer_their_probes(source: str) -> None:
    upstream = Upstream("orders").start()
    live = LiveGateway(GatewayConfig.model_validate(_config(source, upstream.url)), None)
    try:
        live.start()
        async with aiohttp.ClientSession() as session:
            for probe, path in _deployment_probes().items():
                async with session.get(live.admin_url + path) as response:
                    assert response.status == 200, (probe, await response.text())
            # No admin.token in these configs: nothing behind the token opens.
            async with session.get(live.admin_url + "/admin/config") as response:
                assert response.status == 401
            async with session.get(live.url + "/orders/1") as response:
                assert response.status == 200
            assert upstream.hits("/echo/orders/1") == 1  # and the proxy routes
    finally:
        live.stop()
        upstream.stop()
