from __future__ import annotations

import pytest

from gpupool.telemetry.change import PublishDecision, Published, PublishPolicy, decide_publish
from gpupool.telemetry.model import NodeTelemetry

from .builders import node, with_gpu

POLICY = PublishPolicy(heartbeat_s=30.0, heartbeat_jitter_ratio=0.0, min_interval_s=5.0)
BASE = node(timestamp=1000.0)


def decide(
    current: NodeTelemetry, *, elapsed: float, policy: PublishPolicy = POLICY
) -> PublishDecision:
    return decide_publish(
        last=Published(telemetry=BASE, at=1000.0),
        current=current,
        now=1000.0 + elapsed,
        policy=policy,
    )


def test_first_report_is_written() -> None:
    decision = decide_publish(last=None, current=BASE, now=0.0, policy=POLICY)
    assert (decision.write, decision.urgent, decision.reasons) == (True, True, ("first report",))


def test_nothing_changed_waits_for_the_heartbeat() -> None:
    assert decide(BASE, elapsed=29.9).write is False
    beat = decide(BASE, elapsed=30.0)
    assert (beat.write, beat.reasons) == (True, ("heartbeat",))


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"xid_events": (79,)}, "GPU 2 new XID 79"),
        ({"xid_history": (13,)}, "GPU 2 new XID 13"),
        ({"lost": True}, "GPU 2 lost"),
        ({"temperature_c": 95.0}, "GPU 2 health: temperature 95C > 90C"),
        ({"ecc_volatile_corrected": 1}, "GPU 2 ECC counters changed"),
    ],
)
def test_urgent_changes_are_written_at_once(fields: dict[str, object], reason: str) -> None:
    decision = decide(with_gpu(BASE, 2, **fields), elapsed=0.1)
    assert decision.write and decision.urgent
    assert reason in decision.reasons


def test_gpu_set_changes_are_urgent() -> None:
    fewer = NodeTelemetry(node=BASE.node, timestamp=1001.0, gpus=BASE.gpus[:7])
    decision = decide(fewer, elapsed=1.0)
    assert decision.urgent and decision.reasons == ("GPU 7 vanished",)


def test_already_published_xid_is_not_news() -> None:
    last = with_gpu(BASE, 1, xid_events=(79,))
    current = with_gpu(BASE, 1, xid_history=(79,))
    decision = decide_publish(
        last=Published(telemetry=last, at=1000.0), current=current, now=1001.0, policy=POLICY
    )
    assert decision.write is False


@pytest.mark.parametrize(
    ("fields", "significant"),
    [
        ({"memory_free_mib": 81559 - 4000}, False),  # 4.9% of 81559
        ({"memory_free_mib": 81559 - 4100}, True),
        ({"sm_utilization_pct": 9.9}, False),
        ({"sm_utilization_pct": 10.0}, True),
        ({"temperature_c": 39.0}, False),
        ({"temperature_c": 40.0}, True),
        ({"power_w": 500.0}, False),  # power alone never triggers a write
        ({"sm_utilization_pct": None}, True),
    ],
)
def test_significant_changes_respect_thresholds_and_min_interval(
    fields: dict[str, object], significant: bool
) -> None:
    current = with_gpu(BASE, 4, **fields)
    soon = decide(current, elapsed=2.0)
    later = decide(current, elapsed=5.0)
    assert soon.write is False
    assert later.write is significant
    if significant:
        assert soon.reasons[0].startswith("deferred: GPU 4")


def test_drift_is_measured_against_the_published_value() -> None:
    # 3 points per read never crosses a 10-point bucket between reads, but adds up
    drifted = with_gpu(BASE, 0, sm_utilization_pct=12.0)
    assert decide(drifted, elapsed=6.0).write is True


def test_heartbeat_phase_spreads_nodes_deterministically() -> None:
    policy = PublishPolicy(heartbeat_s=30.0, heartbeat_jitter_ratio=0.2)
    intervals = {policy.heartbeat_for(f"gpu-node-{i:03d}") for i in range(100)}
    assert all(24.0 <= interval <= 30.0 for interval in intervals)
    assert len(intervals) > 90
    assert policy.heartbeat_for("gpu-node-001") == policy.heartbeat_for("gpu-node-001")
