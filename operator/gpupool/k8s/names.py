"""Names shared by everything the operator writes: API group, labels, annotations.

Label values and object names derived from user object names go through
:func:`dns_label` so a long or dotted job name still yields valid pod hostnames
and Service names.
"""

from __future__ import annotations

import hashlib
import re

GROUP = "gpupool.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

POOL_PLURAL = "gpupools"
TRAINING_JOB_PLURAL = "trainingjobs"
INFERENCE_SERVICE_PLURAL = "inferenceservices"
POOL_KIND = "GPUPool"
TRAINING_JOB_KIND = "TrainingJob"
INFERENCE_SERVICE_KIND = "InferenceService"

SCHEDULER_NAME = "gpupool"
"""``spec.schedulerName`` of every pod the operator creates: it binds them itself."""
COMPONENT = "gpupool"
"""``source.component`` / ``reportingComponent`` of Events and the field manager."""

DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"

# Labels on pods and Services the operator creates.
LABEL_POOL = f"{GROUP}/pool"
"""Also the node label that puts a node into a pool (see GPUPool.spec.nodeSelector)."""
LABEL_JOB = f"{GROUP}/job"
LABEL_SERVICE = f"{GROUP}/inference-service"
LABEL_REPLICA = f"{GROUP}/replica"
LABEL_ATTEMPT = f"{GROUP}/attempt"
LABEL_ROLE = f"{GROUP}/role"
ROLE_WORKER = "worker"
ROLE_INFERENCE = "inference"

# Node labels written by the cluster setup / node feature discovery.
NODE_LABEL_GPU_MODEL = f"{GROUP}/gpu-model"
NODE_LABEL_NVLINK_DOMAIN = f"{GROUP}/nvlink-domain"
NODE_LABEL_RACK = f"{GROUP}/rack"

# Annotations on pods the operator creates.
ANNOTATION_GPU_INDICES = f"{GROUP}/gpu-indices"
"""Comma-separated host GPU indices the replica owns (for the device plugin / node agent)."""
ANNOTATION_ASSIGNED_NODE = f"{GROUP}/assigned-node"
"""The node the core chose; lets a restarted operator finish a half-done bind."""
ANNOTATION_GPU_MEMORY_MIB = f"{GROUP}/gpu-memory-mib"
ANNOTATION_GPU_FRACTION = f"{GROUP}/gpu-fraction"

# Annotation on nodes written by the node agent.
ANNOTATION_TELEMETRY = f"{GROUP}/telemetry"

# Annotation on workloads: an optional duration hint for the fairness agent.
ANNOTATION_EXPECTED_DURATION = f"{GROUP}/expected-duration-seconds"

CHECKPOINT_VOLUME = "gpupool-checkpoint"

_MAX_LABEL = 63
_INVALID = re.compile(r"[^a-z0-9-]+")
_LABEL = re.compile(r"[a-z]([a-z0-9-]*[a-z0-9])?")


def dns_label(name: str, *, max_length: int = _MAX_LABEL) -> str:
    """``name`` as an RFC 1035 label (lower case, ``[a-z0-9-]``, starts with a letter).

    Names that already are such a label are returned unchanged; others are
    cleaned, cut, and suffixed with a short hash of the original so that two
    different names never map to the same label.
    """
    if _LABEL.fullmatch(name) and len(name) <= max_length:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    cleaned = _INVALID.sub("-", name.lower()).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"x{cleaned}"
    head = cleaned[: max_length - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}"


_LABEL_VALUE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def label_value(name: str) -> str:
    """``name`` as a label value (at most 63 characters), hashed when too long."""
    if len(name) <= _MAX_LABEL and (not name or _LABEL_VALUE.fullmatch(name)):
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    head = re.sub(r"[^-A-Za-z0-9_.]", "-", name)[: _MAX_LABEL - len(digest) - 1]
    head = head.strip("-_.")
    return f"{head}-{digest}" if head else digest
