"""The chart's RBAC, read from `helm template`: what the operator and agent may do, and no more.

``tests/integration/test_helm.py`` checks the same grants against the real API
server (`kubectl auth can-i` with a TokenRequest token of the chart's ServiceAccount).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from tests.unit.chart.helm import Manifest, by_kind, one, render

# (API group, resource, verb) the operator performs: gpupool.k8s.client's requests and
# kopf's watches (list + watch); tests/integration/test_helm.py runs it with these grants.
OPERATOR_NEEDS = [
    ("gpupool.io", "gpupools", "list"),
    ("gpupool.io", "gpupools", "watch"),
    ("gpupool.io", "trainingjobs", "list"),
    ("gpupool.io", "trainingjobs", "watch"),
    ("gpupool.io", "trainingjobs", "delete"),
    ("gpupool.io", "inferenceservices", "list"),
    ("gpupool.io", "inferenceservices", "watch"),
    ("gpupool.io", "inferenceservices", "delete"),
    ("gpupool.io", "gpupools/status", "patch"),
    ("gpupool.io", "trainingjobs/status", "patch"),
    ("gpupool.io", "inferenceservices/status", "patch"),
    ("gpupool.io", "trainingjobs/finalizers", "update"),
    ("gpupool.io", "inferenceservices/finalizers", "update"),
    ("", "pods", "create"),
    ("", "pods", "delete"),
    ("", "pods", "list"),
    ("", "pods", "watch"),
    ("", "pods/binding", "create"),
    ("", "services", "create"),
    ("", "events", "create"),
    ("", "nodes", "list"),
    ("", "nodes", "watch"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
]

# What neither may do: a compromised operator must not read credentials, change RBAC,
# write Nodes or rewrite the CRDs.
FORBIDDEN_TO_BOTH = [
    ("", "secrets", "get"),
    ("", "secrets", "list"),
    ("", "configmaps", "get"),
    ("", "serviceaccounts/token", "create"),
    ("", "pods/exec", "create"),
    ("", "nodes", "delete"),
    ("", "nodes/status", "patch"),
    ("rbac.authorization.k8s.io", "clusterroles", "create"),
    ("rbac.authorization.k8s.io", "clusterrolebindings", "create"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "create"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "update"),
    ("apps", "deployments", "create"),
]
FORBIDDEN_TO_OPERATOR = [
    ("", "nodes", "patch"),
    ("", "nodes", "update"),
    ("", "pods", "update"),
    ("", "pods", "patch"),
    ("", "services", "delete"),
    ("", "namespaces", "list"),  # only with operator.watchNamespaces
    ("gpupool.io", "gpupools", "delete"),
    ("gpupool.io", "gpupools", "create"),
    ("gpupool.io", "gpupools", "patch"),
    ("gpupool.io", "trainingjobs", "create"),
    ("gpupool.io", "trainingjobs", "patch"),
]
AGENT_GRANTS = {("", "nodes", "get"), ("", "nodes", "patch")}


def allows(rules: Sequence[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    """RBAC's rule matching for a request without a resource name (no wildcards expected)."""
    for rule in rules:
        if (
            group in rule.get("apiGroups", [])
            and resource in rule.get("resources", [])
            and verb in rule.get("verbs", [])
            and not rule.get("resourceNames")
        ):
            return True
    return False


def grants(rules: Sequence[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


@pytest.fixture(scope="module")
def manifests() -> list[Manifest]:
    return render()


def role(manifests: list[Manifest], kind: str, component: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = one(manifests, kind, component=component)["rules"]
    return rules


def test_no_role_uses_wildcards_or_names_secrets(manifests: list[Manifest]) -> None:
    roles = by_kind(manifests, "ClusterRole") + by_kind(manifests, "Role")
    assert len(roles) == 3
    for each in roles:
        for rule in each["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), (each["metadata"]["name"], rule)
            assert "secrets" not in rule["resources"], each["metadata"]["name"]
            assert "nonResourceURLs" not in rule
            # escalate/bind/impersonate would let the holder grant itself more.
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])


@pytest.mark.parametrize(("group", "resource", "verb"), OPERATOR_NEEDS)
def test_operator_may_do_what_it_needs(
    manifests: list[Manifest], group: str, resource: str, verb: str
) -> None:
    assert allows(role(manifests, "ClusterRole", "operator"), group, resource, verb)


@pytest.mark.parametrize(("group", "resource", "verb"), FORBIDDEN_TO_BOTH + FORBIDDEN_TO_OPERATOR)
def test_operator_may_not(manifests: list[Manifest], group: str, resource: str, verb: str) -> None:
    assert not allows(role(manifests, "ClusterRole", "operator"), group, resource, verb)


@pytest.mark.parametrize(("group", "resource", "verb"), FORBIDDEN_TO_BOTH)
def test_agent_may_not(manifests: list[Manifest], group: str, resource: str, verb: str) -> None:
    assert not allows(role(manifests, "ClusterRole", "agent"), group, resource, verb)


def test_agent_may_only_read_and_annotate_nodes(manifests: list[Manifest]) -> None:
    assert grants(role(manifests, "ClusterRole", "agent")) == AGENT_GRANTS


def test_leader_lease_is_namespaced_and_named(manifests: list[Manifest]) -> None:
    lease_role = one(manifests, "Role", component="operator")
    assert lease_role["metadata"]["namespace"] == "gpupool-system"
    for rule in lease_role["rules"]:
        assert rule["apiGroups"] == ["coordination.k8s.io"]
        assert rule["resources"] == ["leases"]
        if rule["verbs"] != ["create"]:  # create cannot be limited by name
            assert rule["resourceNames"] == ["gp-gpupool-leader"]
    args = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--lease-name=gp-gpupool-leader" in args
    assert not any(
        rule["apiGroups"] == ["coordination.k8s.io"]
        for rule in role(manifests, "ClusterRole", "operator")
    ), "leases must not be granted cluster-wide"


@pytest.mark.parametrize("component", ["operator", "agent"])
def test_bindings_give_each_role_to_its_own_service_account(
    manifests: list[Manifest], component: str
) -> None:
    binding = one(manifests, "ClusterRoleBinding", component=component)
    cluster_role = one(manifests, "ClusterRole", component=component)
    account = one(manifests, "ServiceAccount", component=component)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": cluster_role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        }
    ]


def test_rbac_create_false_renders_no_rbac() -> None:
    manifests = render({"rbac": {"create": False}})
    kinds = {m["kind"] for m in manifests}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    assert len(by_kind(manifests, "ServiceAccount")) == 2


def test_namespaces_are_readable_only_when_the_operator_is_told_which_to_watch() -> None:
    manifests = render({"operator": {"watchNamespaces": ["team-a"]}})
    rules = role(manifests, "ClusterRole", "operator")
    assert allows(rules, "", "namespaces", "list")
    assert allows(rules, "", "namespaces", "watch")
    assert not allows(rules, "", "namespaces", "create")
