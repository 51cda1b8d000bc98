"""The cache: versions, assume/forget, pool views."""

from __future__ import annotations

from dataclasses import replace

from gpupool.state.cache import ClusterCache
from gpupool.state.parse import parse_job, parse_node, parse_pod, parse_pool
from gpupool.state.records import PodRecord, PoolRecord
from gpupool_workloads.termination import termination_message
from tests.unit.state.bodies import T0, job, node_body, pod_body, pool_body


def cache_with_pool() -> ClusterCache:
    cache = ClusterCache()
    pool = parse_pool(pool_body("a100"))
    assert isinstance(pool, PoolRecord)
    cache.upsert_pool(pool)
    return cache


def test_an_older_watch_event_does_not_undo_our_write() -> None:
    cache = cache_with_pool()
    cache.commit_job(parse_job(job("bert").with_status(phase="Scheduled").version(10).body()))
    cache.upsert_job(parse_job(job("bert").version(9).body()))
    found = cache.job("uid-bert")
    assert found is not None and found.status.phase == "Scheduled"
    cache.upsert_job(parse_job(job("bert").with_status(phase="Running").version(11).body()))
    found = cache.job("uid-bert")
    assert found is not None and found.status.phase == "Running"


def test_assumed_record_shadows_the_observed_one_until_forgotten() -> None:
    cache = cache_with_pool()
    observed = parse_job(job("bert").body())
    cache.upsert_job(observed)
    cache.assume_job(
        replace(observed, status=observed.status.model_copy(update={"phase": "Scheduled"}))
    )
    view = cache.pool_view("a100")
    assert view is not None and view.jobs[0].status.phase == "Scheduled"
    cache.forget_job("uid-bert")
    view = cache.pool_view("a100")
    assert view is not None and view.jobs[0].status.phase is None


def test_pool_view_selects_nodes_jobs_and_pods_of_the_pool() -> None:
    cache = cache_with_pool()
    cache.upsert_node(parse_node(node_body("n1", pool="a100")))
    cache.upsert_node(parse_node(node_body("n2", pool="h100")))
    cache.upsert_job(parse_job(job("mine").body()))
    cache.upsert_job(parse_job(job("theirs").pool("h100").body()))
    pod = parse_pod(pod_body("mine-0-w0", owner="mine"))
    assert pod is not None
    cache.upsert_pod(pod)

    view = cache.pool_view("a100")

    assert view is not None
    assert [node.name for node in view.nodes] == ["n1"]
    assert [record.name for record in view.jobs] == ["mine"]
    assert [p.name for p in view.pods_of("uid-mine")] == ["mine-0-w0"]
    assert cache.pool_view("nope") is None


def test_removing_pods_and_relisting() -> None:
    cache = cache_with_pool()
    for name in ("a", "b"):
        record = parse_pod(pod_body(name, owner="mine"))
        assert record is not None
        cache.upsert_pod(record)
    cache.remove_pod("pod-a")
    assert [p.name for p in cache.pods_of("uid-mine")] == ["b"]
    fresh = parse_pod(pod_body("c", owner="other"))
    assert fresh is not None
    cache.replace_pods([fresh])
    assert cache.pods_of("uid-mine") == ()
    assert [p.name for p in cache.pods_of("uid-other")] == ["c"]


def test_generation_moves_on_every_change() -> None:
    cache = ClusterCache()
    before = cache.generation
    cache.upsert_node(parse_node(node_body("n1")))
    assert cache.generation > before


def _reporting_pod(name: str, at: float) -> PodRecord:
    message = termination_message(checkpoint_step=1, checkpoint_unix=at)
    record = parse_pod(pod_body(name, owner="mine", phase="Failed", exit_code=75, message=message))
    assert record is not None
    return record


def test_the_newest_checkpoint_report_outlives_the_pods_until_the_job_goes() -> None:
    cache = cache_with_pool()
    cache.upsert_job(parse_job(job("mine").body()))
    cache.upsert_pod(_reporting_pod("mine-0-w0", T0 + 30))
    cache.upsert_pod(_reporting_pod("mine-0-w1", T0 + 10))  # an older report
    cache.remove_pod("pod-mine-0-w0")
    cache.remove_pod("pod-mine-0-w1")

    view = cache.pool_view("a100")
    assert view is not None
    assert view.pods_of("uid-mine") == ()
    assert view.reported_checkpoint("uid-mine") == T0 + 30

    cache.remove_job("uid-mine")
    cache.upsert_job(parse_job(job("mine").body()))  # a new job of the same name and UID
    view = cache.pool_view("a100")
    assert view is not None and view.reported_checkpoint("uid-mine") is None
