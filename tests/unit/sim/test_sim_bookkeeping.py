"""The simulator's book-keeping: unmetered tenants, settled without
:func:`~gpupool.scheduling.credits.settle`, pay what it would have them pay; the cyclic
collector is off during a replay."""

from __future__ import annotations

import gc
import math
from dataclasses import replace

import pytest

from gpupool.scheduling import Decisions, PoolConfig, Snapshot, TenantName
from gpupool.scheduling.credits import settle
from gpupool.sim import engine
from gpupool.sim.engine import SimConfig, Simulator
from gpupool.sim.policies import make_policy
from gpupool.sim.tenants import budget_tenants, default_tenants
from gpupool.sim.trace import parse_trace

TRACE = "job_id,submit_s,duration_s,gpus,tenant,priority,kind\n" + "".join(
    f"j{i},{i * 40},600,1,t{i},normal,training\n" for i in range(3)
)


def test_unmetered_and_budgeted_tenants_pay_what_settle_says() -> None:
    jobs = parse_trace(TRACE.splitlines(True)).jobs
    sim = Simulator(
        jobs,
        policy=make_policy("gpupool", config=PoolConfig(), durations={}),
        tenants=default_tenants({job.tenant for job in jobs}, total_gpus=8),
        config=SimConfig(nodes=1, gpus_per_node=8),
    )
    budgeted = budget_tenants(["b"], total_gpus=8)[TenantName("b")]
    # An infinite balance over a finite cap: settle() caps it.
    over = replace(budgeted, name=TenantName("over"), credit_balance=math.inf)
    sim.tenants.update({budgeted.name: budgeted, over.name: over})
    before = dict(sim.tenants)
    assert math.isinf(before[TenantName("t0")].credits_max)
    rates = {"t0": 7.25, "t1": 0.0, "b": 3.5, "over": 3.5}  # t2 pays nothing either
    sim.spend_rate = {TenantName(name): rate for name, rate in rates.items()}
    sim.credit_spent = {"t0": 1.5}
    sim.now = sim.last_settle + 1234.5

    sim.settle_credits()

    for name, tenant in before.items():
        statement = settle(tenant, spend=rates.get(name, 0.0) * 1234.5 / 3600.0, elapsed_s=1234.5)
        assert sim.tenants[name] == statement.tenant
        if math.isinf(tenant.credits_max):
            assert sim.tenants[name] is tenant
        earlier = 1.5 if name == "t0" else 0.0
        assert sim.credit_spent.get(name, 0.0) == earlier + statement.spent
    assert sim.credit_spent["t0"] > 1.5
    assert sim.credit_spent["b"] > 0
    assert sim.tenants[over.name].credit_balance == over.credits_max


def test_the_collector_is_off_during_a_replay_and_restored_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = parse_trace(TRACE.splitlines(True)).jobs
    policy = make_policy("gpupool", config=PoolConfig(), durations={})
    enabled_in_cycles: list[bool] = []

    class Recording:
        """The policy, noting whether the collector is on in each cycle."""

        def __getattr__(self, name: str) -> object:
            return getattr(policy, name)

        def decide(self, snapshot: Snapshot) -> Decisions:
            enabled_in_cycles.append(gc.isenabled())
            return policy.decide(snapshot)

    collected: list[int] = []
    monkeypatch.setattr(engine, "COLLECT_EVERY_CYCLES", 1)
    monkeypatch.setattr(engine.gc, "collect", lambda generation=2: collected.append(generation))
    sim = Simulator(
        jobs,
        policy=Recording(),  # type: ignore[arg-type]
        tenants=default_tenants({job.tenant for job in jobs}, total_gpus=8),
        config=SimConfig(nodes=1, gpus_per_node=8),
    )
    assert gc.isenabled()
    outcome = sim.run()
    assert gc.isenabled()
    assert outcome.unfinished == 0
    assert enabled_in_cycles and not any(enabled_in_cycles)
    assert collected == [1] * len(enabled_in_cycles)  # the young generations, every cycle here
