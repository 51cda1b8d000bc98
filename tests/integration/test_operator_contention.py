"""Three tenants contend: guarantees hold, a high job preempts a low one gracefully, the
victim resumes later with its restart count raised."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import operator_env, scenario, wait_for, worker_env


def condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), None)


def test_high_preempts_low_gracefully_guarantees_hold_and_the_victim_resumes(
    kubectl: Kubectl, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    tenants = [
        {"namespace": "alpha", "guaranteedGPUs": 8},
        {"namespace": "bravo", "guaranteedGPUs": 4, "credits": {"perHour": 100, "max": 100}},
        {"namespace": "charlie", "guaranteedGPUs": 4, "credits": {"perHour": 100, "max": 100}},
    ]
    with scenario(
        kubectl, operator_env(cluster_env), tmp_path, nodes=2, tenants=tenants, grace_s=6
    ) as sc:
        # charlie borrows beyond its guarantee with a low-tier job (kwok keeps a deleted
        # pod terminating for 3s: the graceful window is visible).
        sc.submit("crunch", tenant="charlie", gpus=8, priority="low", terminate_after="3s")
        sc.wait_phase("crunch", "charlie", "Running", timeout=60)
        # alpha runs inside its guarantee.
        sc.submit("steady", tenant="alpha", gpus=8, priority="normal")
        sc.wait_phase("steady", "alpha", "Running", timeout=60)

        # bravo's high job needs 8 GPUs: only charlie's low job can make room.
        sc.submit("urgent", tenant="bravo", gpus=8, priority="high", complete_after="15s")

        preempting = sc.wait_phase("crunch", "charlie", "Preempting", timeout=60)
        assert preempting["preemptions"] == 1
        cond = condition(preempting, "Preempting")
        assert cond is not None and cond["status"] == "True" and cond["reason"] == "HigherTier"
        victim = sc.pods(sc.ns("charlie"), job="crunch")
        assert victim and victim[0]["metadata"].get("deletionTimestamp"), "deleted gracefully"
        assert victim[0]["metadata"]["deletionGracePeriodSeconds"] > 0

        sc.wait_phase("urgent", "bravo", "Running", timeout=60)
        requeued = sc.wait_phase("crunch", "charlie", "Queued", timeout=30)
        assert "preempt" in requeued["message"] or "needs" in requeued["message"]

        # alpha, inside its guarantee, was never touched.
        steady = sc.status("steady", "alpha")
        assert steady["phase"] == "Running" and steady.get("preemptions", 0) == 0

        # When the high job finishes, the victim resumes from its checkpoint.
        sc.wait_phase("urgent", "bravo", "Succeeded", timeout=60)
        resumed = sc.wait_phase("crunch", "charlie", "Running", timeout=60)
        assert resumed["preemptions"] == 1
        pods = wait_for(
            lambda: (
                [
                    pod
                    for pod in sc.pods(sc.ns("charlie"), job="crunch")
                    if not pod["metadata"].get("deletionTimestamp")
                ]
                or None
            ),
            timeout=30,
            expected="the resumed worker pod",
        )
        env = worker_env(pods[0])
        assert env["GPUPOOL_RESTART_COUNT"] == "1"
        assert env["GPUPOOL_CHECKPOINT_DIR"] == "/ckpt"
        assert pods[0]["metadata"]["name"] == "crunch-1-w0"

        reasons = [event["reason"] for event in sc.events(sc.ns("charlie"), "crunch")]
        assert "Preempted" in reasons and "Requeued" in reasons, reasons

        pool = sc.get("gpupools", sc.pool)
        assert pool is not None
        status = pool["status"]
        assert status["gpus"]["total"] == 16
        assert {t["namespace"] for t in status["tenants"]} == set(sc.namespaces)
