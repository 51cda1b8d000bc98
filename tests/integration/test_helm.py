"""charts/gpupool with the real helm against the local control plane (RBAC on).

One release per module run, in its own namespace, on two kwok GPU nodes of its own
(the agent DaemonSet and the operator pod are pinned to them). kwok "runs" pods
without containers, so the operator Deployment is Ready on a fake node: these
tests check what Helm and the API server do, not the image.

In order: install creates everything (CRDs Established); the chart's ServiceAccounts,
with TokenRequest tokens, may do what the code needs and are refused the rest;
the operator run locally with the operator ServiceAccount's token (the chart's
RBAC only) schedules, preempts and cleans up a scenario; upgrade changes and
prunes; uninstall leaves nothing behind but the CRDs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import Scenario, job_manifest, wait_for
from tests.unit.chart.values_sets import NON_DEFAULT

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "gpupool"
RUN = uuid.uuid4().hex[:6]
RELEASE = f"gph-{RUN}"
NAMESPACE = f"gpupool-helm-{RUN}"
NODE_LABEL = f"helm-{RUN}"
NODES = [f"helm-{RUN}-n{i}" for i in range(2)]
FULLNAME = f"{RELEASE}-gpupool"
OPERATOR_SA = f"{FULLNAME}-operator"
AGENT_SA = f"{FULLNAME}-agent"
LEASE = f"{FULLNAME}-leader"
INSTALL_BOUND_S = 60.0  # generous: ~4 s measured on the 2-core machine

VALUES: dict[str, Any] = {
    "agent": {"nodeSelector": {"gpupool.io/pool": NODE_LABEL}},
    "operator": {"nodeSelector": {"gpupool.io/pool": NODE_LABEL}},
}


def node_manifest(name: str) -> dict[str, Any]:
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": "8"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "gpupool.io/pool": NODE_LABEL,
            },
        },
        "status": {"capacity": capacity, "allocatable": capacity},
    }


@dataclass
class Release:
    env: dict[str, str]
    workdir: Path
    install_seconds: float = 0.0
    manifests: list[dict[str, Any]] = field(default_factory=list)

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["helm", *args], capture_output=True, text=True, env=self.env, timeout=300, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def values_file(self, values: dict[str, Any], name: str) -> str:
        path = self.workdir / f"{name}.json"
        path.write_text(json.dumps(values))
        return str(path)

    def manifest(self) -> list[dict[str, Any]]:
        out = self.helm("get", "manifest", RELEASE, "-n", NAMESPACE).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]


def resource_ref(manifest: dict[str, Any]) -> list[str]:
    """``kubectl get`` arguments naming one object of a rendered manifest."""
    group = manifest["apiVersion"].rpartition("/")[0]
    kind = manifest["kind"].lower() + (f".{group}" if group else "")
    args = [kind, manifest["metadata"]["name"]]
    if "namespace" in manifest["metadata"]:
        args += ["-n", manifest["metadata"]["namespace"]]
    return args


def exists(kubectl: Kubectl, manifest: dict[str, Any]) -> bool:
    result = kubectl("get", *resource_ref(manifest), "-o", "name", check=False)
    if result.returncode != 0 and "NotFound" not in result.stderr:
        raise AssertionError(result.stderr)
    return result.returncode == 0


def token_kubeconfig(kubectl: Kubectl, account: str, path: Path) -> Path:
    """A kubeconfig authenticating as ``account`` with a TokenRequest token, nothing else."""
    token = kubectl("create", "token", account, "-n", NAMESPACE, "--duration=1h").stdout.strip()
    admin = json.loads(kubectl("config", "view", "--minify", "--raw", "-o", "json").stdout)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": "local", "user": account}}],
        "current-context": account,
    }
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def release(
    kubectl: Kubectl, cluster_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    if shutil.which("helm", path=cluster_env.get("PATH")) is None:
        pytest.skip("helm not built (e2e/build-tools.sh builds it into the cache bin)")
    rel = Release(env=cluster_env, workdir=tmp_path_factory.mktemp("helm"))
    kubectl(
        "apply", "-f", "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List",
                          "items": [node_manifest(n) for n in NODES]}),
    )  # fmt: skip
    kubectl("wait", "--for=condition=Ready", "node", *NODES, "--timeout=60s")
    try:
        started = time.monotonic()
        rel.helm(
            "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--create-namespace",
            "--wait", "--timeout", "120s", "-f", rel.values_file(VALUES, "install"),
        )  # fmt: skip
        rel.install_seconds = time.monotonic() - started
        print(f"\nhelm install --wait took {rel.install_seconds:.1f}s", file=sys.stderr)
        rel.manifests = rel.manifest()
        yield rel
    finally:
        rel.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)
        kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
        kubectl("delete", "node", *NODES, "--wait=false", check=False)


# --------------------------------------------------------------------------- install


def test_install_is_deployed_within_bound(release: Release) -> None:
    status = json.loads(release.helm("status", RELEASE, "-n", NAMESPACE, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    assert status["version"] == 1
    assert release.install_seconds < INSTALL_BOUND_S


def test_install_establishes_the_crds_of_crds_dir(kubectl: Kubectl, release: Release) -> None:
    for path in sorted((REPO / "crds").glob("*.yaml")):
        name = yaml.safe_load(path.read_text())["metadata"]["name"]
        kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=30s")


def test_install_creates_every_rendered_object(kubectl: Kubectl, release: Release) -> None:
    kinds = sorted(m["kind"] for m in release.manifests)
    assert kinds == sorted(
        ["ServiceAccount"] * 2 + ["ClusterRole"] * 2 + ["ClusterRoleBinding"] * 2
        + ["Role", "RoleBinding", "Deployment", "DaemonSet"] + ["Service"] * 2
        + ["ConfigMap"] * 3
    )  # fmt: skip
    missing = [resource_ref(m) for m in release.manifests if not exists(kubectl, m)]
    assert missing == []


def test_operator_deployment_becomes_available(kubectl: Kubectl, release: Release) -> None:
    deployment = json.loads(
        kubectl("get", "deployment", f"{FULLNAME}-operator", "-n", NAMESPACE, "-o", "json").stdout
    )
    assert deployment["status"]["availableReplicas"] == 1
    pods = json.loads(
        kubectl(
            "get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=operator",
            "-o", "json",
        ).stdout
    )["items"]  # fmt: skip
    assert [pod["spec"]["nodeName"] in NODES for pod in pods] == [True]
    assert pods[0]["spec"]["serviceAccountName"] == OPERATOR_SA


def test_agent_daemonset_covers_exactly_the_selected_gpu_nodes(
    kubectl: Kubectl, release: Release
) -> None:
    daemonset = json.loads(
        kubectl("get", "daemonset", f"{FULLNAME}-agent", "-n", NAMESPACE, "-o", "json").stdout
    )
    assert daemonset["status"]["desiredNumberScheduled"] == len(NODES)
    assert daemonset["status"]["numberReady"] == len(NODES)
    pods = json.loads(
        kubectl(
            "get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=agent", "-o", "json"
        ).stdout
    )["items"]  # fmt: skip
    assert sorted(pod["spec"]["nodeName"] for pod in pods) == NODES


def test_dashboards_are_configmaps_for_the_grafana_sidecar(
    kubectl: Kubectl, release: Release
) -> None:
    maps = json.loads(
        kubectl(
            "get", "configmaps", "-n", NAMESPACE, "-l", "grafana_dashboard=1", "-o", "json"
        ).stdout
    )["items"]
    assert len(maps) == 3
    for config_map in maps:
        ((key, text),) = config_map["data"].items()
        assert json.loads(text) == json.loads((CHART / "dashboards" / key).read_text())


@pytest.mark.parametrize("values", [{}, NON_DEFAULT], ids=["default", "non-default"])
def test_api_server_accepts_every_rendered_object(
    kubectl: Kubectl, release: Release, values: dict[str, Any]
) -> None:
    """Server-side dry run: the API server validates each rendered object (the sample
    GPUPool against the CRD's schema too) without persisting anything."""
    rendered = release.helm(
        "template", "dry", str(CHART), "--namespace", NAMESPACE, "--kube-version", "1.34.4",
        "-f", release.values_file(values, "dry-run"),
    ).stdout  # fmt: skip
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    kinds = {line.split("/")[0] for line in result.stdout.splitlines()}
    assert "deployment.apps" in kinds and "daemonset.apps" in kinds
    if values:
        assert "gpupool.gpupool.io" in kinds


# ------------------------------------------------------------------------------ RBAC

# (verb, resource[/name], extra `kubectl auth can-i` args, allowed) for the operator's
# account; subresources need --subresource (`pods/exec` would mean a pod named exec).
OPERATOR_CAN_I = [
    ("create", "pods", ["-n", "default"], True),
    ("delete", "pods", ["-n", "default"], True),
    ("watch", "pods", ["--all-namespaces"], True),
    ("create", "pods", ["--subresource=binding", "-n", "default"], True),
    ("create", "services", ["-n", "default"], True),
    ("create", "events", ["-n", "default"], True),
    ("list", "nodes", [], True),
    ("watch", "trainingjobs.gpupool.io", ["--all-namespaces"], True),
    ("delete", "trainingjobs.gpupool.io", ["-n", "default"], True),
    ("list", "gpupools.gpupool.io", [], True),
    ("patch", "gpupools.gpupool.io", [], False),
    ("patch", "gpupools.gpupool.io", ["--subresource=status"], True),
    ("patch", "trainingjobs.gpupool.io", ["--subresource=status", "-n", "default"], True),
    ("update", f"leases.coordination.k8s.io/{LEASE}", ["-n", NAMESPACE], True),
    ("create", "leases.coordination.k8s.io", ["-n", NAMESPACE], True),
    ("get", "secrets", ["-n", NAMESPACE], False),
    ("list", "secrets", ["--all-namespaces"], False),
    ("get", "configmaps", ["-n", NAMESPACE], False),
    ("update", "leases.coordination.k8s.io/other", ["-n", NAMESPACE], False),
    ("create", "leases.coordination.k8s.io", ["-n", "default"], False),
    ("patch", "nodes", [], False),
    ("create", "pods", ["--subresource=exec", "-n", "default"], False),
    ("create", "pods", ["--subresource=eviction", "-n", "default"], False),
    ("update", "pods", ["-n", "default"], False),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", [], False),
    ("delete", "gpupools.gpupool.io", [], False),
    ("update", "customresourcedefinitions.apiextensions.k8s.io", [], False),
]
AGENT_CAN_I = [
    ("patch", "nodes", [], True),
    ("get", "nodes", [], True),
    ("patch", "nodes", ["--subresource=status"], False),
    ("delete", "nodes", [], False),
    ("list", "pods", ["--all-namespaces"], False),
    ("get", "secrets", ["-n", NAMESPACE], False),
    ("list", "gpupools.gpupool.io", [], False),
]


@pytest.fixture(scope="module")
def operator_kubeconfig(kubectl: Kubectl, release: Release) -> Path:
    return token_kubeconfig(kubectl, OPERATOR_SA, release.workdir / "operator.kubeconfig")


@pytest.fixture(scope="module")
def agent_kubeconfig(kubectl: Kubectl, release: Release) -> Path:
    return token_kubeconfig(kubectl, AGENT_SA, release.workdir / "agent.kubeconfig")


def can_i(env: dict[str, str], kubeconfig: Path, verb: str, resource: str, extra: list[str]) -> str:
    result = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", "auth", "can-i", verb, resource, *extra],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    return result.stdout.strip()


def test_operator_account_may_do_what_the_operator_does_and_no_more(
    cluster_env: dict[str, str], operator_kubeconfig: Path
) -> None:
    answers = {
        f"{verb} {resource} {' '.join(extra)}": can_i(
            cluster_env, operator_kubeconfig, verb, resource, extra
        )
        for verb, resource, extra, _ in OPERATOR_CAN_I
    }
    expected = {
        f"{verb} {resource} {' '.join(extra)}": "yes" if allowed else "no"
        for verb, resource, extra, allowed in OPERATOR_CAN_I
    }
    assert answers == expected


def test_agent_account_may_only_read_and_annotate_nodes(
    cluster_env: dict[str, str], agent_kubeconfig: Path
) -> None:
    answers = {
        f"{verb} {resource} {' '.join(extra)}": can_i(
            cluster_env, agent_kubeconfig, verb, resource, extra
        )
        for verb, resource, extra, _ in AGENT_CAN_I
    }
    expected = {
        f"{verb} {resource} {' '.join(extra)}": "yes" if allowed else "no"
        for verb, resource, extra, allowed in AGENT_CAN_I
    }
    assert answers == expected


def test_reading_secrets_with_the_operator_token_is_refused_by_the_api_server(
    cluster_env: dict[str, str], operator_kubeconfig: Path
) -> None:
    result = subprocess.run(
        ["kubectl", f"--kubeconfig={operator_kubeconfig}", "get", "secrets", "-n", "kube-system"],
        capture_output=True, text=True, env=cluster_env, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Forbidden" in result.stderr
    assert f"system:serviceaccount:{NAMESPACE}:{OPERATOR_SA}" in result.stderr


def test_operator_with_the_chart_credentials_schedules_preempts_and_cleans_up(
    kubectl: Kubectl, cluster_env: dict[str, str], operator_kubeconfig: Path, release: Release
) -> None:
    """`gpupool run` as the chart's ServiceAccount: the chart's RBAC is all it needs."""
    env = {**cluster_env, "KUBECONFIG": str(operator_kubeconfig), "PYTHONUNBUFFERED": "1"}
    tenants = [
        {"namespace": "lo", "guaranteedGPUs": 0, "credits": {"perHour": 100, "max": 100}},
        {"namespace": "hi", "guaranteedGPUs": 8},
    ]
    scenario = Scenario(kubectl, env, release.workdir, nodes=1, tenants=tenants, grace_s=2)
    try:
        scenario.start_operator("--lease-name", LEASE, "--lease-namespace", NAMESPACE)
        # A low-tier job borrows the node's 8 GPUs (pods created and bound)...
        scenario.submit("crunch", tenant="lo", gpus=8, priority="low", complete_after=None)
        scenario.wait_phase("crunch", "lo", "Running", timeout=90)
        # ...a high-tier job inside its guarantee preempts it (pods deleted gracefully)...
        urgent = job_manifest("urgent", namespace=scenario.ns("hi"), pool=scenario.pool, gpus=8,
                              priority="high", complete_after="3s")  # fmt: skip
        urgent["spec"]["ttlSecondsAfterFinished"] = 1
        scenario.apply(urgent)

        # Preempting lasts at most the 2 s grace period (kwok deletes the pods at once):
        # wait for what stays, or a loaded machine's polls can miss the phase.
        def preempted_status() -> dict[str, Any] | None:
            status = scenario.status("crunch", "lo")
            return status if status.get("preemptions") else None

        preempted = wait_for(preempted_status, timeout=90, expected="crunch to be preempted")
        assert preempted["preemptions"] == 1
        assert any(c["type"] == "Preempting" for c in preempted["conditions"]), preempted
        running = scenario.wait_phase("urgent", "hi", "Running", timeout=90)
        assert running["placement"][0]["node"] == scenario.node_names[0]
        # ...finishes, and the operator deletes it after its TTL.
        wait_for(
            lambda: scenario.get("trainingjob", "urgent", scenario.ns("hi")) is None,
            timeout=90, expected="the finished job to be deleted after ttlSecondsAfterFinished",
        )  # fmt: skip
        lease = json.loads(kubectl("get", "lease", LEASE, "-n", NAMESPACE, "-o", "json").stdout)
        assert lease["spec"]["holderIdentity"]
        log = scenario.operator_logs[-1].read_text(errors="replace")
        # kopf logs APIForbiddenError, our client Forbidden: neither may appear.
        assert "forbidden" not in log.lower(), scenario.log_tail(40)
    except BaseException:
        print(f"--- operator log ---\n{scenario.log_tail()}", file=sys.stderr)
        raise
    finally:
        scenario.close()


# --------------------------------------------------------------------------- upgrade


def test_upgrade_changes_args_and_prunes_what_values_turn_off(
    kubectl: Kubectl, release: Release
) -> None:
    values = {**VALUES, "agent": {"enabled": False}, "operator": {**VALUES["operator"],
              "verbosity": 1}, "dashboards": {"folder": "GPU"}}  # fmt: skip
    release.helm(
        "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--wait", "--timeout", "120s",
        "-f", release.values_file(values, "upgrade"),
    )  # fmt: skip
    deployment = json.loads(
        kubectl("get", "deployment", f"{FULLNAME}-operator", "-n", NAMESPACE, "-o", "json").stdout
    )
    assert "-v" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert deployment["status"]["updatedReplicas"] == 1
    agent_objects = [m for m in release.manifests if "agent" in m["metadata"]["name"]]
    assert len(agent_objects) == 5  # DaemonSet, ServiceAccount, Service, ClusterRole(Binding)
    wait_for(
        lambda: not any(exists(kubectl, m) for m in agent_objects),
        timeout=30, expected="the agent's objects to be deleted by the upgrade",
    )  # fmt: skip
    maps = json.loads(
        kubectl(
            "get", "configmaps", "-n", NAMESPACE, "-l", "grafana_dashboard=1", "-o", "json"
        ).stdout
    )["items"]
    assert {m["metadata"]["annotations"]["grafana_folder"] for m in maps} == {"GPU"}

    release.helm(
        "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--wait", "--timeout", "120s",
        "-f", release.values_file(VALUES, "install"),
    )  # fmt: skip
    assert all(exists(kubectl, m) for m in agent_objects)
    history = json.loads(release.helm("history", RELEASE, "-n", NAMESPACE, "-o", "json").stdout)
    assert [(h["revision"], h["status"]) for h in history] == [
        (1, "superseded"),
        (2, "superseded"),
        (3, "deployed"),
    ]


# ------------------------------------------------------------------------- uninstall


def test_uninstall_leaves_no_orphans_but_keeps_the_crds(kubectl: Kubectl, release: Release) -> None:
    release.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "120s")
    left = [resource_ref(m) for m in release.manifests if exists(kubectl, m)]
    assert left == []
    selector = f"app.kubernetes.io/instance={RELEASE}"
    kinds = ("pods,deployments,daemonsets,replicasets,services,configmaps,serviceaccounts,"
             "roles,rolebindings")  # fmt: skip
    wait_for(
        lambda: kubectl("get", kinds, "-A", "-l", selector, "-o", "name").stdout.strip() == "",
        timeout=60, expected=f"no namespaced object labelled {selector}",
    )  # fmt: skip
    cluster_scoped = kubectl(
        "get", "clusterroles,clusterrolebindings", "-l", selector, "-o", "name"
    ).stdout.strip()
    assert cluster_scoped == ""
    for path in sorted((REPO / "crds").glob("*.yaml")):
        name = yaml.safe_load(path.read_text())["metadata"]["name"]
        kubectl("get", "crd", name)  # Helm never deletes CRDs from crds/
