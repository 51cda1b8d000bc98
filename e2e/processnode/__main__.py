"""``python -m e2e.processnode``: run a process node until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from e2e.processnode.api import NodeApi
from e2e.processnode.kubelet import ProcessNode, state_dir_default
from e2e.processnode.node_objects import NodeConfig
from e2e.processnode.pod_process import HostContext


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m e2e.processnode")
    parser.add_argument("--node", action="append", required=True, help="node name (repeat)")
    parser.add_argument("--pool", required=True, help="gpupool.io/pool label")
    parser.add_argument("--gpus", type=int, default=2, help="nvidia.com/gpu capacity per node")
    parser.add_argument("--gpu-model", default="NVIDIA-A100-SXM4-80GB")
    parser.add_argument("--rack", default="rack-p")
    parser.add_argument("--state-dir", type=Path, default=state_dir_default())
    parser.add_argument("--python", default=sys.executable, help="runs pods' `python`")
    parser.add_argument(
        "--expose-gpus", action="store_true", help="pass gpu-indices as CUDA_VISIBLE_DEVICES"
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s processnode %(message)s"
    )
    nodes = [
        NodeConfig(name=name, pool=args.pool, gpus=args.gpus, gpu_model=args.gpu_model,
                   rack=args.rack)
        for name in args.node
    ]  # fmt: skip
    host = HostContext(
        state_dir=args.state_dir.resolve(),
        python=args.python,
        node_name=nodes[0].name,
        base_env=dict(os.environ),
        expose_gpus=args.expose_gpus,
    )
    api = NodeApi.from_kubeconfig()
    process_node = ProcessNode(api, nodes, host=host)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        process_node.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        process_node.run()
    finally:
        api.close()


main()
