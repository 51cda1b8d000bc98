"""The generated schemas are structural and bounded, as the API server requires.

Structural: no $ref/anyOf/allOf/oneOf/not, every node typed. Bounded: every
string and list under spec has a size limit, so CEL rules pass the API server's
cost estimator and objects stay small.
"""

from __future__ import annotations

import pytest

from gpupool.api import RESOURCES
from tests.unit.api.crd_docs import nodes, root_schema

KINDS = [resource.kind for resource in RESOURCES]
FORBIDDEN = ("$ref", "$defs", "anyOf", "allOf", "oneOf", "not", "title", "const", "uniqueItems")
PRESERVE = "x-kubernetes-preserve-unknown-fields"


@pytest.mark.parametrize("kind", KINDS)
def test_no_node_uses_a_non_structural_keyword(kind: str) -> None:
    offenders = [(path, key) for path, node in nodes(kind) for key in FORBIDDEN if key in node]
    assert offenders == []


@pytest.mark.parametrize("kind", KINDS)
def test_every_node_has_a_type(kind: str) -> None:
    untyped = [
        path
        for path, node in nodes(kind)
        if "type" not in node and not node.get("x-kubernetes-int-or-string")
    ]
    assert untyped == []


@pytest.mark.parametrize("kind", KINDS)
def test_no_default_is_null_and_no_object_forbids_extra_fields(kind: str) -> None:
    assert [
        path for path, node in nodes(kind) if "default" in node and node["default"] is None
    ] == []
    assert [path for path, node in nodes(kind) if node.get("additionalProperties") is False] == []


@pytest.mark.parametrize("kind", KINDS)
def test_exclusive_bounds_are_openapi_v3_booleans(kind: str) -> None:
    for path, node in nodes(kind):
        for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if key in node:
                assert node[key] is True, path
                assert bound in node, path


@pytest.mark.parametrize("kind", KINDS)
def test_every_spec_and_status_field_is_described(kind: str) -> None:
    undescribed = [
        path
        for path, node in nodes(kind)
        if path.startswith((".spec", ".status"))
        and not path.endswith(("[]", "{}"))
        and not node.get("description")
    ]
    assert undescribed == []


@pytest.mark.parametrize("kind", KINDS)
def test_spec_strings_lists_and_maps_are_bounded(kind: str) -> None:
    unbounded = []
    for path, node in nodes(kind):
        if not path.startswith(".spec"):
            continue
        kind_of_node = node.get("type")
        if kind_of_node == "string" and "maxLength" not in node and "enum" not in node:
            unbounded.append(path)
        if kind_of_node == "array" and "maxItems" not in node:
            unbounded.append(path)
        if isinstance(node.get("additionalProperties"), dict) and "maxProperties" not in node:
            unbounded.append(path)
    assert unbounded == []


@pytest.mark.parametrize("kind", KINDS)
def test_only_the_pod_template_is_free_form(kind: str) -> None:
    free_form = [path for path, node in nodes(kind) if node.get(PRESERVE)]
    expected = [] if kind == "GPUPool" else [".spec.template"]
    assert free_form == expected
    if expected:
        (template,) = [node for path, node in nodes(kind) if path == ".spec.template"]
        assert template["type"] == "object"
        assert "properties" not in template


@pytest.mark.parametrize("kind", KINDS)
def test_the_root_is_a_kubernetes_object_requiring_spec(kind: str) -> None:
    root = root_schema(kind)
    assert root["type"] == "object"
    assert list(root["properties"]) == ["apiVersion", "kind", "metadata", "spec", "status"]
    assert root["properties"]["metadata"] == {"type": "object"}
    assert root["required"] == ["spec"]
