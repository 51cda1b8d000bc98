"""Bad input: the API server rejects what its schema sees; the operator explains the rest
(unknown pool, namespace that is not a tenant) with a condition and an Event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    holds_for,
    job_manifest,
    operator_env,
    scenario,
    wait_for,
)


def admitted(status: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == "Admitted"), None)


def test_invalid_objects_are_rejected_and_unplaceable_ones_are_explained(
    kubectl: Kubectl, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    tenants = [{"namespace": "legit", "guaranteedGPUs": 8}]
    with scenario(kubectl, operator_env(cluster_env), tmp_path, nodes=1, tenants=tenants) as sc:
        legit = sc.ns("legit")
        bad = job_manifest("negative", namespace=legit, pool=sc.pool, gpus=8)
        bad["spec"]["gpusPerReplica"] = -1
        rejected = sc.apply(bad, check=False)
        assert rejected.returncode != 0 and "gpusPerReplica" in rejected.stderr

        # A namespace that is not a tenant of the pool.
        stranger = f"stranger-{sc.run_id}"
        sc.extra_namespaces.append(stranger)
        kubectl("create", "namespace", stranger)
        sc.apply(job_manifest("sneaky", namespace=stranger, pool=sc.pool, gpus=1))
        # A pool that does not exist.
        sc.apply(job_manifest("lost", namespace=legit, pool=f"nowhere-{sc.run_id}", gpus=1))

        def condition_of(name: str, namespace: str) -> dict[str, Any] | None:
            found = sc.get("trainingjob", name, namespace)
            status = (found or {}).get("status") or {}
            cond = admitted(status)
            return cond if cond is not None and cond["status"] == "False" else None

        not_tenant = wait_for(
            lambda: condition_of("sneaky", stranger), timeout=30, expected="NotATenant"
        )
        assert not_tenant["reason"] == "NotATenant"
        assert f"namespace {stranger} is not a tenant" in not_tenant["message"]
        unknown = wait_for(lambda: condition_of("lost", legit), timeout=30, expected="UnknownPool")
        assert unknown["reason"] == "UnknownPool"

        for name, namespace, reason in (
            ("sneaky", stranger, "NotATenant"),
            ("lost", legit, "UnknownPool"),
        ):
            events = wait_for(
                lambda name=name, namespace=namespace: sc.events(namespace, name) or None,
                timeout=15,
                expected=f"an Event on {name}",
            )
            assert [event["reason"] for event in events] == [reason]
            assert events[0]["type"] == "Warning"
        assert sc.pods(stranger) == []

        # No retry storm: the conditions are written once, not every cycle.
        def version(name: str, namespace: str) -> str:
            body = json.loads(kubectl("get", "tj", name, "-n", namespace, "-o", "json").stdout)
            return str(body["metadata"]["resourceVersion"])

        before = {
            (name, ns): version(name, ns) for name, ns in (("sneaky", stranger), ("lost", legit))
        }
        holds_for(
            lambda: all(version(name, ns) == rv for (name, ns), rv in before.items()),
            duration=4,  # several pool cycles (intervalSeconds: 1) and housekeeping passes
            expected="no further writes to the rejected jobs",
        )
