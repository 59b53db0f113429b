"""deploy/k8s: every manifest valid for Kubernetes 1.31 (kubernetes-validate's
bundled schemas, strict: no unknown field), the kustomization complete, and the
O8 properties read from the parsed manifests: non-root, read-only root
filesystem, no privilege escalation, every capability dropped, seccomp, and
secrets only by Secret reference."""

from __future__ import annotations

import copy
import ipaddress
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.deploy_files import DEPLOY
from userservice.settings import Settings

K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.31.0"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|DATABASE_URL|REDIS_URL|MAIL_URL")
PREFIX = "USERSERVICE_"


def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((K8S / name).read_text())
    return loaded


def _pod_specs() -> dict[str, dict[str, Any]]:
    return {
        "deployment": _load("deployment.yaml")["spec"]["template"]["spec"],
        "migrate-job": _load("migrate-job.yaml")["spec"]["template"]["spec"],
    }


def _setting_names() -> set[str]:
    return {PREFIX + name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_manifest_is_valid_for_the_pinned_kubernetes_version(path: Path) -> None:
    (document,) = list(yaml.safe_load_all(path.read_text()))
    assert kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validation_rejects_a_wrong_field() -> None:
    deployment = copy.deepcopy(_load("deployment.yaml"))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnly"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_applies_every_manifest_but_the_secret_example() -> None:
    kustomization = _load("kustomization.yaml")
    expected = {p.name for p in MANIFESTS} - {"secret.example.yaml"}
    assert set(kustomization["resources"]) == expected
    assert kustomization["namespace"] == "userservice"
    assert _load("namespace.yaml")["metadata"]["labels"] == {
        "pod-security.kubernetes.io/enforce": "restricted"
    }


@pytest.mark.parametrize("workload", ["deployment", "migrate-job"])
def test_o8_pods_run_unprivileged_on_a_read_only_filesystem(workload: str) -> None:
    spec = _pod_specs()[workload]
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == 10001 and pod["runAsGroup"] == 10001
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in spec["volumes"]}
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["privileged"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        # The only writable places: emptyDirs for /tmp (metrics) and /data.
        assert set(mounts) == {"/tmp", "/data"}
        assert all("emptyDir" in volumes[name] for name in mounts.values())
        assert "memory" in container["resources"]["limits"]


@pytest.mark.parametrize("workload", ["deployment", "migrate-job"])
def test_o8_secrets_come_only_from_secret_references(workload: str) -> None:
    secret = _load("secret.example.yaml")
    for container in _pod_specs()[workload]["containers"]:
        assert container["envFrom"] == [{"configMapRef": {"name": "userservice-config"}}]
        for variable in container["env"]:
            assert "value" not in variable, variable["name"]
            reference = variable["valueFrom"]["secretKeyRef"]
            assert reference["name"] == secret["metadata"]["name"]
            assert reference["key"] in secret["stringData"]
        referenced = {v["name"] for v in container["env"]}
        assert {"USERSERVICE_DATABASE_URL", "USERSERVICE_KEY_ENCRYPTION_SECRET"} <= referenced


def test_o8_the_config_map_holds_no_secret_and_only_real_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _load("configmap.yaml")["data"]
    assert not [name for name in data if SECRET_NAME.search(name)]
    secret = _load("secret.example.yaml")["stringData"]
    assert set(data) | set(secret) <= _setting_names()
    assert all("CHANGE-ME" in value for value in secret.values())
    # The service's own validation accepts the configuration as a whole.
    for name, value in (data | secret).items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.tls is False and settings.log_format == "json"
    assert settings.metrics_port == 9100


def test_deployment_probes_ports_and_service_agree() -> None:
    deployment = _load("deployment.yaml")
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    args = container["args"]
    assert args[:2] == ["userservice", "serve"] and "--no-migrate" in args
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == int(args[args.index("--port") + 1])
    assert ports["metrics"] == int(_load("configmap.yaml")["data"]["USERSERVICE_METRICS_PORT"])
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    service = _load("service.yaml")
    # The metrics port is scraped per pod, never through the Service (which would
    # reach one replica per scrape and publish the unauthenticated metrics).
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert _load("pdb.yaml")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ports["metrics"])
    job = _load("migrate-job.yaml")["spec"]["template"]["spec"]["containers"][0]
    assert job["args"] == ["userservice", "db", "upgrade"]


def test_ingress_autoscaler_and_disruption_budget() -> None:
    ingress = _load("ingress.yaml")
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    (tls,) = ingress["spec"]["tls"]
    assert tls["secretName"] == "userservice-tls"
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] in tls["hosts"]
    body = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert body == f"{Settings.model_fields['max_body_bytes'].default // (1024 * 1024)}m"
    hpa = _load("hpa.yaml")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "userservice"
    pdb = _load("pdb.yaml")
    assert pdb["apiVersion"] == "policy/v1"
    # The budget never blocks every eviction: at least one replica may go.
    assert hpa["spec"]["minReplicas"] > pdb["spec"]["minAvailable"]


def test_the_autoscaler_alone_owns_the_replica_count() -> None:
    """A `replicas` in the Deployment would reset the autoscaler's count at every apply."""
    assert "replicas" not in _load("deployment.yaml")["spec"]
    hpa = _load("hpa.yaml")["spec"]
    assert hpa["minReplicas"] >= 3 and hpa["maxReplicas"] > hpa["minReplicas"]


def test_shutdown_waits_for_routing_to_stop_then_for_requests_to_finish() -> None:
    spec = _load("deployment.yaml")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    # The `sleep` action (Kubernetes 1.30+, validated above for 1.31): no shell
    # or binary needed in the image.
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pause >= 5
    grace = int(_load("configmap.yaml")["data"]["USERSERVICE_SHUTDOWN_GRACE_SECONDS"])
    assert spec["terminationGracePeriodSeconds"] > pause + grace


def test_o8_mail_server_comes_from_the_secret() -> None:
    """Without a mail server the default `console:` transport logs every mail with
    its secret link: the Deployment requires both mail settings from the Secret."""
    (container,) = _pod_specs()["deployment"]["containers"]
    references = {v["name"]: v["valueFrom"]["secretKeyRef"] for v in container["env"]}
    for name in ("USERSERVICE_MAIL_URL", "USERSERVICE_MAIL_FROM"):
        assert references[name] == {"name": "userservice-secrets", "key": name}
        assert name not in _load("configmap.yaml")["data"]
    mail_url = _load("secret.example.yaml")["stringData"]["USERSERVICE_MAIL_URL"]
    assert mail_url.startswith("smtps://")


def _policy_rules() -> dict[str, list[dict[str, Any]]]:
    """{port name: the `from` peers admitted to it}."""
    policy = _load("networkpolicy.yaml")["spec"]
    rules: dict[str, list[dict[str, Any]]] = {}
    for rule in policy["ingress"]:
        for port in rule["ports"]:
            assert port["protocol"] == "TCP"
            rules.setdefault(port["port"], []).extend(rule["from"])
    return rules


def test_o7_only_the_ingress_controller_and_prometheus_reach_the_pods() -> None:
    """The replicas believe X-Forwarded-For from the trusted proxies and answer
    metrics without a token: only the ingress controller's namespace reaches the
    http port, only the monitoring namespace the metrics port, nothing else."""
    policy = _load("networkpolicy.yaml")
    assert policy["apiVersion"] == "networking.k8s.io/v1"
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    labels = _load("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert spec["podSelector"]["matchLabels"].items() <= labels.items()
    (container,) = _pod_specs()["deployment"]["containers"]
    assert {p["name"] for p in container["ports"]} == {"http", "metrics"}
    namespace = "kubernetes.io/metadata.name"
    assert _policy_rules() == {
        "http": [{"namespaceSelector": {"matchLabels": {namespace: "ingress-nginx"}}}],
        "metrics": [{"namespaceSelector": {"matchLabels": {namespace: "monitoring"}}}],
    }
    # Every rule names its ports and its peers: none admits everything.
    assert all(rule.get("ports") and rule.get("from") for rule in spec["ingress"])
    assert "networkpolicy.yaml" in _load("kustomization.yaml")["resources"]


def test_o7_trusted_proxies_say_to_narrow_them_to_the_ingress_controller() -> None:
    text = (K8S / "configmap.yaml").read_text()
    comment = text[: text.index("USERSERVICE_TRUSTED_PROXIES:")]
    assert "EDIT: narrow this to the addresses your Ingress controller's pods" in comment
    assert "networkpolicy.yaml" in comment
    value = _load("configmap.yaml")["data"]["USERSERVICE_TRUSTED_PROXIES"]
    networks = [ipaddress.ip_network(item) for item in value.split(",")]
    # Never a public or catch-all range: only private (pod) addresses.
    assert all(network.is_private and network.prefixlen >= 8 for network in networks)
