"""Raw bodies -> cache records."""

from __future__ import annotations

import pytest

from gpupool.state.parse import (
    REPORT_LAST_CHECKPOINT_TIME,
    checkpoint_time_of,
    parse_job,
    parse_node,
    parse_pod,
    parse_pool,
    parse_service,
)
from gpupool.state.records import PodPhase, PoolRecord, WorkloadKindName
from gpupool.telemetry.annotations import decode_node_telemetry, encode_node_telemetry
from gpupool.telemetry.model import GPUTelemetry, GpuUuid, NodeTelemetry
from gpupool_workloads import contract
from gpupool_workloads.termination import termination_message
from tests.unit.state.bodies import T0, job, node_body, pod_body, pool_body, service_body


def test_job_spec_status_and_identity() -> None:
    record = parse_job(
        job("bert")
        .gpus(8)
        .replicas(2)
        .priority("high")
        .version(42)
        .with_status(phase="Running", restarts=1, preemptions=2, unknownField=1)
        .body()
    )
    assert (record.uid, record.name, record.namespace) == ("uid-bert", "bert", "team-a")
    assert record.resource_version == 42
    assert record.created_at == T0
    assert record.spec is not None and record.spec.gpus_per_replica == 8
    assert record.spec.priority_class == "high"
    assert record.status.phase == "Running"
    assert (record.status.restarts, record.status.preemptions) == (1, 2)
    assert record.spec_error is None


def test_job_with_an_unparsable_spec_says_why() -> None:
    body = job("bad").replicas(0).body()
    record = parse_job(body)
    assert record.spec is None
    assert record.spec_error is not None and "replicas" in record.spec_error


def test_pool_reads_credit_balances_from_status() -> None:
    record = parse_pool(pool_body(status={"tenants": [{"namespace": "team-a", "credits": 12.5}]}))
    assert isinstance(record, PoolRecord)
    assert record.tenant_credits == {"team-a": 12.5}
    assert [tenant.namespace for tenant in record.spec.tenants] == ["team-a", "team-b"]


def test_pool_with_invalid_spec_is_an_error_message() -> None:
    body = pool_body()
    body["spec"]["tenants"][0]["guaranteedGPUs"] = -1
    assert isinstance(parse_pool(body), str)


def test_service() -> None:
    record = parse_service(service_body("resnet", gpus=0.5, memory_mib=10000))
    assert record.spec is not None and record.spec.gpus_per_replica == 0.5


def test_node_capacity_readiness_and_telemetry() -> None:
    report = NodeTelemetry(
        node="n1",  # type: ignore[arg-type]
        timestamp=T0,
        gpus=(
            GPUTelemetry(
                index=0,
                uuid=GpuUuid("GPU-0"),
                model="A100",
                memory_total_mib=100,
                memory_used_mib=0,
                memory_free_mib=100,
            ),
        ),
    )
    body = node_body("n1", gpus=8, ready=False, annotations=encode_node_telemetry(report))
    record = parse_node(body, telemetry_parser=decode_node_telemetry)
    assert record.capacity == {"nvidia.com/gpu": 8}
    assert not record.ready
    assert record.telemetry is not None and record.telemetry.gpus[0].memory_total_mib == 100


def test_node_with_garbled_telemetry_keeps_the_error() -> None:
    body = node_body("n1", annotations={"gpupool.io/telemetry": "{not json"})
    record = parse_node(body, telemetry_parser=decode_node_telemetry)
    assert record.telemetry is None
    assert record.telemetry_error


def test_our_worker_pod() -> None:
    record = parse_pod(
        pod_body(
            "bert-1-w1",
            owner="bert",
            replica=1,
            attempt=1,
            gpus="4,5",
            phase="Failed",
            exit_code=75,
        )
    )
    assert record is not None
    assert record.owner_uid == "uid-bert"
    assert record.owner_kind is WorkloadKindName.TRAINING_JOB
    assert (record.replica, record.attempt) == (1, 1)
    assert record.gpu_indices == (4, 5)
    assert record.phase is PodPhase.FAILED
    assert record.exit_code == 75
    assert not record.holds_gpus


def test_someone_elses_pod_is_ignored() -> None:
    body = pod_body("x", owner="bert")
    del body["metadata"]["labels"]["gpupool.io/role"]
    assert parse_pod(body) is None
    body = pod_body("y", owner="bert")
    body["metadata"]["ownerReferences"][0]["apiVersion"] = "apps/v1"
    assert parse_pod(body) is None


def test_unbound_pod_still_holds_its_assigned_gpus() -> None:
    record = parse_pod(pod_body("p", owner="bert", node=None, phase="Pending"))
    assert record is not None and record.node is None and record.holds_gpus


def test_node_without_a_report_has_no_telemetry_and_no_error() -> None:
    record = parse_node(node_body("n1"), telemetry_parser=decode_node_telemetry)
    assert record.telemetry is None and record.telemetry_error is None


def report(at: float, step: int = 120) -> str:
    """A trainer's exit report, as the workloads package writes it."""
    return termination_message(checkpoint_step=step, checkpoint_unix=at)


def test_the_operator_reads_the_trainers_exit_report() -> None:
    assert REPORT_LAST_CHECKPOINT_TIME == contract.REPORT_LAST_CHECKPOINT_TIME
    assert checkpoint_time_of(report(T0 + 42.7)) == T0 + 42


@pytest.mark.parametrize(
    "message",
    [None, "", "Traceback (most recent call last):\n  ...\nRuntimeError: boom", "[1, 2]", "{}"],
)
def test_anything_but_a_report_is_no_checkpoint(message: str | None) -> None:
    assert checkpoint_time_of(message) is None


def test_a_terminated_worker_carries_its_reported_checkpoint() -> None:
    logs_then_report = f"step=118 loss=0.2\n{report(T0 + 5)}\n"
    record = parse_pod(
        pod_body("bert-0-w0", owner="bert", phase="Failed", exit_code=75, message=logs_then_report)
    )
    assert record is not None and record.checkpoint_at == T0 + 5
    running = parse_pod(pod_body("bert-0-w1", owner="bert"))
    assert running is not None and running.checkpoint_at is None


def test_only_training_workers_report_checkpoints() -> None:
    record = parse_pod(
        pod_body(
            "chat-r0",
            owner="chat",
            owner_kind="InferenceService",
            phase="Succeeded",
            exit_code=0,
            message=report(T0),
        )
    )
    assert record is not None and record.checkpoint_at is None
