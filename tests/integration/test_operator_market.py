"""The auction on the real control plane: an outbid borrower is preempted only after
``minRuntimeSeconds``; the winner pays no more than its bid."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import operator_env, scenario


def since(status: dict[str, Any], type_: str) -> datetime:
    found = next(c for c in status["conditions"] if c["type"] == type_)
    return datetime.fromisoformat(found["lastTransitionTime"].replace("Z", "+00:00"))


def test_outbid_borrower_is_preempted_only_after_its_min_runtime(
    kubectl: Kubectl, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    budget = {"perHour": 1000, "max": 1000}
    tenants = [
        {"namespace": "xray", "guaranteedGPUs": 0, "credits": budget},
        {"namespace": "yankee", "guaranteedGPUs": 0, "credits": budget},
    ]
    min_runtime = 12
    with scenario(
        kubectl,
        operator_env(cluster_env),
        tmp_path,
        nodes=1,
        tenants=tenants,
        min_runtime_s=min_runtime,
        grace_s=2,
    ) as sc:
        # The victim takes a few seconds to checkpoint and go (kwok's delete stage), so
        # its Preempting phase outlasts a poll on a loaded machine.
        sc.submit("cheap", tenant="xray", gpus=8, bid=1.0, terminate_after="4s")
        first = sc.wait_phase("cheap", "xray", "Running", timeout=60)
        assert first["pricePerGPUHour"] <= 1.0

        sc.submit("rich", tenant="yankee", gpus=8, bid=5.0, complete_after="15s")
        preempting = sc.wait_phase("cheap", "xray", "Preempting", timeout=60)
        placed_at = since(preempting, "Scheduled")
        preempted_at = since(preempting, "Preempting")
        ran = (preempted_at - placed_at).total_seconds()
        assert ran >= min_runtime - 1, f"preempted after {ran:.0f}s < {min_runtime}s"
        reason = next(c for c in preempting["conditions"] if c["type"] == "Preempting")["reason"]
        assert reason == "Outbid"

        rich = sc.wait_phase("rich", "yankee", "Running", timeout=60)
        assert rich["pricePerGPUHour"] <= 5.0
        # The outbid job waits with the auction's reason, then wins back the GPUs.
        queued = sc.wait_phase("cheap", "xray", "Queued", timeout=30)
        assert queued["message"]
        sc.wait_phase("rich", "yankee", "Succeeded", timeout=60)
        sc.wait_phase("cheap", "xray", "Running", timeout=60)
