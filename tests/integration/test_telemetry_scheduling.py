"""The operator scheduling on live telemetry from simulated node agents (real control plane).

Three kwok nodes of 8 GPUs, one simulated ``gpupool-agent`` per node, the operator
with ``--require-telemetry``, all as subprocesses:

(a) an 8-GPU TrainingJob runs; XID 79 is injected on GPU 3 under it through the
    agent's fault file -> the gang is evicted at once (a restart, not a preemption),
    runs again on a healthy node within 30 s from its checkpoint, an Event names GPU,
    node and XID, and the GPUPool counts the GPU out of its healthy capacity;
(b) the agent of the one free node is silenced (SIGSTOP) -> once its telemetry is
    past the deadline, new work is not placed there: an 8-GPU job waits with the stale
    node named in its message and in the pool's Degraded condition, a 4-GPU job goes
    to the other node's healthy GPUs; the agent resumes -> the waiting job lands there.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from tests.integration.agent_process import NodeAgents
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    Scenario,
    holds_for,
    operator_env,
    wait_for,
    worker_env,
)

STALE_S = 6
"""``--telemetry-stale-seconds`` (agents heartbeat every <= 2 s)."""
TENANT = "tele"
XID_REASON = "XID 79 (GPU has fallen off the bus)"


def pool_status(sc: Scenario) -> dict[str, Any]:
    pool = sc.get("gpupools", sc.pool) or {}
    status: dict[str, Any] = pool.get("status") or {}
    return status


def degraded(sc: Scenario) -> dict[str, Any]:
    for condition in pool_status(sc).get("conditions") or []:
        if condition["type"] == "Degraded":
            found: dict[str, Any] = condition
            return found
    return {}


def nodes_of(status: dict[str, Any]) -> set[str]:
    return {entry["node"] for entry in status.get("placement") or []}


def pods_on(sc: Scenario, node: str) -> list[str]:
    return [
        pod["metadata"]["name"]
        for pod in sc.pods(sc.ns(TENANT))
        if pod["spec"].get("nodeName") == node and not pod["metadata"].get("deletionTimestamp")
    ]


def test_xid_79_restarts_the_gang_elsewhere_and_a_silent_agent_cordons_its_node(
    kubectl: Kubectl, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    env = operator_env(cluster_env)
    sc = Scenario(
        kubectl, env, tmp_path, nodes=3, tenants=[{"namespace": TENANT, "guaranteedGPUs": 24}]
    )
    agents: NodeAgents | None = None
    try:
        agents = NodeAgents(sc.node_names, env=env, workdir=tmp_path)
        sc.start_operator("--require-telemetry", "--telemetry-stale-seconds", str(STALE_S))
        wait_for(
            lambda: pool_status(sc).get("gpus", {}).get("healthy") == 24,
            timeout=60,
            expected="24 healthy GPUs reported by the agents",
        )
        failed, moved_to = xid_phase(sc, agents)
        [free] = [node for node in sc.node_names if node not in (failed, moved_to)]
        stale_phase(sc, agents, silent=free, partly_failed=failed)
    except BaseException:
        print(f"--- operator log ({sc.pool}) ---\n{sc.log_tail()}", file=sys.stderr)
        if agents is not None:
            for node in sc.node_names:
                print(f"--- agent {node} ---\n{agents.log_tail(node)}", file=sys.stderr)
        raise
    finally:
        if agents is not None:
            agents.close()
        sc.close()


def xid_phase(sc: Scenario, agents: NodeAgents) -> tuple[str, str]:
    """(a): the node whose GPU 3 failed, and the node the gang moved to."""
    sc.submit("big", tenant=TENANT, gpus=8, complete_after="600s")
    running = sc.wait_phase("big", TENANT, "Running", timeout=60)
    [node] = nodes_of(running)
    assert running.get("restarts", 0) == 0

    injected = time.monotonic()
    agents.inject(node, 3, xid=79)

    def restarted() -> dict[str, Any] | None:
        status = sc.status("big", TENANT)
        return status if status.get("restarts") == 1 else None

    def running_again() -> dict[str, Any] | None:
        status = sc.status("big", TENANT)
        back = status.get("phase") == "Running" and status.get("restarts") == 1
        return status if back and nodes_of(status) else None

    evicted = wait_for(
        restarted,
        timeout=30,
        expected="the gang on the failed GPU to be evicted",
    )
    to_eviction = time.monotonic() - injected
    again = wait_for(
        running_again,
        timeout=30 - (time.monotonic() - injected),
        expected="the gang to run again on healthy GPUs",
    )
    to_running = time.monotonic() - injected
    print(f"\nfault injected -> gang evicted: {to_eviction:.2f}s")
    print(f"fault injected -> gang Running again on healthy GPUs: {to_running:.2f}s")
    assert to_running < 30

    [moved_to] = nodes_of(again)
    assert moved_to != node, "GPU 3 is gone: 7 GPUs left there, the gang needs 8"
    assert (again.get("preemptions") or 0) == 0, "a GPU failure is a restart, not a preemption"
    assert evicted.get("preemptions", 0) == 0

    def relaunched() -> dict[str, Any] | None:
        pods = {p["metadata"]["name"]: p for p in sc.pods(sc.ns(TENANT), job="big")}
        return pods.get("big-1-w0")  # attempt 1 of the gang (attempt 0 may still be going)

    pod = wait_for(relaunched, timeout=10, expected="the gang's attempt-1 pod")
    assert pod["spec"]["nodeName"] == moved_to
    resumed = worker_env(pod)
    assert resumed["GPUPOOL_RESTART_COUNT"] == "1"
    assert resumed["GPUPOOL_CHECKPOINT_DIR"] == "/ckpt", "resumes from the same checkpoints"

    explained = f"GPU 3 on node {node} unhealthy: {XID_REASON}"

    def explaining_event() -> dict[str, Any] | None:
        events = sc.events(sc.ns(TENANT), "big")
        return next((e for e in events if e["reason"] == "UnhealthyGPU"), None)

    event = wait_for(explaining_event, timeout=10, expected="an Event explaining the eviction")
    assert event["type"] == "Warning"
    assert event["message"] == (
        f"{explained}; restarting the whole gang from its last checkpoint on healthy GPUs "
        "(restart 1)"
    )

    def counted_out() -> dict[str, Any] | None:
        status = pool_status(sc)
        return status if status.get("gpus", {}).get("healthy") == 23 else None

    status = wait_for(
        counted_out,
        timeout=10,
        expected="the pool to count the failed GPU out",
    )
    assert status["gpus"]["total"] == 24
    condition = degraded(sc)
    assert (condition["status"], condition["reason"]) == ("True", "GPUsUnhealthy")
    assert condition["message"] == explained
    return node, moved_to


def stale_phase(sc: Scenario, agents: NodeAgents, *, silent: str, partly_failed: str) -> None:
    """(b): ``silent``'s agent stops reporting; nothing new lands there until it is back."""
    paused = time.monotonic()
    agents.pause(silent)
    stale = f"node {silent}: telemetry stale: no report from the gpupool node agent since"

    def stale_shown() -> dict[str, Any] | None:
        found = degraded(sc)
        return found if stale in found.get("message", "") else None

    condition = wait_for(
        stale_shown,
        timeout=STALE_S + 15,
        expected=f"{silent}'s telemetry to go stale (is another agent publishing for it?)",
    )
    print(f"agent silenced -> pool shows the node stale: {time.monotonic() - paused:.2f}s")
    assert condition["reason"] == "NodesAndGPUsUnavailable"
    assert f"GPU 3 on node {partly_failed} unhealthy" in condition["message"]
    assert pool_status(sc)["gpus"]["healthy"] == 15, "7 + 8: the silent node's 8 are out"

    sc.submit("wide", tenant=TENANT, gpus=8, complete_after="600s")
    sc.submit("narrow", tenant=TENANT, gpus=4, complete_after="600s")
    narrow = sc.wait_phase("narrow", TENANT, "Running", timeout=30)
    assert nodes_of(narrow) == {partly_failed}, "the only healthy, reporting GPUs left"
    placed = {entry["node"]: entry["gpus"] for entry in narrow["placement"]}
    assert 3 not in placed[partly_failed]

    def told_why() -> dict[str, Any] | None:
        status = sc.status("wide", TENANT)
        return status if stale in status.get("message", "") else None

    waiting = wait_for(
        told_why,
        timeout=15,
        expected="the waiting job's message to name the stale node",
    )
    assert waiting["phase"] == "Queued"
    assert "out of the pool: " in waiting["message"]
    holds_for(
        lambda: not pods_on(sc, silent) and sc.status("wide", TENANT).get("phase") == "Queued",
        duration=2,
        expected=f"no new work on {silent} while its agent is silent",
    )

    resumed = time.monotonic()
    agents.resume(silent)
    wide = sc.wait_phase("wide", TENANT, "Running", timeout=30)
    print(f"agent resumed -> waiting job Running there: {time.monotonic() - resumed:.2f}s")
    assert nodes_of(wide) == {silent}
    assert degraded(sc)["reason"] == "GPUsUnhealthy"
