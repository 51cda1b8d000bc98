"""Lease rules and two electors racing for one Lease."""

from __future__ import annotations

import pytest

from gpupool.k8s.errors import Conflict
from gpupool.loop.leader import LeaderElector, LeaseVerb, decide_lease, micro_time
from tests.unit.loop.fakes import FakeKubeClient

T0 = 1_750_000_000.0


def lease(holder: str | None, renewed: float, *, duration: int = 15) -> dict[str, object]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l", "namespace": "ns", "resourceVersion": "7"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration,
            "renewTime": micro_time(renewed),
            "leaseTransitions": 2,
        },
    }


@pytest.mark.parametrize(
    ("current", "verb"),
    [
        (None, LeaseVerb.CREATE),
        (lease("me", T0 - 5), LeaseVerb.RENEW),
        (lease("me", T0 - 500), LeaseVerb.RENEW),
        (lease("other", T0 - 5), LeaseVerb.WAIT),
        (lease("other", T0 - 16), LeaseVerb.TAKE_OVER),
        (lease(None, T0 - 1), LeaseVerb.TAKE_OVER),
    ],
)
def test_decide_lease(current: dict[str, object] | None, verb: LeaseVerb) -> None:
    action = decide_lease(current, name="l", namespace="ns", identity="me", now=T0, duration_s=15)
    assert action.verb is verb
    if verb is LeaseVerb.TAKE_OVER:
        assert action.body is not None
        assert action.body["spec"]["holderIdentity"] == "me"
        assert action.body["spec"]["leaseTransitions"] == 3
        assert action.body["metadata"]["resourceVersion"] == "7"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def elector(client: FakeKubeClient, identity: str, clock: Clock) -> LeaderElector:
    return LeaderElector(
        client=client,
        name="l",
        namespace="ns",
        identity=identity,
        duration_s=15,
        clock=clock,
        monotonic=clock,
    )


def test_only_one_of_two_replicas_leads_and_the_other_takes_over_after_expiry() -> None:
    client, clock = FakeKubeClient(), Clock()
    first, second = elector(client, "a", clock), elector(client, "b", clock)

    assert first.step() is True
    assert second.step() is False
    assert second.holder == "a"

    clock.now += 10
    assert first.step() is True  # renewal keeps it
    assert second.step() is False

    clock.now += 20  # a stops renewing (say, killed); its own view expired too
    assert first.is_leader is False
    assert second.step() is True
    assert client.leases[("ns", "l")]["spec"]["holderIdentity"] == "b"


def test_a_lost_race_is_a_follower_not_an_error() -> None:
    client, clock = FakeKubeClient(), Clock()
    client.leases[("ns", "l")] = lease("gone", T0 - 100)
    contender = elector(client, "a", clock)
    client.fail["replace_lease"] = Conflict(409, "Conflict", "modified")
    assert contender.step() is False
    assert contender.step() is True


def test_release_hands_the_lease_over_at_once() -> None:
    client, clock = FakeKubeClient(), Clock()
    first, second = elector(client, "a", clock), elector(client, "b", clock)
    assert first.step()
    first.release()
    assert not first.is_leader
    assert second.step() is True
