"""Binding, Event, condition and naming helpers."""

from __future__ import annotations

import pytest

from gpupool.k8s.binding import binding
from gpupool.k8s.bodies import ObjectRef
from gpupool.k8s.conditions import find_condition, set_condition
from gpupool.k8s.events import EventType, event
from gpupool.k8s.names import dns_label, label_value
from gpupool.k8s.timestamps import parse_rfc3339, rfc3339

T0 = 1_750_000_000.0


def test_binding_targets_the_node() -> None:
    assert binding(pod="bert-0-w0", namespace="team-a", node="n1") == {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "bert-0-w0", "namespace": "team-a"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"},
    }


def test_event_about_a_namespaced_object() -> None:
    job = ObjectRef(
        api_version="gpupool.io/v1alpha1", kind="TrainingJob", name="bert", namespace="a", uid="u"
    )
    assert event(
        regarding=job,
        reason="Preempting",
        message="preempted by high-tier job x",
        event_type=EventType.WARNING,
        now=T0 + 0.5,
        reporting_instance="op-1",
    ) == {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"bert.{int((T0 + 0.5) * 1e9):x}", "namespace": "a"},
        "involvedObject": {
            "apiVersion": "gpupool.io/v1alpha1",
            "kind": "TrainingJob",
            "name": "bert",
            "namespace": "a",
            "uid": "u",
        },
        "reason": "Preempting",
        "message": "preempted by high-tier job x",
        "type": "Warning",
        "count": 1,
        "firstTimestamp": rfc3339(T0),
        "lastTimestamp": rfc3339(T0),
        "source": {"component": "gpupool"},
        "reportingComponent": "gpupool",
        "reportingInstance": "op-1",
    }


def test_event_about_a_cluster_scoped_pool_goes_to_default() -> None:
    pool = ObjectRef(
        api_version="gpupool.io/v1alpha1", kind="GPUPool", name="a100", namespace="", uid="p"
    )
    body = event(regarding=pool, reason="R", message="m", now=T0, reporting_instance="i")
    assert body["metadata"]["namespace"] == "default"
    assert "namespace" not in body["involvedObject"]


def test_condition_transition_time_moves_only_when_status_changes() -> None:
    first = set_condition([], type_="Ready", status=False, reason="A", message="a", now=T0)
    same = set_condition(first, type_="Ready", status=False, reason="B", message="b", now=T0 + 60)
    flipped = set_condition(same, type_="Ready", status=True, reason="C", message="c", now=T0 + 90)

    assert same == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "B",
            "message": "b",
            "lastTransitionTime": rfc3339(T0),
        }
    ]
    assert flipped[0]["lastTransitionTime"] == rfc3339(T0 + 90)
    assert flipped[0]["status"] == "True"


def test_other_conditions_are_kept_in_order() -> None:
    start = set_condition([], type_="A", status=True, reason="r", message="", now=T0)
    start = set_condition(start, type_="B", status=True, reason="r", message="", now=T0)
    result = set_condition(start, type_="A", status=False, reason="x", message="", now=T0)
    assert [c["type"] for c in result] == ["A", "B"]
    assert find_condition(result, "B") == start[1]
    assert find_condition(result, "C") is None


def test_timestamps_round_trip() -> None:
    assert rfc3339(T0) == "2025-06-15T15:06:40Z"
    assert parse_rfc3339(rfc3339(T0)) == T0
    assert parse_rfc3339(None) is None
    assert parse_rfc3339("garbage") is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [("bert", "bert"), ("bert-workers", "bert-workers")],
)
def test_dns_label_keeps_valid_names(name: str, expected: str) -> None:
    assert dns_label(name) == expected


@pytest.mark.parametrize("name", ["a.b", "9lives", "X" * 80, "-x-", "a_b"])
def test_dns_label_fixes_invalid_names_without_collisions(name: str) -> None:
    label = dns_label(name)
    assert len(label) <= 63
    assert label[0].isalpha() and label[-1].isalnum()
    assert set(label) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
    assert dns_label(name + "y") != label


def test_label_value_hashes_only_long_names() -> None:
    assert label_value("team-a.job_1") == "team-a.job_1"
    long_value = label_value("j" * 100)
    assert len(long_value) <= 63
    assert long_value != label_value("j" * 101)
