"""Local Kubernetes control plane for gpupool's integration and e2e tests.

Real components, built from Go modules by ``e2e/build-tools.sh`` into a cache directory:
etcd, kube-apiserver (TLS on 127.0.0.1, RBAC on), kube-controller-manager,
kube-scheduler and kwok, which plays the kubelet for fake GPU nodes carrying
``nvidia.com/gpu``.

    e2e/cluster.sh up [--nodes 4] [--gpus-per-node 8] [--pool a100]
    e2e/cluster.sh env        # eval "$(e2e/cluster.sh env)"
    e2e/cluster.sh status
    e2e/cluster.sh down [--keep-data]

Only the standard library is used, so any python3 can run it. ``up`` is idempotent:
a running, healthy control plane is reused and only missing nodes are added.
``down`` stops only the processes this tool started, by the PIDs it recorded,
kwok first and etcd last.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("GPUPOOL_CACHE", Path.home() / ".cache" / "gpupool"))
BIN = CACHE / "bin"
STATE = Path(os.environ.get("GPUPOOL_CLUSTER_DIR", CACHE / "cluster"))
PKI = STATE / "pki"
LOGS = STATE / "logs"
PIDS = STATE / "pids"

# Stop order: dependants first, etcd last.
COMPONENTS = ("kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd")


@dataclass(frozen=True)
class Ports:
    etcd_client: int = int(os.environ.get("GPUPOOL_ETCD_PORT", "23790"))
    etcd_peer: int = int(os.environ.get("GPUPOOL_ETCD_PEER_PORT", "23800"))
    apiserver: int = int(os.environ.get("GPUPOOL_APISERVER_PORT", "16443"))
    controller_manager: int = int(os.environ.get("GPUPOOL_KCM_PORT", "20257"))
    scheduler: int = int(os.environ.get("GPUPOOL_SCHEDULER_PORT", "20259"))
    kwok: int = int(os.environ.get("GPUPOOL_KWOK_PORT", "20247"))


PORTS = Ports()


def log(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


def wait_for(
    condition: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise SystemExit(f"[cluster] timed out after {timeout:.0f}s waiting for {what}")


# --------------------------------------------------------------------------- PKI


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_cert(name: str, subject: str, *, server_sans: str | None = None) -> None:
    key, csr, crt = PKI / f"{name}.key", PKI / f"{name}.csr", PKI / f"{name}.crt"
    if crt.exists():
        return
    openssl("genrsa", "-out", str(key), "2048")
    openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
    ext = PKI / f"{name}.ext"
    usage = "serverAuth" if server_sans else "clientAuth"
    lines = [
        "basicConstraints=CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={usage}",
    ]
    if server_sans:
        lines.append(f"subjectAltName={server_sans}")
    ext.write_text("\n".join(lines) + "\n")
    openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(PKI / "ca.crt"),
        "-CAkey", str(PKI / "ca.key"), "-CAcreateserial", "-days", "3650",
        "-extfile", str(ext), "-out", str(crt),
    )  # fmt: skip


def make_pki() -> None:
    PKI.mkdir(parents=True, exist_ok=True)
    if not (PKI / "ca.crt").exists():
        openssl("genrsa", "-out", str(PKI / "ca.key"), "2048")
        openssl(
            "req", "-x509", "-new", "-key", str(PKI / "ca.key"), "-days", "3650",
            "-subj", "/CN=gpupool-local-ca", "-out", str(PKI / "ca.crt"),
        )  # fmt: skip
    sans = (
        "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
        "DNS:kubernetes.default.svc.cluster.local"
    )
    make_cert("apiserver", "/CN=kube-apiserver", server_sans=sans)
    make_cert("admin", "/O=system:masters/CN=gpupool-admin")
    make_cert("controller-manager", "/CN=system:kube-controller-manager")
    make_cert("scheduler", "/CN=system:kube-scheduler")
    make_cert("kwok", "/O=system:masters/CN=kwok")
    if not (PKI / "sa.key").exists():
        openssl("genrsa", "-out", str(PKI / "sa.key"), "2048")
        openssl("rsa", "-in", str(PKI / "sa.key"), "-pubout", "-out", str(PKI / "sa.pub"))


def server_url() -> str:
    return f"https://127.0.0.1:{PORTS.apiserver}"


def write_kubeconfig(user: str) -> Path:
    path = STATE / f"{user}.kubeconfig"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "gpupool-local",
                "cluster": {
                    "server": server_url(),
                    "certificate-authority": str(PKI / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(PKI / f"{user}.crt"),
                    "client-key": str(PKI / f"{user}.key"),
                },
            }
        ],
        "contexts": [
            {"name": "gpupool-local", "context": {"cluster": "gpupool-local", "user": user}}
        ],
        "current-context": "gpupool-local",
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is valid YAML
    return path


def admin_kubeconfig() -> Path:
    return STATE / "admin.kubeconfig"


# --------------------------------------------------------------------- processes


def pid_of(component: str) -> int | None:
    path = PIDS / component
    if not path.exists():
        return None
    pid = int(path.read_text().strip())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    # Guard against PID reuse: the process must still be our binary.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return None
    return pid if Path(cmdline).name == component else None


def start(component: str, args: list[str]) -> None:
    if pid_of(component):
        return
    binary = BIN / component
    if not binary.exists():
        raise SystemExit(f"[cluster] {binary} is missing: run e2e/build-tools.sh first")
    LOGS.mkdir(parents=True, exist_ok=True)
    PIDS.mkdir(parents=True, exist_ok=True)
    with (LOGS / f"{component}.log").open("ab") as out:
        proc = subprocess.Popen(
            [str(binary), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (PIDS / component).write_text(str(proc.pid))
    log(f"started {component} (pid {proc.pid}, log {LOGS / component}.log)")


def stop(component: str, *, timeout: float = 20.0) -> None:
    pid = pid_of(component)
    (PIDS / component).unlink(missing_ok=True)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log(f"stopped {component} (pid {pid})")
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    log(f"killed {component} (pid {pid}) after {timeout:.0f}s")


def https_ok(url: str) -> bool:
    context = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
    context.load_cert_chain(str(PKI / "admin.crt"), str(PKI / "admin.key"))
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def kubectl(*args: str, input_text: str | None = None) -> str:
    result = subprocess.run(
        [str(BIN / "kubectl"), f"--kubeconfig={admin_kubeconfig()}", *args],
        input=input_text,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"[cluster] kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


# ------------------------------------------------------------------- components


def start_etcd() -> None:
    peer = f"http://127.0.0.1:{PORTS.etcd_peer}"
    client = f"http://127.0.0.1:{PORTS.etcd_client}"
    start(
        "etcd",
        [
            "--name=gpupool",
            f"--data-dir={STATE / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=gpupool={peer}",
            "--unsafe-no-fsync=true",
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ],
    )
    wait_for(lambda: http_ok(f"{client}/health"), timeout=30, what="etcd /health")


def start_apiserver() -> None:
    start(
        "kube-apiserver",
        [
            f"--etcd-servers=http://127.0.0.1:{PORTS.etcd_client}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={PORTS.apiserver}",
            f"--tls-cert-file={PKI / 'apiserver.crt'}",
            f"--tls-private-key-file={PKI / 'apiserver.key'}",
            f"--client-ca-file={PKI / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-key-file={PKI / 'sa.pub'}",
            f"--service-account-signing-key-file={PKI / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--allow-privileged=true",
            "--profiling=false",
            "--event-ttl=1h",
            "--v=1",
        ],
    )
    wait_for(lambda: https_ok(f"{server_url()}/readyz"), timeout=90, what="kube-apiserver /readyz")


def start_controller_manager() -> None:
    kubeconfig = write_kubeconfig("controller-manager")
    start(
        "kube-controller-manager",
        [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={PORTS.controller_manager}",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={PKI / 'sa.key'}",
            f"--root-ca-file={PKI / 'ca.crt'}",
            f"--cluster-signing-cert-file={PKI / 'ca.crt'}",
            f"--cluster-signing-key-file={PKI / 'ca.key'}",
            # Nodes are kwok's; no cloud, no IPAM.
            "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller",
            "--v=1",
        ],
    )


def start_scheduler() -> None:
    kubeconfig = write_kubeconfig("scheduler")
    start(
        "kube-scheduler",
        [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={PORTS.scheduler}",
            "--leader-elect=false",
            "--v=1",
        ],
    )


def start_kwok() -> None:
    kubeconfig = write_kubeconfig("kwok")
    start(
        "kwok",
        [
            f"--kubeconfig={kubeconfig}",
            f"--config={REPO / 'e2e' / 'kwok' / 'pod-stages.yaml'}",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-lease-duration-seconds=40",
            "--cidr=10.244.0.0/16",
            "--node-ip=10.240.0.1",
            f"--server-address=127.0.0.1:{PORTS.kwok}",
        ],
    )


# ------------------------------------------------------------------------ nodes


def node_manifest(
    index: int, *, gpus: int, pool: str, gpu_model: str, nodes_per_rack: int
) -> dict[str, object]:
    name = f"gpu-node-{index:03d}"
    capacity = {"cpu": "96", "memory": "1Ti", "pods": "110", "nvidia.com/gpu": str(gpus)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "gpupool.io/pool": pool,
                "gpupool.io/gpu-model": gpu_model,
                "gpupool.io/nvlink-domain": f"{name}-nvl0",
                "gpupool.io/rack": f"rack-{index // nodes_per_rack}",
                "nvidia.com/gpu.count": str(gpus),
            },
        },
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def ensure_nodes(*, count: int, gpus: int, pool: str, gpu_model: str) -> None:
    items = [
        node_manifest(i, gpus=gpus, pool=pool, gpu_model=gpu_model, nodes_per_rack=4)
        for i in range(count)
    ]
    kubectl(
        "apply",
        "-f",
        "-",
        input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
    )
    kubectl("wait", "--for=condition=Ready", "node", "-l", "type=kwok", "--timeout=120s")


def ensure_default_service_account() -> None:
    def exists() -> bool:
        result = subprocess.run(
            [str(BIN / "kubectl"), f"--kubeconfig={admin_kubeconfig()}", "get", "sa", "default"],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    wait_for(exists, timeout=60, what="the default ServiceAccount (kube-controller-manager)")


# ---------------------------------------------------------------------- commands


def healthy() -> bool:
    return pid_of("kube-apiserver") is not None and https_ok(f"{server_url()}/readyz")


def cmd_up(args: argparse.Namespace) -> None:
    started = time.monotonic()
    for binary in ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "kwok"):
        if not (BIN / binary).exists():
            log(f"{BIN / binary} missing; building tools (first run takes a while)")
            subprocess.run(["bash", str(REPO / "e2e" / "build-tools.sh")], check=True)
            break
    STATE.mkdir(parents=True, exist_ok=True)
    make_pki()
    write_kubeconfig("admin")
    start_etcd()
    start_apiserver()
    start_controller_manager()
    if not args.no_scheduler:
        start_scheduler()
    start_kwok()
    ensure_nodes(
        count=args.nodes, gpus=args.gpus_per_node, pool=args.pool, gpu_model=args.gpu_model
    )
    ensure_default_service_account()
    elapsed = time.monotonic() - started
    log(f"ready in {elapsed:.1f}s: {args.nodes} nodes x {args.gpus_per_node} GPUs")
    log(f'use it: eval "$({REPO / "e2e" / "cluster.sh"} env)"')


def cmd_down(args: argparse.Namespace) -> None:
    for component in COMPONENTS:
        stop(component)
    if not args.keep_data and STATE.exists():
        shutil.rmtree(STATE / "etcd", ignore_errors=True)
        log(f"removed etcd data in {STATE / 'etcd'}")


def cmd_status(_: argparse.Namespace) -> None:
    for component in reversed(COMPONENTS):
        pid = pid_of(component)
        print(f"{component:26} {'running pid ' + str(pid) if pid else 'stopped'}")
    if healthy():
        print(f"apiserver                  ready at {server_url()}")
        print(kubectl("get", "nodes", "-L", "gpupool.io/pool", "--no-headers").rstrip())
    else:
        raise SystemExit(1)


def cmd_env(_: argparse.Namespace) -> None:
    print(f"export KUBECONFIG={admin_kubeconfig()}")
    print(f'export PATH="{BIN}:$PATH"')
    print(f"export GPUPOOL_CLUSTER_DIR={STATE}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="e2e/cluster.sh", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start (or reuse) the control plane and fake GPU nodes")
    up.add_argument("--nodes", type=int, default=int(os.environ.get("GPUPOOL_NODES", "4")))
    up.add_argument(
        "--gpus-per-node", type=int, default=int(os.environ.get("GPUPOOL_GPUS_PER_NODE", "8"))
    )
    up.add_argument("--pool", default="a100", help="value of the gpupool.io/pool node label")
    up.add_argument("--gpu-model", default="NVIDIA-A100-SXM4-80GB")
    up.add_argument("--no-scheduler", action="store_true", help="do not start kube-scheduler")
    up.set_defaults(func=cmd_up)
    down = commands.add_parser("down", help="stop what `up` started (by PID)")
    down.add_argument("--keep-data", action="store_true", help="keep etcd's data directory")
    down.set_defaults(func=cmd_down)
    commands.add_parser("status", help="show components and nodes").set_defaults(func=cmd_status)
    commands.add_parser("env", help="print shell exports").set_defaults(func=cmd_env)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
