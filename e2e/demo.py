"""``make demo``: the operator schedules a realistic mix on the local control plane.

Creates 8 fake 8-GPU nodes (kwok) in a GPUPool ``demo`` shared by three tenant
namespaces, starts ``gpupool run`` against it, submits training gangs of three
tiers with and without bids, plus one InferenceService, lets kwok finish each
training pod after its annotated duration, and prints what got scheduled where,
at what price, and why the rest waits, until every training job is done. Then
it stops the operator and removes what it created (``--keep`` leaves it).

Needs the environment of ``e2e/cluster.sh env`` (``make demo`` provides it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "operator"))

from gpupool.status_report import render  # noqa: E402

POOL = "demo"
NODES = 8
TENANTS = {
    "research": {"guaranteedGPUs": 24, "maxGPUs": 56, "credits": {"perHour": 40, "max": 60}},
    "product": {"guaranteedGPUs": 24, "credits": {"perHour": 20, "max": 30}},
    "interns": {"guaranteedGPUs": 0, "maxGPUs": 16, "credits": {"perHour": 10, "max": 10}},
}


def kubectl(*args: str, input_text: str | None = None, check: bool = True) -> str:
    result = subprocess.run(
        ["kubectl", *args], input=input_text, capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def apply(items: Sequence[dict[str, Any]]) -> None:
    kubectl(
        "apply",
        "-f",
        "-",
        input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items)}),
    )


def node(index: int) -> dict[str, Any]:
    name = f"demo-node-{index:02d}"
    capacity = {"cpu": "96", "memory": "1Ti", "pods": "110", "nvidia.com/gpu": "8"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "gpupool.io/pool": POOL,
                "gpupool.io/gpu-model": "NVIDIA-H100-80GB-HBM3",
                "gpupool.io/rack": f"rack-{index // 4}",
            },
        },
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def pool() -> dict[str, Any]:
    return {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "GPUPool",
        "metadata": {"name": POOL},
        "spec": {
            "nodeSelector": {"matchLabels": {"gpupool.io/pool": POOL}},
            "tenants": [{"namespace": name, **terms} for name, terms in TENANTS.items()],
            "auction": {"intervalSeconds": 2, "reservePricePerGPUHour": 0.1},
            "preemption": {"gracePeriodSeconds": 5, "minRuntimeSeconds": 10},
        },
    }


def job(
    name: str,
    tenant: str,
    *,
    replicas: int,
    gpus: int,
    tier: str,
    seconds: int,
    bid: float | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "pool": POOL,
        "priorityClass": tier,
        "replicas": replicas,
        "gpusPerReplica": gpus,
        "checkpoint": {"path": "/ckpt", "everySeconds": 60},
        "template": {
            "metadata": {
                "annotations": {
                    "gpupool.io/complete-after": f"{seconds}s",
                    "gpupool.io/terminate-after": "2s",
                }
            },
            "spec": {
                "containers": [
                    {
                        "name": "trainer",
                        "image": "gpupool/workloads:dev",
                        "command": ["python", "-m", "gpupool_workloads.launch", "--"],
                        "args": ["--model", "mlp", "--epochs", "3"],
                    }
                ]
            },
        },
    }
    if bid is not None:
        spec["bid"] = {"maxPricePerGPUHour": bid}
    return {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {
            "name": name,
            "namespace": tenant,
            "annotations": {"gpupool.io/expected-duration-seconds": str(seconds)},
        },
        "spec": spec,
    }


def inference_service() -> dict[str, Any]:
    return {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "chat-api", "namespace": "product"},
        "spec": {
            "pool": POOL,
            "priorityClass": "high",
            "replicas": 3,
            "minReplicas": 1,
            "maxReplicas": 8,
            "gpusPerReplica": 1,
            "model": {"uri": "pvc://models/chat.pt"},
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "gpupool/workloads:dev",
                            "command": ["python", "-m", "gpupool_workloads.server"],
                            "ports": [{"containerPort": 8080}],
                        }
                    ]
                }
            },
        },
    }


FIRST_WAVE = [
    job("llm-pretrain", "research", replicas=3, gpus=8, tier="normal", seconds=70),
    job("ranker", "product", replicas=2, gpus=8, tier="normal", seconds=40),
    job("ablation-a", "research", replicas=1, gpus=4, tier="low", seconds=25, bid=0.5),
    job("ablation-b", "research", replicas=1, gpus=4, tier="low", seconds=35, bid=0.5),
    job("sweep", "research", replicas=2, gpus=8, tier="normal", seconds=30, bid=3.0),
    job("hparam-1", "interns", replicas=1, gpus=2, tier="low", seconds=20, bid=2.0),
    job("hparam-2", "interns", replicas=1, gpus=2, tier="low", seconds=20, bid=0.2),
    job("hparam-3", "interns", replicas=1, gpus=4, tier="low", seconds=30),
    job("finetune", "interns", replicas=2, gpus=4, tier="low", seconds=25, bid=1.0),
]
SECOND_WAVE = [job("hotfix", "product", replicas=2, gpus=8, tier="high", seconds=20)]


def phases() -> dict[str, str]:
    items = json.loads(kubectl("get", "trainingjobs", "-A", "-o", "json"))["items"]
    return {
        f"{j['metadata']['namespace']}/{j['metadata']['name']}": (j.get("status") or {}).get(
            "phase", "-"
        )
        for j in items
        if j["spec"].get("pool") == POOL
    }


def summary(started: float) -> str:
    pools = json.loads(kubectl("get", "gpupools", "-o", "json"))["items"]
    jobs = json.loads(kubectl("get", "trainingjobs", "-A", "-o", "json"))["items"]
    services = json.loads(kubectl("get", "inferenceservices", "-A", "-o", "json"))["items"]
    body = render(pools, jobs, services, pool=POOL)
    return f"=== t+{time.monotonic() - started:4.0f}s " + "=" * 60 + f"\n{body}\n"


def final_report() -> str:
    jobs = json.loads(kubectl("get", "trainingjobs", "-A", "-o", "json"))["items"]
    lines = [
        "",
        "Finished jobs:",
        f"{'JOB':28} {'TIER':7} {'PHASE':10} {'PREEMPTED':9} {'CREDITS':>8}  WHERE",
    ]
    for j in sorted(jobs, key=lambda j: j["metadata"]["creationTimestamp"]):
        if j["spec"].get("pool") != POOL:
            continue
        status = j.get("status") or {}
        where = ",".join(sorted({p["node"] for p in status.get("placement") or []}))
        lines.append(
            f"{j['metadata']['namespace'] + '/' + j['metadata']['name']:28} "
            f"{j['spec'].get('priorityClass', 'normal'):7} {status.get('phase', '-'):10} "
            f"{status.get('preemptions', 0):9} {float(status.get('creditsSpent') or 0):8.3f}  "
            f"{where}"
        )
    return "\n".join(lines)


def cleanup() -> None:
    kubectl("delete", "namespace", *TENANTS, "--wait=false", check=False)
    kubectl("delete", "gpupools", POOL, "--wait=false", check=False)
    kubectl(
        "delete", "node", *(f"demo-node-{i:02d}" for i in range(NODES)), "--wait=false", check=False
    )


def crd_name(path: Path) -> str:
    """``crds/gpupool.io_gpupools.yaml`` -> ``crd/gpupools.gpupool.io``."""
    group, plural = path.stem.split("_", 1)
    return f"crd/{plural}.{group}"


def install_crds() -> None:
    """``kubectl apply -f crds/``, as a user would, and wait until they are served."""
    kubectl("apply", "-f", str(REPO / "crds"))
    kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        *(crd_name(path) for path in sorted((REPO / "crds").glob("*.yaml"))),
    )
    print("CRDs installed: " + ", ".join(p.name for p in sorted((REPO / "crds").glob("*.yaml"))))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between summaries")
    parser.add_argument("--keep", action="store_true", help="leave the demo objects in place")
    args = parser.parse_args(argv)
    if "KUBECONFIG" not in os.environ:
        print('demo: run through `make demo` (or eval "$(e2e/cluster.sh env)")', file=sys.stderr)
        return 2

    install_crds()
    cleanup()  # a previous run's leftovers, fully gone before we start
    for kind, names in (
        ("namespace", list(TENANTS)),
        ("gpupools", [POOL]),
        ("node", [f"demo-node-{i:02d}" for i in range(NODES)]),
    ):
        kubectl("wait", "--for=delete", kind, *names, "--timeout=120s", check=False)
    apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in TENANTS])
    apply([node(i) for i in range(NODES)])
    kubectl(
        "wait", "--for=condition=Ready", "node", "-l", f"gpupool.io/pool={POOL}", "--timeout=120s"
    )
    apply([pool()])

    log_path = Path(os.environ.get("GPUPOOL_DEMO_LOG", "/tmp/gpupool-demo-operator.log"))
    with log_path.open("wb") as log:
        operator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gpupool",
                "run",
                "--pool",
                POOL,
                "--lease-name",
                "gpupool-demo",
                "--metrics-port",
                "0",
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO / "operator")},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    print(f"operator started (pid {operator.pid}, log {log_path})")
    started = time.monotonic()
    try:
        apply([inference_service(), *FIRST_WAVE])
        print(
            f"submitted {len(FIRST_WAVE)} training jobs and 1 inference service to {NODES * 8} GPUs"
        )
        second_wave_at = started + 20
        next_summary = started
        while True:
            now = time.monotonic()
            if second_wave_at and now >= second_wave_at:
                apply(SECOND_WAVE)
                print(">>> product submits a high-tier 2x8 hotfix: lower tiers make room")
                second_wave_at = 0.0
            if now >= next_summary:
                print(summary(started), flush=True)
                next_summary = now + args.every
            states = phases()
            if (
                not second_wave_at
                and states
                and all(phase in ("Succeeded", "Failed") for phase in states.values())
            ):
                print(summary(started))
                print(final_report())
                print(f"\nall training jobs finished in {time.monotonic() - started:.0f}s")
                return 0
            if operator.poll() is not None:
                print(f"operator exited with {operator.returncode}; see {log_path}")
                return 1
            if now - started > args.timeout:
                print(f"demo timed out after {args.timeout:.0f}s: {states}")
                return 1
            time.sleep(1.0)
    finally:
        if operator.poll() is None:
            operator.send_signal(signal.SIGTERM)
            try:
                operator.wait(timeout=20)
            except subprocess.TimeoutExpired:
                operator.kill()
                operator.wait()
        if not args.keep:
            cleanup()


if __name__ == "__main__":
    raise SystemExit(main())
