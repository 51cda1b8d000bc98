"""Runs the built ``helm`` on the chart and parses what it renders.

The binary comes from ``e2e/build-tools.sh`` (``$GPUPOOL_CACHE/bin/helm``, default
``~/.cache/gpupool/bin``), else from ``$PATH``; tests that need it skip with the
reason when neither has one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "gpupool"
CACHE_BIN = Path(os.environ.get("GPUPOOL_CACHE", Path.home() / ".cache" / "gpupool")) / "bin"
# helm built without version ldflags assumes Kubernetes v1.20 for `template`; the chart
# needs >= 1.28, so offline renders name the version the local control plane runs.
KUBE_VERSION = "1.34.4"
SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"

Manifest = dict[str, Any]


def helm_binary() -> str | None:
    built = CACHE_BIN / "helm"
    if built.exists():
        return str(built)
    return shutil.which("helm")


def require_helm() -> str:
    binary = helm_binary()
    if binary is None:
        pytest.skip(f"helm not built: no {CACHE_BIN / 'helm'} and none on PATH (make tools)")
    return binary


def run_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [require_helm(), *args], capture_output=True, text=True, check=False, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def values_args(values: Mapping[str, Any] | None, directory: Path) -> list[str]:
    if not values:
        return []
    path = directory / "values.json"
    path.write_text(json.dumps(values))  # JSON is YAML
    return ["-f", str(path)]


def template(
    values: Mapping[str, Any] | None = None,
    *,
    extra: Sequence[str] = (),
    release: str = "gp",
    namespace: str = "gpupool-system",
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as tmp:
        return run_helm(
            "template", release, str(CHART), "--namespace", namespace,
            "--kube-version", KUBE_VERSION, *values_args(values, Path(tmp)), *extra,
            check=check,
        )  # fmt: skip


def render(
    values: Mapping[str, Any] | None = None, *, extra: Sequence[str] = (), **kw: Any
) -> list[Manifest]:
    """The manifests ``helm template`` renders, empty documents left out."""
    out = template(values, extra=extra, **kw).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(manifests: Sequence[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: Sequence[Manifest], kind: str, *, component: str | None = None) -> Manifest:
    found = [
        m
        for m in by_kind(manifests, kind)
        if component is None
        or m["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
    ]
    assert len(found) == 1, f"expected one {kind} ({component}), got {len(found)}"
    return found[0]


def pod_templates(manifests: Sequence[Manifest]) -> list[tuple[str, Manifest]]:
    """(``Kind/name``, pod spec) of every workload."""
    return [
        (f"{m['kind']}/{m['metadata']['name']}", m["spec"]["template"]["spec"])
        for m in manifests
        if m["kind"] in {"Deployment", "DaemonSet", "StatefulSet", "Job"}
    ]
