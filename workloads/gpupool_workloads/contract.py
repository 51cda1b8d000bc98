"""The contract between the gpupool operator and the processes in its worker pods.

The operator's pod builder sets these environment variables; the launcher
(:mod:`gpupool_workloads.launch`), the trainer and the inference server read
them. ``workloads/README.md`` is the human-readable copy of this module: keep
them in step.
"""

from __future__ import annotations

from typing import Final

# --- set by the operator on every training worker pod (one pod = one node) ---
ENV_MASTER_ADDR: Final = "MASTER_ADDR"
"""DNS name of replica 0 (headless Service), where rank 0 hosts the rendezvous store."""
ENV_MASTER_PORT: Final = "MASTER_PORT"
ENV_WORLD_SIZE: Final = "WORLD_SIZE"
"""On the pod: the number of replicas (nodes). Inside a worker process: nodes x nproc."""
ENV_NODE_RANK: Final = "NODE_RANK"
ENV_NPROC_PER_NODE: Final = "NPROC_PER_NODE"
"""Worker processes per pod: an integer, or ``auto`` (one per visible GPU, else 1)."""
ENV_JOB: Final = "GPUPOOL_JOB"
"""Name of the TrainingJob (logs and the metrics info)."""
ENV_TORCH_BACKEND: Final = "GPUPOOL_TORCH_BACKEND"
"""``spec.torch.backend``: ``nccl``, ``gloo`` or ``auto`` (NCCL when a GPU is visible)."""
ENV_CHECKPOINT_DIR: Final = "GPUPOOL_CHECKPOINT_DIR"
ENV_CHECKPOINT_EVERY_SECONDS: Final = "GPUPOOL_CHECKPOINT_EVERY_SECONDS"
ENV_RESTART_COUNT: Final = "GPUPOOL_RESTART_COUNT"
"""How many times the operator restarted the gang (0 on the first attempt)."""
ENV_METRICS_PORT: Final = "GPUPOOL_METRICS_PORT"
"""Prometheus port, served by local rank 0 of each pod."""
ENV_GPU_INDICES: Final = "GPUPOOL_GPU_INDICES"
"""Comma-separated host GPU indices the pod owns (informational: logs and metrics)."""
ENV_TERMINATION_LOG: Final = "GPUPOOL_TERMINATION_LOG"
"""Overrides the termination message file the trainer writes its exit report to
(default ``/dev/termination-log``, the container's ``terminationMessagePath``)."""

# --- set by the launcher on every worker process (the same names torchrun sets) ---
ENV_RANK: Final = "RANK"
ENV_LOCAL_RANK: Final = "LOCAL_RANK"
ENV_LOCAL_WORLD_SIZE: Final = "LOCAL_WORLD_SIZE"
ENV_GROUP_RANK: Final = "GROUP_RANK"
ENV_GROUP_WORLD_SIZE: Final = "GROUP_WORLD_SIZE"

# --- inference server pods (GPUPOOL_GPU_INDICES and GPUPOOL_METRICS_PORT as above) ---
ENV_MODEL_URI: Final = "GPUPOOL_MODEL_URI"
"""``spec.model.uri``: a path or ``file://`` URI of a trainer checkpoint file, a checkpoint
directory (newest is used) or a TorchScript file; ``pvc://CLAIM/PATH`` is read at
``$GPUPOOL_MODEL_MOUNT_ROOT/CLAIM/PATH``."""
ENV_MODEL_MOUNT_ROOT: Final = "GPUPOOL_MODEL_MOUNT_ROOT"
ENV_SERVING_PORT: Final = "GPUPOOL_SERVING_PORT"
"""HTTP port of the server; the operator may leave it unset (the default is used)."""
ENV_SERVICE: Final = "GPUPOOL_SERVICE"
ENV_REPLICA: Final = "GPUPOOL_REPLICA"

DEFAULT_MASTER_PORT: Final = 29500
DEFAULT_SERVING_PORT: Final = 8080
DEFAULT_MODEL_MOUNT_ROOT: Final = "/mnt/models"
DEFAULT_CHECKPOINT_EVERY_SECONDS: Final = 600.0
DEFAULT_TERMINATION_LOG: Final = "/dev/termination-log"

# --- the trainer's exit report: one JSON line in the termination message file, which
# the kubelet copies to status.containerStatuses[].state.terminated.message ---
REPORT_LAST_CHECKPOINT_STEP: Final = "lastCheckpointStep"
"""Global step of the newest durable checkpoint this process knows of (int)."""
REPORT_LAST_CHECKPOINT_TIME: Final = "lastCheckpointTime"
"""When that checkpoint became durable: RFC 3339, UTC, whole seconds."""

# --- exit codes of the launcher, the trainer and the server ---
EXIT_SUCCEEDED: Final = 0
"""Training finished (final checkpoint written), or the server drained cleanly."""
EXIT_FAILED: Final = 1
"""Any failure. Every non-zero code other than EXIT_PREEMPTED means failed."""
EXIT_USAGE: Final = 2
"""Bad configuration (flags or environment); a restart will not help."""
EXIT_PREEMPTED: Final = 75
"""SIGTERM received and a checkpoint covering all progress is durable (EX_TEMPFAIL)."""
