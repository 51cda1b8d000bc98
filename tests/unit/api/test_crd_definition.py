"""Names, scope, subresources, printer columns and CEL rules of the generated CRDs."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.unit.api.crd_docs import CRDS_BY_KIND, nodes, root_schema, version

NAMES = [
    # kind, plural, short name, scope
    ("GPUPool", "gpupools", "gp", "Cluster"),
    ("TrainingJob", "trainingjobs", "tj", "Namespaced"),
    ("InferenceService", "inferenceservices", "isvc", "Namespaced"),
]


@pytest.mark.parametrize(("kind", "plural", "short_name", "scope"), NAMES)
def test_names_scope_and_category(kind: str, plural: str, short_name: str, scope: str) -> None:
    spec = CRDS_BY_KIND[kind]["spec"]
    assert CRDS_BY_KIND[kind]["metadata"]["name"] == f"{plural}.gpupool.io"
    assert spec["group"] == "gpupool.io"
    assert spec["scope"] == scope
    assert spec["names"] == {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": kind.lower(),
        "shortNames": [short_name],
        "categories": ["gpupool"],
    }
    assert version(kind)["name"] == "v1alpha1"
    assert version(kind)["served"] is True
    assert version(kind)["storage"] is True


def test_status_subresource_everywhere_and_scale_on_inference_services() -> None:
    assert version("GPUPool")["subresources"] == {"status": {}}
    assert version("TrainingJob")["subresources"] == {"status": {}}
    assert version("InferenceService")["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }


def test_scale_paths_exist_in_the_schema() -> None:
    properties = root_schema("InferenceService")["properties"]
    assert properties["spec"]["properties"]["replicas"]["type"] == "integer"
    assert properties["status"]["properties"]["replicas"]["type"] == "integer"
    assert properties["status"]["properties"]["selector"]["type"] == "string"


COLUMNS = {
    "GPUPool": ["NODES", "GPUS", "ALLOCATED", "HEALTHY", "PRICE", "AGE"],
    "TrainingJob": ["POOL", "GPUS", "PRIORITY", "PHASE", "PRICE", "AGE"],
    "InferenceService": ["POOL", "READY", "REPLICAS", "PRICE", "URL", "AGE"],
}


@pytest.mark.parametrize("kind", COLUMNS)
def test_default_printer_columns(kind: str) -> None:
    columns = version(kind)["additionalPrinterColumns"]
    assert [column["name"] for column in columns if "priority" not in column] == COLUMNS[kind]
    assert all(column["priority"] == 1 for column in columns if "priority" in column)


def _schema_at(kind: str, json_path: str) -> dict[str, Any] | None:
    """The schema node a printer column's JSONPath points at, if any."""
    wanted = json_path.replace(".metadata.creationTimestamp", "")
    if not wanted:
        return {"type": "string", "format": "date-time"}
    return dict(nodes(kind)).get(wanted)


@pytest.mark.parametrize("kind", COLUMNS)
def test_printer_columns_point_at_fields_of_their_type(kind: str) -> None:
    for column in version(kind)["additionalPrinterColumns"]:
        node = _schema_at(kind, column["jsonPath"])
        assert node is not None, f"{column['name']}: no field at {column['jsonPath']}"
        expected = {"date": "string", "integer": "integer", "number": "number"}.get(
            column["type"], column["type"]
        )
        assert node["type"] == expected, column["name"]


# kind, schema path, CEL message: the cross-field rules the API server enforces
CEL_RULES = [
    ("GPUPool", ".spec.tenants[]", "guaranteedGPUs must not exceed maxGPUs"),
    ("GPUPool", ".spec.nodeSelector.matchExpressions[]", "values must be non-empty for In"),
    ("TrainingJob", ".spec", "elastic.minReplicas must not exceed replicas"),
    ("TrainingJob", ".spec.torch", "nprocPerNode must be auto or a positive number"),
    ("InferenceService", ".spec", "minReplicas must not exceed replicas"),
    ("InferenceService", ".spec", "replicas must not exceed maxReplicas"),
    (
        "InferenceService",
        ".spec",
        "a fractional gpusPerReplica (a shared GPU) requires gpuMemoryMiB",
    ),
    ("InferenceService", ".spec", "gpusPerReplica of 1 or more must be a whole number"),
    ("InferenceService", ".spec", "autoscaling.scaleToZeroAfterSeconds requires minReplicas 0"),
    ("InferenceService", ".spec.autoscaling", "a gpuUtilization target is a percentage"),
]


def _rules(kind: str) -> list[tuple[str, dict[str, str]]]:
    return [
        (path, rule)
        for path, node in nodes(kind)
        for rule in node.get("x-kubernetes-validations", [])
    ]


@pytest.mark.parametrize(("kind", "path", "message"), CEL_RULES)
def test_cel_rule_is_present(kind: str, path: str, message: str) -> None:
    assert any(
        rule_path == path and rule["message"].startswith(message)
        for rule_path, rule in _rules(kind)
    ), f"no rule {message!r} at {kind}{path}"


def test_every_cel_rule_is_in_the_table() -> None:
    untested = [
        (kind, path, rule["message"])
        for kind in CRDS_BY_KIND
        for path, rule in _rules(kind)
        if not any(
            (kind, path) == (table_kind, table_path) and rule["message"].startswith(message)
            for table_kind, table_path, message in CEL_RULES
        )
    ]
    assert untested == []


_SELF_PATH = re.compile(r"\bself((?:\.[A-Za-z_][A-Za-z0-9_]*)+)(\()?")


def _self_fields(rule: str) -> list[str]:
    """Field paths a rule reads from ``self``: ``.elastic.minReplicas`` (calls cut off)."""
    fields = []
    for match in _SELF_PATH.finditer(rule):
        path = match.group(1)
        if match.group(2):  # self.tenants.all(...): the last segment is a macro
            path = path.rsplit(".", 1)[0]
        if path:
            fields.append(path)
    return fields


@pytest.mark.parametrize("kind", list(CRDS_BY_KIND))
def test_cel_rules_and_field_paths_name_fields_that_exist(kind: str) -> None:
    schema_paths = {path for path, _ in nodes(kind)}
    for path, rule in _rules(kind):
        referenced = _self_fields(rule["rule"])
        if "fieldPath" in rule:
            referenced.append(rule["fieldPath"])
        assert referenced, rule
        for field in referenced:
            assert f"{path}{field}" in schema_paths, f"{rule['rule']!r} names {field}"


@pytest.mark.parametrize("kind", list(CRDS_BY_KIND))
def test_cel_rules_guard_fields_that_may_be_absent_with_has(kind: str) -> None:
    """A rule reading an absent field fails ("no such key") instead of saying what is wrong.

    A field may be absent unless it is required, or it has a default and the object
    holding it has none: the API server validates an object's own default (``{}``)
    against its rules without filling in the defaults of its fields.
    """
    all_nodes = dict(nodes(kind))
    for path, rule in _rules(kind):
        node = all_nodes[path]
        for field_path in _self_fields(rule["rule"]):
            field = field_path.split(".")[1]
            always_there = field in node.get("required", []) or (
                "default" in node["properties"][field] and "default" not in node
            )
            if not always_there:
                assert f"has(self.{field})" in rule["rule"], f"{rule['rule']!r}: {field}"


def test_tenants_are_a_list_map_keyed_by_namespace() -> None:
    tenants = dict(nodes("GPUPool"))[".spec.tenants"]
    assert tenants["x-kubernetes-list-type"] == "map"
    assert tenants["x-kubernetes-list-map-keys"] == ["namespace"]
    assert "namespace" in tenants["items"]["required"]
