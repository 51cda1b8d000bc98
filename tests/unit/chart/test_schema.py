"""values.schema.json rejects bad values before anything renders, with a message naming them."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.unit.chart.helm import CHART, template

# (values, the path helm names, a fragment of its message)
BAD_VALUES: list[tuple[dict[str, Any], str, str]] = [
    ({"bogus": 1}, "''", "additional properties 'bogus' not allowed"),
    ({"operator": {"replicas": 6}}, "'/operator/replicas'", "maximum: got 6, want 5"),
    ({"operator": {"replicas": -1}}, "'/operator/replicas'", "minimum: got -1, want 0"),
    ({"operator": {"replicas": "two"}}, "'/operator/replicas'", "got string, want integer"),
    ({"operator": {"metrics": {"port": 70000}}}, "'/operator/metrics/port'", "maximum"),
    ({"operator": {"metrics": {"port": 0}}}, "'/operator/metrics/port'", "minimum"),
    ({"operator": {"logFormat": "xml"}}, "'/operator/logFormat'", "value must be one of"),
    ({"operator": {"verbosity": 3}}, "'/operator/verbosity'", "maximum: got 3, want 2"),
    ({"operator": {"leaderElection": {"leaseDurationSeconds": 1}}},
     "'/operator/leaderElection/leaseDurationSeconds'", "minimum: got 1, want 5"),
    ({"operator": {"pools": ["a100", "a100"]}}, "'/operator/pools'", "are equal"),
    ({"operator": {"watchNamespaces": ["Team_A"]}}, "'/operator/watchNamespaces/0'",
     "does not match pattern"),
    ({"operator": {"telemetry": {"require": "yes"}}}, "'/operator/telemetry/require'",
     "got string, want boolean"),
    ({"operator": {"resyncSeconds": 1}}, "'/operator/resyncSeconds'", "minimum"),
    ({"operator": {"health": {"port": 0}}}, "'/operator/health/port'", "minimum"),
    ({"operator": {"leaderElection": {"leaseName": "Not_A_Name"}}},
     "'/operator/leaderElection/leaseName'", ""),
    ({"operator": {"extraArgs": "--foo"}}, "'/operator/extraArgs'", "got string, want array"),
    ({"operator": {"resources": {"limits": {"memory": "lots"}}}},
     "'/operator/resources/limits/memory'", ""),
    ({"operator": {"tolerations": [{"key": "k", "operator": "Maybe"}]}},
     "'/operator/tolerations/0/operator'", "value must be one of"),
    ({"operator": {"nodeSelector": {"zone": 1}}}, "'/operator/nodeSelector/zone'",
     "got number, want string"),
    ({"image": {"pullPolicy": "Sometimes"}}, "'/image/pullPolicy'", "value must be one of"),
    ({"image": {"repository": ""}}, "'/image/repository'", "minLength"),
    ({"image": {"tag": "has space"}}, "'/image/tag'", "does not match pattern"),
    ({"image": {"digest": "md5:abc"}}, "'/image/digest'", "does not match pattern"),
    ({"imagePullSecrets": ["regcred"]}, "'/imagePullSecrets/0'", "got string, want object"),
    ({"agent": {"enabled": "true"}}, "'/agent/enabled'", "got string, want boolean"),
    ({"agent": {"intervalSeconds": 0}}, "'/agent/intervalSeconds'", "exclusiveMinimum"),
    ({"agent": {"health": {"evictOnXid": [48, 48]}}}, "'/agent/health/evictOnXid'",
     "items at 0 and 1 are equal"),
    ({"agent": {"health": {"evictOnXid": ["79"]}}}, "'/agent/health/evictOnXid/0'",
     "got string, want integer"),
    ({"agent": {"health": {"maxTemperatureC": 500}}}, "'/agent/health/maxTemperatureC'",
     "maximum"),
    ({"agent": {"maxUnavailable": 0}}, "'/agent/maxUnavailable'", ""),
    ({"agent": {"maxUnavailable": "150%"}}, "'/agent/maxUnavailable'", ""),
    ({"agent": {"runtimeClassName": "NVIDIA"}}, "'/agent/runtimeClassName'", ""),
    ({"agent": {"nodeSelector": {"gpu": True}}}, "'/agent/nodeSelector/gpu'",
     "got boolean, want string"),
    ({"rbac": {"create": "no"}}, "'/rbac/create'", "got string, want boolean"),
    ({"serviceMonitor": {"interval": 30}}, "'/serviceMonitor/interval'",
     "got number, want string"),
    ({"serviceMonitor": {"interval": "30 seconds"}}, "'/serviceMonitor/interval'",
     "does not match pattern"),
    ({"dashboards": {"label": ""}}, "'/dashboards/label'", "minLength"),
    ({"dashboards": {"enabled": 1}}, "'/dashboards/enabled'", "got number, want boolean"),
    ({"samplePool": {"enabled": True, "spec": {"tenants": []}}}, "'/samplePool/spec'",
     "missing property 'nodeSelector'"),
    ({"samplePool": {"name": "Bad Name"}}, "'/samplePool/name'", "does not match pattern"),
    ({"fullnameOverride": "UPPER"}, "'/fullnameOverride'", "does not match pattern"),
]  # fmt: skip


def case_id(case: tuple[dict[str, Any], str, str]) -> str:
    return json.dumps(case[0], separators=(",", ":"))


@pytest.mark.parametrize(("values", "path", "message"), BAD_VALUES, ids=map(case_id, BAD_VALUES))
def test_schema_rejects_bad_value(values: dict[str, Any], path: str, message: str) -> None:
    result = template(values, check=False)
    assert result.returncode != 0, f"accepted {values}"
    assert "don't meet the specifications of the schema" in result.stderr
    assert f"at {path}" in result.stderr, result.stderr
    assert message in result.stderr, result.stderr


def test_every_value_in_values_yaml_is_described_by_the_schema() -> None:
    """values.yaml and the schema list the same keys (the schema forbids unknown ones)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(node: Any, spec: dict[str, Any], path: str) -> None:
        if "$ref" in spec:
            name = spec["$ref"].rsplit("/", 1)[-1]
            spec = schema["definitions"][name]
        if not isinstance(node, dict) or "properties" not in spec:
            return
        for key, child in node.items():
            assert key in spec["properties"], f"{path}{key} is not in values.schema.json"
            walk(child, spec["properties"][key], f"{path}{key}.")

    walk(values, schema, "")
    documented = set(schema["properties"]) - {"global"}
    assert documented == set(values), "schema and values.yaml list different top-level keys"


def test_every_value_in_values_yaml_has_a_comment() -> None:
    """Each leaf value has a ``# --`` comment above it or above one of its parent keys."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    documented_parents: list[tuple[int, bool]] = []  # (indent, has a "# --" comment)
    undocumented = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        while documented_parents and documented_parents[-1][0] >= indent:
            documented_parents.pop()
        above = index - 1
        while above >= 0 and lines[above].strip().startswith("#") and "# --" not in lines[above]:
            above -= 1
        commented = above >= 0 and lines[above].strip().startswith("# --")
        covered = commented or any(flag for _, flag in documented_parents)
        if stripped.endswith(":"):  # a map or list follows
            documented_parents.append((indent, covered))
        elif not covered:
            undocumented.append(f"{index + 1}: {stripped}")
    assert undocumented == [], "values.yaml keys without a comment:\n" + "\n".join(undocumented)
