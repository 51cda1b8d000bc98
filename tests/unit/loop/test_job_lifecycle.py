"""A TrainingJob's pods -> the next status and writes (pure)."""

from __future__ import annotations

from typing import Any

from gpupool.k8s.timestamps import rfc3339
from gpupool.loop.actions import BindPod, Change, CreateObject, DeletePod, DeleteWorkload
from gpupool.loop.context import CycleContext
from gpupool.loop.job_lifecycle import job_lifecycle, run_seconds_patch
from gpupool.state.parse import parse_job, parse_pod
from gpupool.state.records import PodRecord
from gpupool_workloads.termination import termination_message
from tests.unit.state.bodies import T0, job, pod_body

NOW = T0 + 1000
CTX = CycleContext(
    pool="a100",
    now=NOW,
    grace_period_s=120,
    pool_nodes=frozenset({"n1", "n2"}),
    reporting_instance="op",
)
PLACEMENT = [
    {"replica": 0, "node": "n1", "gpus": [0, 1]},
    {"replica": 1, "node": "n2", "gpus": [0, 1]},
]


def placed(phase: str = "Running", **status: Any) -> dict[str, Any]:
    return (
        job("bert")
        .gpus(2)
        .replicas(2)
        .max_restarts(2)
        .with_status(
            **{"phase": phase, "placement": PLACEMENT, "restarts": 0, "preemptions": 0, **status}
        )
        .body()
    )


def worker(replica: int, **fields: Any) -> PodRecord:
    node = "n1" if replica == 0 else "n2"
    defaults: dict[str, Any] = {"replica": replica, "node": node, "assigned": node, "gpus": "0,1"}
    record = parse_pod(pod_body(f"bert-0-w{replica}", owner="bert", **{**defaults, **fields}))
    assert record is not None
    return record


def run(body: dict[str, Any], *pods: PodRecord) -> Change | None:
    return job_lifecycle(parse_job(body), list(pods), CTX)


def test_scheduled_job_whose_workers_all_run_becomes_running() -> None:
    change = run(placed("Scheduled"), worker(0), worker(1))
    assert change is not None and change.status_patch is not None
    assert change.status_patch["phase"] == "Running"
    assert change.status_patch["startTime"] == rfc3339(NOW)
    assert [e["reason"] for e in change.events] == ["Running"]
    assert change.assumed is not None and change.assumed.status.phase == "Running"


def test_nothing_to_do_for_a_healthy_running_gang() -> None:
    assert run(placed("Running"), worker(0), worker(1)) is None


def test_a_half_launched_gang_is_completed_without_duplicates() -> None:
    unbound = worker(1, node=None, phase="Pending")
    change = run(placed("Scheduled"), worker(0), unbound)
    assert change is not None
    assert change.status_patch is None
    assert change.writes == (BindPod(namespace="team-a", name="bert-0-w1", node="n2"),)


def test_a_gang_with_no_pods_yet_gets_service_pods_and_binds() -> None:
    change = run(placed("Scheduled"))
    assert change is not None
    kinds = [type(write).__name__ for write in change.writes]
    assert kinds == ["CreateObject", "CreateObject", "CreateObject", "BindPod", "BindPod"]
    first = change.writes[0]
    assert isinstance(first, CreateObject) and first.manifest["kind"] == "Service"


def test_all_workers_done_means_succeeded() -> None:
    change = run(placed(), worker(0, phase="Succeeded", exit_code=0), worker(1, phase="Succeeded"))
    assert change is not None and change.status_patch is not None
    assert change.status_patch["phase"] == "Succeeded"
    assert change.status_patch["completionTime"] == rfc3339(NOW)


def test_a_failed_worker_restarts_the_whole_gang_gracefully() -> None:
    change = run(placed(), worker(0, phase="Failed", exit_code=1), worker(1))
    assert change is not None and change.status_patch is not None
    assert change.status_patch["restarts"] == 1
    conditions = {c["type"]: c for c in change.status_patch["conditions"]}
    assert conditions["Restarting"]["status"] == "True"
    assert change.writes == (
        DeletePod(namespace="team-a", name="bert-0-w1", uid="pod-bert-0-w1", grace_period_s=120),
    )
    assert [e["reason"] for e in change.events] == ["GangRestart"]


def test_out_of_restarts_the_job_fails_with_a_reason() -> None:
    change = run(
        placed(restarts=2),
        worker(0, phase="Failed", exit_code=3, attempt=2),
        worker(1, attempt=2),
    )
    assert change is not None and change.status_patch is not None
    assert change.status_patch["phase"] == "Failed"
    assert "gave up after 2 restarts" in change.status_patch["message"]


def test_exit_code_2_fails_at_once() -> None:
    change = run(placed(), worker(0, phase="Failed", exit_code=2), worker(1))
    assert change is not None and change.status_patch is not None
    assert change.status_patch["phase"] == "Failed"
    assert "bad configuration" in change.status_patch["message"]


def test_exit_code_75_requeues_without_counting_a_failure() -> None:
    change = run(placed(), worker(0, phase="Failed", exit_code=75), worker(1))
    assert change is not None and change.status_patch is not None
    assert change.status_patch["phase"] == "Preempting"
    assert change.status_patch["preemptions"] == 1
    assert "restarts" not in change.status_patch


def test_a_node_that_left_the_pool_requeues_the_job() -> None:
    body = placed()
    body["status"]["placement"][1]["node"] = "n9"
    change = run(body, worker(0), worker(1))
    assert change is not None and change.status_patch is not None
    assert change.status_patch["phase"] == "Preempting"
    assert "n9 left the pool" in change.status_patch["message"]


def test_releasing_waits_for_pods_then_requeues() -> None:
    releasing = placed("Preempting", preemptions=1)
    waiting = run(releasing, worker(0, deleting=True, attempt=0))
    assert waiting is None  # already deleting: nothing to re-send
    change = run(releasing)
    assert change is not None and change.status_patch is not None
    assert change.status_patch["phase"] == "Queued"
    assert change.status_patch["placement"] is None
    assert "requeued after preemption" in change.status_patch["message"]


def test_releasing_resends_lost_deletions() -> None:
    change = run(placed("Preempting", preemptions=1), worker(0))
    assert change is not None
    assert change.writes == (
        DeletePod(namespace="team-a", name="bert-0-w0", uid="pod-bert-0-w0", grace_period_s=120),
    )


def test_finished_job_is_deleted_after_its_ttl() -> None:
    finished = job("bert").ttl(60).with_status(phase="Succeeded")
    early = finished.with_status(completionTime=rfc3339(NOW - 30)).body()
    assert run(early) is None
    late = job("bert").ttl(60).with_status(phase="Succeeded", completionTime=rfc3339(NOW - 61))
    change = run(late.body())
    assert change is not None
    assert change.writes == (
        DeleteWorkload(plural="trainingjobs", namespace="team-a", name="bert", uid="uid-bert"),
    )


# -- checkpoints the workers reported (termination messages) ----------------------


def reporting(replica: int, at: float, **fields: Any) -> PodRecord:
    message = termination_message(checkpoint_step=300, checkpoint_unix=at)
    return worker(replica, message=message, **fields)


def test_a_preempted_workers_checkpoint_is_recorded_with_the_requeue() -> None:
    change = run(placed(), reporting(0, NOW - 7, phase="Failed", exit_code=75), worker(1))
    assert change is not None and change.status_patch is not None
    assert change.status_patch["phase"] == "Preempting"
    assert change.status_patch["lastCheckpointTime"] == rfc3339(NOW - 7)
    assert change.assumed is not None
    assert change.assumed.status.last_checkpoint_time is not None
    assert change.assumed.status.last_checkpoint_time.timestamp() == int(NOW - 7)


def test_succeeded_workers_report_their_final_checkpoint() -> None:
    change = run(
        placed(),
        reporting(0, NOW - 3, phase="Succeeded", exit_code=0),
        reporting(1, NOW - 2, phase="Succeeded", exit_code=0),
    )
    assert change is not None and change.status_patch is not None
    assert change.status_patch["phase"] == "Succeeded"
    assert change.status_patch["lastCheckpointTime"] == rfc3339(NOW - 2)


def test_a_report_from_pods_already_deleted_is_recorded_on_requeue() -> None:
    releasing = placed("Preempting", preemptions=1)
    change = job_lifecycle(parse_job(releasing), [], CTX, reported_checkpoint=NOW - 20)
    assert change is not None and change.status_patch is not None
    assert change.status_patch["phase"] == "Queued"
    assert change.status_patch["lastCheckpointTime"] == rfc3339(NOW - 20)


def test_a_newer_report_alone_is_a_status_patch() -> None:
    change = run(placed(), reporting(0, NOW - 5, phase="Succeeded", exit_code=0), worker(1))
    assert change is not None
    assert change.status_patch == {"lastCheckpointTime": rfc3339(NOW - 5)}
    assert change.writes == () and change.events == ()


def test_a_report_no_newer_than_the_status_changes_nothing() -> None:
    body = placed(lastCheckpointTime=rfc3339(NOW - 5))
    assert run(body, reporting(0, NOW - 5.5, phase="Succeeded", exit_code=0), worker(1)) is None
    older = job_lifecycle(
        parse_job(body), [worker(0), worker(1)], CTX, reported_checkpoint=NOW - 60
    )
    assert older is None


# -- run time carried across launches (the core's attained service) ----------------


def scheduled_since(when: float) -> list[dict[str, str]]:
    return [
        {
            "type": "Scheduled",
            "status": "True",
            "reason": "Placed",
            "message": "",
            "lastTransitionTime": rfc3339(when),
        }
    ]


def test_a_requeue_adds_the_ended_launchs_run_time() -> None:
    releasing = placed(
        "Preempting", preemptions=1, runSeconds=100, conditions=scheduled_since(NOW - 600)
    )
    change = run(releasing)
    assert change is not None and change.status_patch is not None
    assert change.status_patch["phase"] == "Queued"
    assert change.status_patch["runSeconds"] == 700
    # Replaying the cycle on the requeued status counts nothing twice.
    assert change.assumed is not None
    assert change.assumed.status.run_seconds == 700
    again = job_lifecycle(change.assumed, [], CTX)
    assert again is None or "runSeconds" not in (again.status_patch or {})


def test_finishing_adds_the_last_launchs_run_time() -> None:
    body = placed(conditions=scheduled_since(NOW - 90))
    done = run(body, worker(0, phase="Succeeded", exit_code=0), worker(1, phase="Succeeded"))
    assert done is not None and done.status_patch is not None
    assert done.status_patch["phase"] == "Succeeded"
    assert done.status_patch["runSeconds"] == 90
    failed = run(body, worker(0, phase="Failed", exit_code=2), worker(1))
    assert failed is not None and failed.status_patch is not None
    assert failed.status_patch["phase"] == "Failed"
    assert failed.status_patch["runSeconds"] == 90


def test_a_queued_job_has_no_launch_to_add() -> None:
    assert run_seconds_patch(parse_job(job("bert").with_status(phase="Queued").body()), NOW) == {}
