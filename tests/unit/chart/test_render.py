"""`helm lint` and `helm template` of charts/gpupool with default and non-default values."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.chart.helm import (
    CHART,
    REPO,
    SERVICE_MONITOR_API,
    Manifest,
    by_kind,
    one,
    pod_templates,
    render,
    run_helm,
    template,
)
from tests.unit.chart.values_sets import DIGEST, NON_DEFAULT

VALUE_SETS = {
    "default": {},
    "non-default": NON_DEFAULT,
    "agent-disabled": {"agent": {"enabled": False}},
    "ha": {"operator": {"replicas": 3}},
    "no-rbac-no-dashboards": {"rbac": {"create": False}, "dashboards": {"enabled": False}},
}


def names(manifests: list[Manifest]) -> set[tuple[str, str]]:
    return {(m["kind"], m["metadata"]["name"]) for m in manifests}


def container(pod_spec: Manifest) -> Manifest:
    (only,) = pod_spec["containers"]
    return dict(only)


# ------------------------------------------------------------------------- lint


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_helm_lint_strict_passes(values: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "values.json"
    path.write_text(json.dumps(values))
    result = run_helm("lint", "--strict", str(CHART), "-f", str(path))
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_every_value_set_renders_labelled_resources(values: dict[str, Any]) -> None:
    manifests = render(values)
    assert manifests
    for manifest in manifests:
        labels = manifest["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/instance") == "gp", manifest["metadata"]["name"]
        assert labels.get("app.kubernetes.io/managed-by") == "Helm"


# ---------------------------------------------------------------------- defaults


def test_default_render_is_exactly_the_expected_resources() -> None:
    assert names(render()) == {
        ("ServiceAccount", "gp-gpupool-operator"),
        ("ServiceAccount", "gp-gpupool-agent"),
        ("ClusterRole", "gp-gpupool-operator"),
        ("ClusterRoleBinding", "gp-gpupool-operator"),
        ("Role", "gp-gpupool-operator-leader-election"),
        ("RoleBinding", "gp-gpupool-operator-leader-election"),
        ("ClusterRole", "gp-gpupool-agent"),
        ("ClusterRoleBinding", "gp-gpupool-agent"),
        ("Service", "gp-gpupool-operator-metrics"),
        ("Service", "gp-gpupool-agent-metrics"),
        ("Deployment", "gp-gpupool-operator"),
        ("DaemonSet", "gp-gpupool-agent"),
        ("ConfigMap", "gp-gpupool-dashboard-gpu-health"),
        ("ConfigMap", "gp-gpupool-dashboard-market-tenants"),
        ("ConfigMap", "gp-gpupool-dashboard-pool-overview"),
    }


def test_namespaced_resources_go_to_the_release_namespace() -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "GPUPool"}
    for manifest in render(namespace="gpu-ops"):
        namespace = manifest["metadata"].get("namespace")
        if manifest["kind"] in cluster_scoped:
            assert namespace is None, manifest["metadata"]["name"]
        else:
            assert namespace == "gpu-ops", manifest["metadata"]["name"]


def test_operator_runs_gpupool_run_with_the_metrics_port_behind_a_service() -> None:
    manifests = render()
    deployment = one(manifests, "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    operator = container(spec)
    assert operator["command"] == ["gpupool"]
    assert operator["args"][:2] == ["run", "--metrics-port=8080"]
    assert spec["serviceAccountName"] == "gp-gpupool-operator"
    service = one(manifests, "Service", component="operator")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert service["spec"]["ports"][0]["port"] == 8080
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


@pytest.mark.parametrize("replicas", [1, 3])
def test_upgrades_never_leave_the_pool_without_an_operator(replicas: int) -> None:
    """The Lease makes one writer; rolling with maxUnavailable 0 keeps a pod waiting for it."""
    manifests = render({"operator": {"replicas": replicas}})
    deployment = one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == replicas
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    args = container(deployment["spec"]["template"]["spec"])["args"]
    assert "--lease-name=gp-gpupool-leader" in args
    assert "--lease-namespace=$(POD_NAMESPACE)" in args
    assert "--identity=$(POD_NAME)" in args


def test_operator_probes_use_kopf_liveness_and_the_metrics_port() -> None:
    spec = one(render(), "Deployment")["spec"]["template"]["spec"]
    operator = container(spec)
    assert "--liveness=http://0.0.0.0:8081/healthz" in operator["args"]
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert operator["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in operator["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}


def test_same_metrics_and_health_port_is_refused() -> None:
    result = template({"operator": {"health": {"port": 8080}}}, check=False)
    assert result.returncode != 0
    assert "operator.metrics.port and operator.health.port must differ" in result.stderr


def test_agent_runs_on_gpu_nodes_only_with_its_node_name() -> None:
    manifests = render()
    daemonset = one(manifests, "DaemonSet")
    spec = daemonset["spec"]["template"]["spec"]
    assert "nodeSelector" not in spec
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms == [
        {"matchExpressions": [
            {"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]}]},
        {"matchExpressions": [{"key": "gpupool.io/pool", "operator": "Exists"}]},
    ]  # fmt: skip
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    agent = container(spec)
    env = {e["name"]: e for e in agent["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert "--node-name=$(NODE_NAME)" in agent["args"]
    assert "--metrics-port=9400" in agent["args"]
    assert "--evict-on-xid=48,63,64,74,79" in agent["args"]
    assert spec["serviceAccountName"] == "gp-gpupool-agent"
    service = one(manifests, "Service", component="agent")
    assert service["spec"]["clusterIP"] == "None"
    assert (
        service["spec"]["selector"].items()
        <= daemonset["spec"]["template"]["metadata"]["labels"].items()
    )


def test_agent_reaches_gpus_without_host_access() -> None:
    spec = one(render(), "DaemonSet")["spec"]["template"]["spec"]
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(key), key
    assert all("hostPath" not in volume for volume in spec.get("volumes", []))
    env = {e["name"]: e.get("value") for e in container(spec)["env"]}
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "utility"


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_every_pod_is_restricted(values: dict[str, Any]) -> None:
    """Pod Security Standards "restricted": non-root, no escalation, no capabilities, seccomp."""
    for name, spec in pod_templates(render(values)):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for each in spec["containers"]:
            ctx = each["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["privileged"] is False, name
            assert ctx["capabilities"] == {"drop": ["ALL"]}, name
            assert "add" not in ctx["capabilities"], name
            assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert each["resources"]["requests"], name
            assert each["resources"]["limits"]["memory"], name


def test_service_accounts_do_not_mount_tokens_into_other_pods() -> None:
    manifests = render()
    for account in by_kind(manifests, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False
    for name, spec in pod_templates(manifests):
        assert spec["automountServiceAccountToken"] is True, name


# ------------------------------------------------------------------ non-defaults


def test_non_default_values_reach_the_manifests() -> None:
    manifests = render(NON_DEFAULT)
    assert {m["metadata"]["name"] for m in by_kind(manifests, "Deployment")} == {"gp-operator"}
    deployment = one(manifests, "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    operator = container(spec)
    assert operator["image"] == f"registry.example.com/ml/gpupool@{DIGEST}"
    assert operator["args"] == [
        "run",
        "--metrics-port=9090",
        "--liveness=http://0.0.0.0:9091/healthz",
        "--lease-namespace=$(POD_NAMESPACE)",
        "--lease-name=gpu-scheduler",
        "--lease-duration=30",
        "--identity=$(POD_NAME)",
        "--resync-seconds=300",
        "--telemetry-stale-seconds=60",
        "--require-telemetry",
        "--pool=a100",
        "--pool=h100",
        "--namespace=team-a",
        "--log-format=plain",
        "-vv",
        "--resync-seconds=120",
    ]
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert deployment["spec"]["replicas"] == 2
    agent_spec = one(manifests, "DaemonSet")["spec"]["template"]["spec"]
    assert agent_spec["nodeSelector"] == {"gpupool.io/pool": "a100"}
    assert "affinity" not in agent_spec, "a nodeSelector replaces the default GPU-node affinity"
    assert agent_spec["runtimeClassName"] == "nvidia"
    args = container(agent_spec)["args"]
    assert "--max-temperature-c=85" in args
    assert "--evict-on-xid=48,79" in args
    assert "--metrics-port=9500" in args
    assert one(manifests, "DaemonSet")["spec"]["updateStrategy"]["rollingUpdate"] == {
        "maxUnavailable": "10%"
    }
    for manifest in manifests:
        assert manifest["metadata"]["labels"]["team"] == "platform", manifest["metadata"]["name"]


def test_image_tag_defaults_to_app_version_and_can_be_set() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    image = container(one(render(), "Deployment")["spec"]["template"]["spec"])["image"]
    assert image == f"ghcr.io/gpupool/gpupool:{chart['appVersion']}"
    tagged = render({"image": {"tag": "0.2.0-rc1"}})
    assert container(one(tagged, "DaemonSet")["spec"]["template"]["spec"])["image"] == (
        "ghcr.io/gpupool/gpupool:0.2.0-rc1"
    )


def test_agent_disabled_leaves_no_agent_resource() -> None:
    manifests = render({"agent": {"enabled": False}})
    assert not by_kind(manifests, "DaemonSet")
    assert [m for m in manifests if "agent" in m["metadata"]["name"]] == []
    assert one(manifests, "Deployment")


@pytest.mark.parametrize(
    ("enabled", "api_served", "expected"),
    [(False, False, 0), (False, True, 0), (True, False, 0), (True, True, 2)],
)
def test_service_monitors_only_when_enabled_and_served(
    enabled: bool, api_served: bool, expected: int
) -> None:
    extra = ("--api-versions", SERVICE_MONITOR_API) if api_served else ()
    manifests = render({"serviceMonitor": {"enabled": enabled}}, extra=extra)
    monitors = by_kind(manifests, "ServiceMonitor")
    assert len(monitors) == expected
    for monitor in monitors:
        component = monitor["metadata"]["labels"]["app.kubernetes.io/component"]
        service = one(manifests, "Service", component=component)
        assert monitor["spec"]["selector"]["matchLabels"].items() <= (
            service["metadata"]["labels"].items()
        )
        assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_service_monitor_selects_only_the_operator_without_agent() -> None:
    manifests = render(
        {"serviceMonitor": {"enabled": True}, "agent": {"enabled": False}},
        extra=("--api-versions", SERVICE_MONITOR_API),
    )
    (monitor,) = by_kind(manifests, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"


def test_dashboards_are_the_chart_json_files_labelled_for_the_sidecar() -> None:
    manifests = render({"dashboards": {"folder": "GPU"}})
    maps = {
        m["metadata"]["name"]: m
        for m in by_kind(manifests, "ConfigMap")
        if m["metadata"]["labels"].get("app.kubernetes.io/component") == "dashboards"
    }
    files = sorted((CHART / "dashboards").glob("*.json"))
    assert len(maps) == len(files) == 3
    for path in files:
        config_map = maps[f"gp-gpupool-dashboard-{path.stem}"]
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"] == {"grafana_folder": "GPU"}
        assert json.loads(config_map["data"][path.name]) == json.loads(path.read_text())


def test_dashboards_can_go_to_grafana_namespace_with_another_label() -> None:
    manifests = render(
        {"dashboards": {"namespace": "monitoring", "label": "grafana/dashboard", "labelValue": "x"}}
    )
    for config_map in by_kind(manifests, "ConfigMap"):
        assert config_map["metadata"]["namespace"] == "monitoring"
        assert config_map["metadata"]["labels"]["grafana/dashboard"] == "x"


def test_sample_pool_is_rendered_from_values() -> None:
    assert not by_kind(render(), "GPUPool")
    pool = one(render(NON_DEFAULT), "GPUPool")
    assert pool["apiVersion"] == "gpupool.io/v1alpha1"
    assert pool["metadata"]["name"] == "a100"
    assert pool["spec"] == NON_DEFAULT["samplePool"]["spec"]


# ------------------------------------------------------------------------- CRDs


def crd_documents(directory: Path) -> list[Manifest]:
    docs = [yaml.safe_load(path.read_text()) for path in sorted(directory.glob("*.yaml"))]
    return sorted(docs, key=lambda doc: doc["metadata"]["name"])


def test_chart_crds_are_the_generated_crds_not_a_copy() -> None:
    link = CHART / "crds"
    assert link.is_symlink(), "charts/gpupool/crds must stay a link to crds/ (one copy)"
    assert link.resolve() == (REPO / "crds").resolve()


def test_template_with_crds_renders_exactly_the_generated_crds() -> None:
    rendered = render(extra=("--include-crds",))
    crds = sorted(
        by_kind(rendered, "CustomResourceDefinition"), key=lambda d: d["metadata"]["name"]
    )
    assert crds == crd_documents(REPO / "crds")
    assert len(crds) == 3


def test_packaged_chart_carries_the_crd_files_byte_for_byte(tmp_path: Path) -> None:
    run_helm("package", str(CHART), "--destination", str(tmp_path))
    (archive,) = tmp_path.glob("gpupool-*.tgz")
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        packaged = sorted(n for n in members if n.startswith("gpupool/crds/"))
        expected = sorted(f"gpupool/crds/{p.name}" for p in (REPO / "crds").glob("*.yaml"))
        assert packaged == expected
        for name in packaged:
            extracted = tar.extractfile(members[name])
            assert extracted is not None
            assert extracted.read() == (REPO / "crds" / Path(name).name).read_bytes()
        assert not [n for n in members if n.endswith(".py")], "generator must not be packaged"


# ------------------------------------------------------- args the programs accept


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_operator_args_are_accepted_by_gpupool_run(values: dict[str, Any]) -> None:
    """The chart's flags are the CLI's flags (argparse exits 2 on an unknown one)."""
    from gpupool.cli import _parser  # noqa: PLC0415 (the CLI's own parser)

    operator = container(one(render(values), "Deployment")["spec"]["template"]["spec"])
    assert operator["command"] == ["gpupool"]
    args = _parser().parse_args(operator["args"])
    assert args.command == "run"
    assert args.metrics_port == operator["ports"][0]["containerPort"]


@pytest.mark.parametrize("values", [{}, NON_DEFAULT], ids=["default", "non-default"])
def test_agent_args_are_accepted_by_gpupool_agent(values: dict[str, Any]) -> None:
    from gpupool.telemetry.agent import _parse_args  # noqa: PLC0415

    agent = container(one(render(values), "DaemonSet")["spec"]["template"]["spec"])
    assert agent["command"] == ["gpupool-agent"]
    args = _parse_args(agent["args"])
    assert not args.simulated and not args.dry_run
    assert args.metrics_port == agent["ports"][0]["containerPort"]
