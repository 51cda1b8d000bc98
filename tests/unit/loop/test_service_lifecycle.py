"""An InferenceService's pods -> its next status and writes (pure)."""

from __future__ import annotations

from typing import Any

from gpupool.loop.actions import BindPod, CreateObject, DeletePod
from gpupool.loop.context import CycleContext
from gpupool.loop.service_lifecycle import service_lifecycle
from gpupool.state.parse import parse_pod, parse_service
from gpupool.state.records import PodRecord
from tests.unit.state.bodies import T0, pod_body, service_body

CTX = CycleContext(
    pool="a100",
    now=T0 + 100,
    grace_period_s=30,
    pool_nodes=frozenset({"n1", "n2"}),
    reporting_instance="op",
)
SCHEDULED = [
    {
        "type": "Scheduled",
        "status": "True",
        "reason": "Placed",
        "message": "",
        "lastTransitionTime": "2025-06-15T15:06:40Z",
    }
]


def placed(replicas: int, slots: list[tuple[int, str]]) -> dict[str, Any]:
    status = {
        "placement": [{"replica": s, "node": n, "gpus": [s]} for s, n in slots],
        "conditions": SCHEDULED,
    }
    return service_body("chat", replicas=replicas, status=status)


def replica(slot: int, node: str, **fields: Any) -> PodRecord:
    record = parse_pod(
        pod_body(
            f"chat-r{slot}",
            owner="chat",
            owner_kind="InferenceService",
            namespace="team-b",
            replica=slot,
            node=node,
            assigned=node,
            gpus=str(slot),
            **fields,
        )
    )
    assert record is not None
    return record


def test_ready_replicas_are_counted_for_the_scale_subresource() -> None:
    change = service_lifecycle(
        parse_service(placed(2, [(0, "n1"), (1, "n2")])),
        [replica(0, "n1"), replica(1, "n2", ready=False)],
        CTX,
    )
    assert change is not None and change.status_patch is not None
    assert change.status_patch["replicas"] == 2
    assert change.status_patch["readyReplicas"] == 1
    assert change.status_patch["selector"] == (
        "gpupool.io/inference-service=chat,gpupool.io/role=inference"
    )
    assert change.writes == ()


def test_scale_down_removes_the_highest_slots_and_trims_the_placement() -> None:
    change = service_lifecycle(
        parse_service(placed(1, [(0, "n1"), (1, "n2")])),
        [replica(0, "n1"), replica(1, "n2")],
        CTX,
    )
    assert change is not None and change.status_patch is not None
    assert change.writes == (
        DeletePod(namespace="team-b", name="chat-r1", uid="pod-chat-r1", grace_period_s=30),
    )
    assert change.status_patch["placement"] == [{"replica": 0, "node": "n1", "gpus": [0]}]


def test_a_crashed_replica_is_removed_and_its_slot_relaunched() -> None:
    change = service_lifecycle(
        parse_service(placed(1, [(0, "n1")])),
        [replica(0, "n1", phase="Failed", exit_code=1)],
        CTX,
    )
    assert change is not None
    assert change.writes[0] == DeletePod(
        namespace="team-b", name="chat-r0", uid="pod-chat-r0", grace_period_s=0
    )
    created = [w for w in change.writes if isinstance(w, CreateObject)]
    assert [w.manifest["kind"] for w in created] == ["Service", "Pod"]
    assert change.writes[-1] == BindPod(namespace="team-b", name="chat-r0", node="n1")


def test_replicas_on_a_node_that_left_are_dropped() -> None:
    change = service_lifecycle(
        parse_service(placed(2, [(0, "n1"), (1, "n9")])),
        [replica(0, "n1"), replica(1, "n9")],
        CTX,
    )
    assert change is not None and change.status_patch is not None
    assert change.status_patch["placement"] == [{"replica": 0, "node": "n1", "gpus": [0]}]
