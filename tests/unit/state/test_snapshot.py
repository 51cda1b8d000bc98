"""Pool view -> core snapshot."""

from __future__ import annotations

from typing import Any

from gpupool.api.pool import GPUPoolSpec
from gpupool.k8s.timestamps import rfc3339
from gpupool.scheduling.config import PoolConfig
from gpupool.scheduling.model import Tier, WorkloadKind, WorkloadUid
from gpupool.state.cache import ClusterCache
from gpupool.state.parse import parse_job, parse_node, parse_pod, parse_pool, parse_service
from gpupool.state.records import PoolRecord
from gpupool.state.snapshot import BuiltSnapshot, SnapshotSettings, build_snapshot, pool_config
from tests.unit.state.bodies import T0, job, node_body, pod_body, pool_body, service_body

PLACED = [
    {"replica": 0, "node": "n1", "gpus": [0, 1]},
    {"replica": 1, "node": "n2", "gpus": [0, 1]},
]


def scheduled_at(when: float) -> list[dict[str, str]]:
    return [
        {
            "type": "Scheduled",
            "status": "True",
            "reason": "Placed",
            "message": "",
            "lastTransitionTime": rfc3339(when),
        }
    ]


def build(*bodies: dict[str, Any], settings: SnapshotSettings | None = None) -> BuiltSnapshot:
    cache = ClusterCache()
    pool = parse_pool(pool_body("a100"))
    assert isinstance(pool, PoolRecord)
    cache.upsert_pool(pool)
    for body in bodies:
        kind = body["kind"]
        if kind == "Node":
            cache.upsert_node(parse_node(body))
        elif kind == "TrainingJob":
            cache.upsert_job(parse_job(body))
        elif kind == "InferenceService":
            cache.upsert_service(parse_service(body))
        elif kind == "Pod":
            pod = parse_pod(body)
            assert pod is not None
            cache.upsert_pod(pod)
    view = cache.pool_view("a100")
    assert view is not None
    return build_snapshot(
        view, now=T0 + 100, balances={"team-a": 5.0}, settings=settings or SnapshotSettings()
    )


def test_nodes_without_telemetry_are_trusted_from_capacity() -> None:
    built = build(node_body("n1", gpus=4), node_body("n2", ready=False), node_body("cpu", gpus=0))
    nodes = {str(node.name): node for node in built.snapshot.nodes}
    assert set(nodes) == {"n1", "n2"}
    assert [gpu.index for gpu in nodes["n1"].gpus] == [0, 1, 2, 3]
    assert nodes["n1"].gpus[0].memory_total_mib == 80 * 1024
    assert nodes["n1"].schedulable and not nodes["n2"].schedulable
    assert built.node_problems == {"n2": "node not Ready"}


def test_require_telemetry_takes_silent_nodes_out() -> None:
    built = build(node_body("n1"), settings=SnapshotSettings(require_telemetry=True))
    assert not built.snapshot.nodes[0].schedulable


def test_tenants_carry_terms_and_balances() -> None:
    tenants = build().snapshot.tenants
    assert tenants["team-a"].guaranteed_gpus == 8  # type: ignore[index]
    assert tenants["team-a"].max_gpus == 32  # type: ignore[index]
    assert tenants["team-a"].credit_balance == 5.0  # type: ignore[index]
    assert tenants["team-a"].weight == 3.0  # type: ignore[index]
    assert tenants["team-b"].weight == 1.0  # type: ignore[index]


def test_queued_job_is_pending() -> None:
    built = build(job("bert").gpus(8).replicas(2).priority("high").bid(1.5).body())
    workload = built.snapshot.workloads[WorkloadUid("uid-bert")]
    assert workload.allocation is None
    assert workload.tier is Tier.HIGH
    assert (workload.replicas, workload.gpus_per_replica) == (2, 8)
    assert workload.bid_per_gpu_hour == 1.5
    assert workload.submitted_at == T0


def test_run_time_of_earlier_launches_is_the_attained_service() -> None:
    fresh = build(job("new").body()).snapshot.workloads[WorkloadUid("uid-new")]
    assert fresh.attained_service_s == 0.0
    requeued = job("bert").with_status(phase="Queued", runSeconds=5400, preemptions=2).body()
    workload = build(requeued).snapshot.workloads[WorkloadUid("uid-bert")]
    assert workload.attained_service_s == 5400.0
    assert workload.allocation is None


def test_preemptions_and_restarts_are_counted_separately() -> None:
    fresh = build(job("new").body()).snapshot.workloads[WorkloadUid("uid-new")]
    assert (fresh.restarts, fresh.preemptions) == (0, 0)
    body = job("bert").with_status(phase="Queued", restarts=1, preemptions=3).body()
    workload = build(body).snapshot.workloads[WorkloadUid("uid-bert")]
    assert (workload.restarts, workload.preemptions) == (1, 3)


def released_at(when: float) -> list[dict[str, str]]:
    return [
        {
            "type": "Scheduled",
            "status": "False",
            "reason": "Released",
            "message": "",
            "lastTransitionTime": rfc3339(when),
        }
    ]


def test_queued_at_is_creation_until_a_release_requeues_the_job() -> None:
    fresh = build(job("new").body()).snapshot.workloads[WorkloadUid("uid-new")]
    assert fresh.queued_at == T0
    requeued = (
        job("bert")
        .with_status(phase="Queued", preemptions=1, conditions=released_at(T0 + 40))
        .body()
    )
    workload = build(requeued).snapshot.workloads[WorkloadUid("uid-bert")]
    assert workload.queued_at == T0 + 40
    assert workload.submitted_at == T0
    running = (
        job("gpt")
        .gpus(2)
        .replicas(2)
        .with_status(phase="Running", placement=PLACED, conditions=scheduled_at(T0 + 10))
        .body()
    )
    placed = build(running).snapshot.workloads[WorkloadUid("uid-gpt")]
    assert placed.queued_at == T0


def test_placed_job_holds_its_status_placement_since_it_was_scheduled() -> None:
    body = (
        job("bert")
        .gpus(2)
        .replicas(2)
        .with_status(phase="Running", placement=PLACED, conditions=scheduled_at(T0 + 10))
        .body()
    )
    workload = build(body).snapshot.workloads[WorkloadUid("uid-bert")]
    assert workload.allocation is not None
    assert [(r.node, r.gpu_indices) for r in workload.allocation.replicas] == [
        ("n1", (0, 1)),
        ("n2", (0, 1)),
    ]
    assert workload.allocation.started_at == T0 + 10
    assert workload.preempted_at is None


def test_releasing_job_holds_what_its_pods_hold_and_vanishes_when_they_are_gone() -> None:
    conditions = [
        *scheduled_at(T0),
        {
            "type": "Preempting",
            "status": "True",
            "reason": "Outbid",
            "message": "",
            "lastTransitionTime": "2025-06-15T15:07:00Z",
        },
    ]
    body = (
        job("v")
        .with_status(phase="Preempting", placement=PLACED, preemptions=1, conditions=conditions)
        .body()
    )
    live = pod_body("v-0-w0", owner="v", node="n1", gpus="0,1", deleting=True)
    done = pod_body("v-0-w1", owner="v", node="n2", gpus="0,1", phase="Succeeded")
    workload = build(body, live, done).snapshot.workloads[WorkloadUid("uid-v")]
    assert workload.allocation is not None
    assert [r.node for r in workload.allocation.replicas] == ["n1"]
    assert workload.preempted_at == T0 + 20
    assert (workload.restarts, workload.preemptions) == (0, 1)
    assert WorkloadUid("uid-v") not in build(body, done).snapshot.workloads


def test_a_gang_restart_after_an_old_preemption_counts_its_grace_from_the_restart() -> None:
    conditions = [
        *scheduled_at(T0),
        {
            "type": "Preempting",
            "status": "False",
            "reason": "Released",
            "message": "",
            "lastTransitionTime": rfc3339(T0 + 5),
        },
        {
            "type": "Restarting",
            "status": "True",
            "reason": "WorkerFailed",
            "message": "",
            "lastTransitionTime": rfc3339(T0 + 40),
        },
    ]
    body = (
        job("r")
        .with_status(phase="Running", placement=PLACED, preemptions=1, conditions=conditions)
        .body()
    )
    live = pod_body("r-1-w0", owner="r", node="n1", gpus="0,1", deleting=True)
    workload = build(body, live).snapshot.workloads[WorkloadUid("uid-r")]
    assert workload.preempted_at == T0 + 40


def test_finished_and_foreign_jobs_are_left_out_with_reasons_for_foreigners() -> None:
    built = build(
        job("done").with_status(phase="Succeeded").body(),
        job("stranger").in_namespace("team-z").body(),
    )
    assert built.snapshot.workloads == {}
    assert built.not_admitted == {
        "uid-stranger": "namespace team-z is not a tenant of GPUPool a100"
    }


def test_shared_gpu_service_and_scale_request() -> None:
    placed = {
        "placement": [{"replica": 0, "node": "n1", "gpus": [3]}],
        "conditions": scheduled_at(T0),
    }
    built = build(service_body("llm", replicas=3, gpus=0.5, memory_mib=9000, status=placed))
    running = built.snapshot.workloads[WorkloadUid("uid-llm")]
    scale = built.snapshot.workloads[WorkloadUid("uid-llm+scale")]
    assert running.kind is WorkloadKind.INFERENCE
    assert running.gpu_share is not None and running.gpu_share.memory_mib == 9000
    assert running.allocation is not None and len(running.allocation.replicas) == 1
    assert scale.allocation is None and scale.replicas == 2 and scale.min_replicas == 1
    assert built.scale_requests == {WorkloadUid("uid-llm+scale"): "uid-llm"}


def test_pool_spec_sets_the_veterans_lane() -> None:
    body = pool_body("a100")
    default = build().config
    assert default.veteran_share == 0.35  # the documented defaults: 35 and 30 percent
    assert default.veteran_age_credit == 0.3
    body["spec"]["auction"] = {
        "veteranSharePercent": 35,
        "veteranAgeCreditPercent": 0,
        "veteranMinRunSeconds": 7200,
    }
    config = pool_config(GPUPoolSpec.model_validate(body["spec"]))
    assert config.veteran_share == 0.35
    assert config.veteran_age_credit == 0.0
    assert config.veteran_min_attained_s == 7200.0


def test_pool_spec_sets_the_outbid_margin_and_the_short_job_bonus() -> None:
    default = build().config
    assert default.outbid_margin_ratio == 2.0  # documented defaults: 200 and 400 percent
    assert default.fairness.short_job_bonus == 4.0
    assert default == PoolConfig()  # the API's defaults are the core's
    body = pool_body("a100")
    body["spec"]["auction"] = {"shortJobBonusPercent": 100}
    body["spec"]["preemption"] = {"outbidMarginPercent": 150}
    config = pool_config(GPUPoolSpec.model_validate(body["spec"]))
    assert config.outbid_margin_ratio == 1.5
    assert config.fairness.short_job_bonus == 1.0
