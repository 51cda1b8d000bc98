"""Fixtures for tests against the real local control plane (e2e/cluster.sh).

The control plane is started once per test session when it is not already up
(`make test` brings it up and down itself; a developer can keep one running with
`make cluster-up`). Every test in this directory is marked ``cluster``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "e2e" / "cluster.sh"

Kubectl = Callable[..., "subprocess.CompletedProcess[str]"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)


def _exports() -> dict[str, str]:
    out = subprocess.run([str(CLUSTER), "env"], capture_output=True, text=True, check=True).stdout
    env: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip('"').replace("$PATH", os.environ.get("PATH", ""))
    return env


@pytest.fixture(scope="session")
def cluster_env() -> Iterator[dict[str, str]]:
    """Environment (KUBECONFIG, PATH with kubectl/helm/kwok first) for the local cluster."""
    status = subprocess.run([str(CLUSTER), "status"], capture_output=True, text=True, check=False)
    if status.returncode != 0:
        print("local control plane not running: starting it (e2e/cluster.sh up)", file=sys.stderr)
        subprocess.run([str(CLUSTER), "up"], check=True)
    env = {**os.environ, **_exports()}
    yield env


@pytest.fixture(scope="session")
def kubectl(cluster_env: dict[str, str]) -> Kubectl:
    """Run the built kubectl against the local cluster."""

    def run(
        *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["kubectl", *args],
            input=input,
            capture_output=True,
            text=True,
            env=cluster_env,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    return run
