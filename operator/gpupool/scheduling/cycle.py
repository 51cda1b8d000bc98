"""``run_cycle``: the whole scheduling decision for one pool, as a pure function.

Stages (SCHEDULING.md, "One cycle"):

1. health filter: GPUs over the thresholds leave the pool; their workloads restart;
2. strict tiers: ``high`` before ``normal`` before ``low``;
3. guarantees: within a tier, demand inside a tenant's guarantee goes first and
   may reclaim GPUs other tenants borrow;
4. auction for the rest (borrowed capacity), bids from the workload or the
   fairness agent, capped by credits;
5. placement of each winner (gangs all-or-nothing, fragmentation-aware);
6. preemption plan (smallest victim set, total order, min runtime, grace);
7. decisions with a reason for every workload left waiting.
"""

from __future__ import annotations

from gpupool.scheduling.config import PoolConfig
from gpupool.scheduling.decisions import Decisions
from gpupool.scheduling.snapshot import Snapshot


def run_cycle(snapshot: Snapshot, config: PoolConfig) -> Decisions:
    """Decide bindings, preemptions, prices and waiting reasons for ``snapshot``.

    Pure and deterministic: the same snapshot and config give the same decisions
    (every ordering ends with the workload UID); reads no clock (``snapshot.now``).
    """
    raise NotImplementedError("run_cycle: contract only, implementation follows")
