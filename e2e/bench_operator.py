"""Operator figures on the local control plane (``python e2e/bench_operator.py``).

1. Burst: ``--jobs`` TrainingJobs (1-8 GPUs, some 2-replica gangs) created at once on
   ``--nodes`` fake 8-GPU nodes; for each job, the time from its creation request to
   all its pods bound (pods polled every 250 ms), p50 / p99 / max.
2. Memory: the operator's resident set size with ``--total`` jobs in the system.

Prints one JSON object. Needs ``eval "$(e2e/cluster.sh env)"``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "operator"))

from gpupool.k8s.client import RestKubeClient  # noqa: E402


def kubectl(*args: str, input_text: str | None = None) -> str:
    result = subprocess.run(
        ["kubectl", *args], input=input_text, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def apply(items: list[dict[str, Any]]) -> None:
    kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
    )


def node(name: str, pool: str) -> dict[str, Any]:
    capacity = {"cpu": "96", "memory": "1Ti", "pods": "110", "nvidia.com/gpu": "8"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {"type": "kwok", "gpupool.io/pool": pool, "kubernetes.io/hostname": name},
        },
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def job(name: str, namespace: str, pool: str, *, replicas: int, gpus: int) -> dict[str, Any]:
    return {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "pool": pool,
            "replicas": replicas,
            "gpusPerReplica": gpus,
            "template": {
                "metadata": {"annotations": {"gpupool.io/complete-after": "3600s"}},
                "spec": {"containers": [{"name": "t", "image": "trainer"}]},
            },
        },
    }


SHAPES = [(1, 1)] * 10 + [(1, 2)] * 6 + [(1, 4)] * 2 + [(2, 4), (1, 8)]
"""(replicas, GPUs per replica), cycled: avg ~2.1 GPUs per job."""


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def watch_bindings(
    client: RestKubeClient, pool: str, want: dict[str, int], *, deadline: float
) -> dict[str, float]:
    """When each job first had all its pods bound (pods listed every 250 ms)."""
    bound_at: dict[str, float] = {}
    while len(bound_at) < len(want) and time.monotonic() < deadline:
        pods = client.list_pods(label_selector=f"gpupool.io/pool={pool}").items
        now = time.monotonic()
        count: dict[str, int] = {}
        for pod in pods:
            if pod["spec"].get("nodeName"):
                name = pod["metadata"]["labels"]["gpupool.io/job"]
                count[name] = count.get(name, 0) + 1
        for name, bound in count.items():
            if name not in bound_at and bound >= want[name]:
                bound_at[name] = now
        time.sleep(0.25)
    return bound_at


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=64)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--total", type=int, default=1000)
    parser.add_argument("--write-threads", type=int, default=16)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:5]
    pool, namespace = f"bench-{run}", f"bench-{run}"
    nodes = [f"bench-{run}-{i:03d}" for i in range(args.nodes)]
    client = RestKubeClient.from_environment()
    apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}])
    apply([node(name, pool) for name in nodes])
    kubectl(
        "wait", "--for=condition=Ready", "node", "-l", f"gpupool.io/pool={pool}", "--timeout=300s"
    )
    apply(
        [
            {
                "apiVersion": "gpupool.io/v1alpha1",
                "kind": "GPUPool",
                "metadata": {"name": pool},
                "spec": {
                    "nodeSelector": {"matchLabels": {"gpupool.io/pool": pool}},
                    "tenants": [{"namespace": namespace, "guaranteedGPUs": args.nodes * 8}],
                    "auction": {"intervalSeconds": 5},
                },
            }
        ]
    )
    log = open(f"/tmp/gpupool-bench-{run}.log", "wb")  # noqa: SIM115
    operator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gpupool",
            "run",
            "--pool",
            pool,
            "--lease-name",
            f"bench-{run}",
            "--metrics-port",
            "0",
            "--write-threads",
            str(args.write_threads),
        ],
        env={**os.environ, "PYTHONPATH": str(REPO / "operator")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    result: dict[str, Any] = {"nodes": args.nodes, "gpus": args.nodes * 8, "jobs": args.jobs}
    try:
        wait_until(
            lambda: (
                client.request("GET", f"/apis/gpupool.io/v1alpha1/gpupools/{pool}")
                .get("status", {})
                .get("nodes")
                == args.nodes
            ),
            timeout=120,
            what="the operator to lead and report the pool",
        )
        rss_idle = rss_mib(operator.pid)
        jobs = []
        for index in range(args.jobs):
            replicas, gpus = SHAPES[index % len(SHAPES)]
            jobs.append(job(f"j{index:04d}", namespace, pool, replicas=replicas, gpus=gpus))
        want = {j["metadata"]["name"]: j["spec"]["replicas"] for j in jobs}
        created_at: dict[str, float] = {}
        path = f"/apis/gpupool.io/v1alpha1/namespaces/{namespace}/trainingjobs"

        def create(body: dict[str, Any]) -> None:
            client.request("POST", path, body=body)
            created_at[body["metadata"]["name"]] = time.monotonic()

        cpu_before = cpu_seconds(operator.pid)
        load_before = os.getloadavg()[0]
        submitted = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool_of_writers:
            burst = [pool_of_writers.submit(create, body) for body in jobs]
            bound_at = watch_bindings(client, pool, want, deadline=submitted + 300)
            for future in burst:
                future.result()
        latencies = [bound_at[name] - created_at[name] for name in bound_at]
        result.update(
            create_all_s=round(max(created_at.values()) - submitted, 2),
            bound=len(bound_at),
            p50_s=round(statistics.median(latencies), 2),
            p99_s=round(percentile(latencies, 0.99), 2),
            max_s=round(max(latencies), 2),
            all_bound_after_s=round(max(bound_at.values()) - submitted, 2),
            gpus_requested=sum(
                r * g for r, g in (SHAPES[i % len(SHAPES)] for i in range(args.jobs))
            ),
            operator_cpu_s_for_burst=round(cpu_seconds(operator.pid) - cpu_before, 2),
            machine_load_1m=round(max(load_before, os.getloadavg()[0]), 1),
            rss_idle_mib=round(rss_idle, 1),
            rss_after_burst_mib=round(rss_mib(operator.pid), 1),
        )
        extra = [
            job(f"j{index:04d}", namespace, pool, replicas=1, gpus=8)
            for index in range(args.jobs, args.total)
        ]
        with ThreadPoolExecutor(max_workers=8) as pool_of_writers:
            list(pool_of_writers.map(lambda body: client.request("POST", path, body=body), extra))

        def explained() -> bool:
            items = client.list_custom_objects(plural="trainingjobs").items
            mine = [j for j in items if j["metadata"]["namespace"] == namespace]
            phases = [(j.get("status") or {}).get("phase") for j in mine]
            result.update(total_jobs=len(mine), queued=phases.count("Queued"))
            return len(mine) == args.total and all(p in ("Queued", "Running") for p in phases)

        waited = time.monotonic()
        wait_until(explained, timeout=300, what="every job to be Running or Queued with a reason")
        result.update(
            all_statuses_written_s=round(time.monotonic() - waited, 1),
            rss_with_total_mib=round(rss_mib(operator.pid), 1),
        )
    finally:
        operator.send_signal(signal.SIGTERM)
        try:
            operator.wait(timeout=30)
        except subprocess.TimeoutExpired:
            operator.kill()
        log.close()
        subprocess.run(
            ["kubectl", "delete", "namespace", namespace, "--wait=false"],
            capture_output=True,
            check=False,
        )
        subprocess.run(
            ["kubectl", "delete", "gpupools", pool, "--wait=false"],
            capture_output=True,
            check=False,
        )
        subprocess.run(
            ["kubectl", "delete", "node", "-l", f"gpupool.io/pool={pool}", "--wait=false"],
            capture_output=True,
            check=False,
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
