"""The simulator's credit book-keeping: unmetered tenants, settled without
:func:`~gpupool.scheduling.credits.settle`, pay what it would have them pay."""

from __future__ import annotations

import math
from dataclasses import replace

from gpupool.scheduling import PoolConfig, TenantName
from gpupool.scheduling.credits import settle
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
