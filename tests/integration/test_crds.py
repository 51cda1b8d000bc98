"""The generated CRDs on a real kube-apiserver: installed, explained, listed, enforced.

Needs the local control plane (the ``kubectl`` fixture of conftest.py). The CRDs
and the examples are applied once for this module; the example gpupool objects
are deleted afterwards (the tenant namespaces stay).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpupool.api import API_VERSION, RESOURCES, ApiModel, GPUPool, InferenceService, TrainingJob

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
EXAMPLES = REPO / "examples"
INVALID = EXAMPLES / "invalid"

Kubectl = Callable[..., "subprocess.CompletedProcess[str]"]

MODEL_OF_KIND: dict[str, type[ApiModel]] = {
    "GPUPool": GPUPool,
    "TrainingJob": TrainingJob,
    "InferenceService": InferenceService,
}


def gpupool_objects(path: Path) -> list[dict[str, Any]]:
    docs = yaml.safe_load_all(path.read_text())
    return [doc for doc in docs if doc and doc.get("apiVersion") == API_VERSION]


EXAMPLE_OBJECTS = [obj for path in sorted(EXAMPLES.glob("*.yaml")) for obj in gpupool_objects(path)]


def ref(obj: dict[str, Any]) -> list[str]:
    """kubectl arguments naming an object: ``trainingjob/x -n team-a``."""
    meta = obj["metadata"]
    args = [f"{obj['kind'].lower()}.gpupool.io/{meta['name']}"]
    return [*args, "-n", meta["namespace"]] if "namespace" in meta else args


def until_ok(
    kubectl: Kubectl, *args: str, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run kubectl until it succeeds (the API server publishes new CRDs asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        result = kubectl(*args, check=False)
        if result.returncode == 0:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"kubectl {' '.join(args)} still failing after {timeout:.0f}s:\n{result.stderr}"
            )
        time.sleep(0.5)


@pytest.fixture(scope="module")
def crds_installed(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(CRDS))
    for resource in RESOURCES:
        kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{resource.crd_name}")


@pytest.fixture(scope="module")
def examples_applied(kubectl: Kubectl, crds_installed: None) -> Iterator[None]:
    until_ok(kubectl, "apply", "-f", str(EXAMPLES))  # 00-namespaces.yaml comes first
    yield
    for obj in EXAMPLE_OBJECTS:
        kubectl("delete", "--ignore-not-found", "--timeout=60s", *ref(obj))


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda resource: resource.kind)
def test_crd_is_established_with_a_structural_schema(
    kubectl: Kubectl, crds_installed: None, resource: Any
) -> None:
    crd = json.loads(kubectl("get", "crd", resource.crd_name, "-o", "json").stdout)
    conditions = {cond["type"]: cond["status"] for cond in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert "NonStructuralSchema" not in conditions
    assert crd["status"]["acceptedNames"]["shortNames"] == list(resource.short_names)


def test_explain_describes_the_training_job_spec(kubectl: Kubectl, crds_installed: None) -> None:
    text = until_ok(kubectl, "explain", "trainingjob.spec").stdout
    for field in ("pool", "priorityClass", "replicas", "gpusPerReplica", "elastic", "template"):
        assert f"\n  {field}\t" in text, f"{field} missing from:\n{text}"
    assert "Strict scheduling tier" in text
    assert "Name of the GPUPool to run in." in text


def test_explain_reaches_nested_fields(kubectl: Kubectl, crds_installed: None) -> None:
    text = until_ok(kubectl, "explain", "gpupool.spec.tenants.guaranteedGPUs").stdout
    assert "always the tenant's" in text


def test_the_gpupool_category_lists_all_three_kinds(
    kubectl: Kubectl, examples_applied: None
) -> None:
    names = until_ok(kubectl, "get", "gpupool", "--all-namespaces", "-o", "name").stdout.split()
    for obj in EXAMPLE_OBJECTS:
        assert f"{obj['kind'].lower()}.gpupool.io/{obj['metadata']['name']}" in names


def test_short_names_resolve(kubectl: Kubectl, examples_applied: None) -> None:
    assert kubectl("get", "gp", "a100", "-o", "name").stdout.strip() == "gpupool.gpupool.io/a100"
    assert "bert-pretrain" in kubectl("get", "tj", "-n", "team-a", "-o", "name").stdout
    assert "resnet50" in kubectl("get", "isvc", "-n", "team-c", "-o", "name").stdout


@pytest.mark.parametrize(
    "obj", EXAMPLE_OBJECTS, ids=lambda obj: f"{obj['kind']}/{obj['metadata']['name']}"
)
def test_server_defaults_equal_the_model_defaults(
    kubectl: Kubectl, examples_applied: None, obj: dict[str, Any]
) -> None:
    stored = json.loads(kubectl("get", *ref(obj), "-o", "json").stdout)
    parsed = MODEL_OF_KIND[obj["kind"]].model_validate(obj)
    assert stored["spec"] == parsed.model_dump(exclude_none=True)["spec"]


HEADERS = [
    ("gp", None, "NAME NODES GPUS ALLOCATED HEALTHY PRICE AGE", ["a100"]),
    ("tj", "team-a", "NAME POOL GPUS PRIORITY PHASE PRICE AGE", ["bert-pretrain", "a100", "high"]),
    ("isvc", "team-c", "NAME POOL READY REPLICAS PRICE URL AGE", ["resnet50", "a100", "2"]),
]


@pytest.mark.parametrize("table", HEADERS, ids=lambda table: table[0])
def test_get_shows_the_printer_columns(
    kubectl: Kubectl,
    examples_applied: None,
    table: tuple[str, str | None, str, list[str]],
) -> None:
    short_name, namespace, header, cells = table
    args = ["get", short_name, *(["-n", namespace] if namespace else [])]
    lines = kubectl(*args).stdout.splitlines()
    assert lines[0].split() == header.split()
    assert any(set(cells) <= set(line.split()) for line in lines[1:]), lines


def test_wide_output_adds_the_job_message(kubectl: Kubectl, examples_applied: None) -> None:
    header = kubectl("get", "tj", "-n", "team-b", "-o", "wide").stdout.splitlines()[0].split()
    assert header[-3:] == ["REPLICAS", "GPUS/REPLICA", "MESSAGE"]


def test_scale_subresource_sets_replicas_within_bounds(
    kubectl: Kubectl, examples_applied: None
) -> None:
    isvc = ["isvc/resnet50", "-n", "team-c"]
    try:
        kubectl("scale", *isvc, "--replicas=3")
        replicas = kubectl("get", *isvc, "-o", "jsonpath={.spec.replicas}").stdout
        assert replicas == "3"

        refused = kubectl("scale", *isvc, "--replicas=9", check=False)
        assert refused.returncode != 0
        assert "replicas must not exceed maxReplicas" in refused.stderr
    finally:
        kubectl("scale", *isvc, "--replicas=2")


# file -> what the API server's refusal must say (all of it)
SERVER_REJECTIONS: dict[str, tuple[str, ...]] = {
    "gpupool-duplicate-tenant.yaml": ("spec.tenants[2]", "Duplicate value", '"team-a"'),
    "gpupool-guaranteed-above-max.yaml": (
        "spec.tenants[0].guaranteedGPUs",
        "guaranteedGPUs must not exceed maxGPUs",
    ),
    "gpupool-selector-values-with-exists.yaml": (
        "values must be non-empty for In and NotIn, and empty for Exists",
    ),
    "inferenceservice-fraction-above-one.yaml": (
        "spec.gpusPerReplica",
        "gpusPerReplica of 1 or more must be a whole number",
    ),
    "inferenceservice-fraction-without-memory.yaml": (
        "spec.gpusPerReplica",
        "a fractional gpusPerReplica (a shared GPU) requires gpuMemoryMiB",
    ),
    "inferenceservice-min-above-replicas.yaml": (
        "spec.minReplicas",
        "minReplicas must not exceed replicas",
    ),
    "inferenceservice-replicas-above-max.yaml": (
        "spec.replicas",
        "replicas must not exceed maxReplicas",
    ),
    "inferenceservice-scale-to-zero-with-min.yaml": (
        "autoscaling.scaleToZeroAfterSeconds requires minReplicas 0",
    ),
    "inferenceservice-utilization-above-100.yaml": (
        "spec.autoscaling.target",
        "a gpuUtilization target is a percentage and must not exceed 100",
    ),
    "inferenceservice-zero-gpus.yaml": ("spec.gpusPerReplica", "should be greater than 0"),
    "trainingjob-bad-nproc.yaml": (
        "spec.torch.nprocPerNode",
        "nprocPerNode must be auto or a positive number",
    ),
    "trainingjob-elastic-min-above-replicas.yaml": (
        "spec.elastic.minReplicas",
        "elastic.minReplicas must not exceed replicas",
    ),
    "trainingjob-missing-pool.yaml": ("spec.pool: Required value",),
    "trainingjob-negative-gpus.yaml": (
        "spec.gpusPerReplica",
        "should be greater than or equal to 1",
    ),
    "trainingjob-too-many-gpus-per-replica.yaml": (
        "spec.gpusPerReplica",
        "should be less than or equal to 16",
    ),
    "trainingjob-unknown-priority.yaml": (
        "spec.priorityClass",
        'Unsupported value: "urgent"',
        '"high", "normal", "low"',
    ),
}


def test_the_rejection_table_covers_every_invalid_example() -> None:
    assert sorted(SERVER_REJECTIONS) == sorted(path.name for path in INVALID.glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(SERVER_REJECTIONS))
def test_invalid_object_is_rejected_saying_why(
    kubectl: Kubectl, examples_applied: None, name: str
) -> None:
    path = INVALID / name
    result = kubectl("create", "-f", str(path), check=False)
    if result.returncode == 0:
        for obj in gpupool_objects(path):
            kubectl("delete", "--ignore-not-found", *ref(obj))
        pytest.fail(f"the API server accepted {name}")
    for expected in SERVER_REJECTIONS[name]:
        assert expected in result.stderr, f"{expected!r} not in:\n{result.stderr}"
