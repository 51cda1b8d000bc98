"""What a scheduling cycle records in the operator's metrics (fake client, real cache and core).

Values are read back from the cycle's own :class:`OperatorMetrics` registry.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from gpupool.k8s.errors import ApiError
from gpupool.loop.actuator import Actuator
from gpupool.loop.cycle import PoolScheduler
from gpupool.metrics import OperatorMetrics
from tests.unit.loop.test_cycle import World
from tests.unit.state.bodies import T0, job, node_body

POOL = "a100"


class MeteredWorld(World):
    def __init__(self, *, nodes: int = 2, grace: int = 30) -> None:
        super().__init__(nodes=nodes, grace=grace)
        self.metrics = OperatorMetrics()
        self.scheduler = PoolScheduler(
            pool=POOL,
            cache=self.cache,
            actuator=Actuator(
                client=self.client,
                cache=self.cache,
                executor=ThreadPoolExecutor(4),
                metrics=self.metrics,
            ),
            clock=self.clock,
            identity="test",
            metrics=self.metrics,
        )

    def value(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)

    def bind_count(self, tier: str) -> float | None:
        return self.value("gpupool_bind_latency_seconds_count", pool=POOL, tier=tier)

    def bind_sum(self, tier: str) -> float | None:
        return self.value("gpupool_bind_latency_seconds_sum", pool=POOL, tier=tier)

    def preemptions(self) -> dict[str, float]:
        return {
            sample.labels["cause"]: sample.value
            for family in self.metrics.registry.collect()
            if family.name == "gpupool_preemptions"
            for sample in family.samples
            if sample.name == "gpupool_preemptions_total"
        }

    def errors(self, resource: str) -> float | None:
        return self.value("gpupool_reconcile_errors_total", resource=resource)


def test_create_to_bound_latency_is_observed_once_when_all_pods_are_bound() -> None:
    world = MeteredWorld()
    world.clock.now = T0 + 100  # created at T0
    world.submit(job("bert").gpus(8).replicas(2).body())
    assert world.bind_count("normal") == 0.0  # exported before the first wait
    world.cycle()
    assert set(world.pods().values()) == {"n0", "n1"}
    assert world.bind_count("normal") == 1.0
    assert world.bind_sum("normal") == 100.0
    assert world.value("gpupool_bind_latency_seconds_bucket", pool=POOL, tier="normal",
                       le="60.0") == 0.0  # fmt: skip
    assert world.value("gpupool_bind_latency_seconds_bucket", pool=POOL, tier="normal",
                       le="120.0") == 1.0  # fmt: skip

    world.clock.now += 60
    for name in world.pods():
        world.client.set_pod_phase(name, "Running")
    world.cycle()
    world.cycle()
    assert world.bind_count("normal") == 1.0  # running, not bound again
    assert world.bind_count("high") == 0.0 and world.bind_count("low") == 0.0


def test_a_failed_bind_delays_the_observation_until_the_pods_are_bound() -> None:
    world = MeteredWorld()
    world.clock.now = T0 + 5
    world.submit(job("bert").gpus(8).body())
    world.client.fail["bind"] = ApiError(500, "InternalError", "apiserver hiccup")
    world.cycle()
    assert world.pods() == {"bert-0-w0": None}  # created, not bound
    assert world.bind_count("normal") == 0.0
    assert world.errors("pods") == 1.0

    world.clock.now = T0 + 7
    world.cycle()  # the lifecycle pass binds the pod
    assert world.pods() == {"bert-0-w0": "n0"} or world.pods() == {"bert-0-w0": "n1"}
    assert world.bind_count("normal") == 1.0
    assert world.bind_sum("normal") == 7.0


def test_a_preempted_job_placed_again_is_not_a_second_create_to_bound_wait() -> None:
    world = MeteredWorld(nodes=1, grace=30)
    world.submit(job("low").gpus(8).priority("low").in_namespace("team-b").body())
    world.cycle()
    world.client.set_pod_phase("low-0-w0", "Running")
    world.cycle()
    assert world.bind_count("low") == 1.0

    world.clock.now += 600
    world.submit(job("high").gpus(8).priority("high").body())
    world.cycle()
    world.client.pods.pop(("team-b", "low-0-w0"), None)  # its grace period ended
    world.cycle()
    assert world.bind_count("high") == 1.0
    world.client.set_pod_phase("high-0-w0", "Succeeded", exit_code=0)
    world.cycle()
    world.cycle()
    assert "low-1-w0" in world.pods()  # relaunched after the preemption
    assert world.bind_count("low") == 1.0
    assert world.value("gpupool_decisions_total", pool=POOL, kind="preempt") == 1.0
    assert world.preemptions() == {"higher-tier": 1.0}


def test_gauges_describe_the_pool_its_tenants_and_nodes() -> None:
    world = MeteredWorld(nodes=3)
    world.client.nodes["n2"] = node_body("n2", ready=False)
    pool = world.client.custom[("gpupools", "", POOL)]
    pool["spec"]["tenants"][1]["credits"] = {"perHour": 100, "max": 100}
    # team-b is guaranteed 8 GPUs: 16 of them are 8 borrowed (paid with its credits).
    world.submit(job("big").gpus(8).replicas(2).in_namespace("team-b").body())
    world.cycle()

    assert world.value("gpupool_gpus", pool=POOL, state="total") == 24.0
    assert world.value("gpupool_gpus", pool=POOL, state="healthy") == 16.0
    assert world.value("gpupool_gpus", pool=POOL, state="unhealthy") == 8.0
    assert world.value("gpupool_gpus", pool=POOL, state="allocated") == 16.0
    assert world.value("gpupool_gpus", pool=POOL, state="idle") == 0.0
    assert world.value("gpupool_tenant_allocated_gpus", pool=POOL, tenant="team-b") == 16.0
    assert world.value("gpupool_tenant_borrowed_gpus", pool=POOL, tenant="team-b") == 8.0
    assert world.value("gpupool_tenant_allocated_gpus", pool=POOL, tenant="team-a") == 0.0
    assert world.value("gpupool_tenant_borrowed_gpus", pool=POOL, tenant="team-a") == 0.0
    assert world.value("gpupool_tenant_credits", pool=POOL, tenant="team-a") is not None
    for node in ("n0", "n1", "n2"):
        assert world.value("gpupool_node_info", pool=POOL, node=node) == 1.0

    del world.client.nodes["n2"]
    world.cycle()
    assert world.value("gpupool_node_info", pool=POOL, node="n2") is None
    assert world.value("gpupool_node_info", pool=POOL, node="n0") == 1.0
    assert world.value("gpupool_gpus", pool=POOL, state="unhealthy") == 0.0


def test_a_failed_status_write_is_a_reconcile_error_of_its_resource() -> None:
    world = MeteredWorld()
    world.submit(job("bert").gpus(8).body())
    world.client.fail["patch_status"] = ApiError(500, "InternalError", "etcd hiccup")
    world.cycle()
    assert world.errors("trainingjobs") == 1.0
    assert world.errors("pods") == 0.0
    assert world.value("gpupool_api_writes_total", verb="patch", outcome="InternalError") == 1.0
    world.cycle()
    assert world.errors("trainingjobs") == 1.0  # the retry went through
    assert world.bind_count("normal") == 1.0
