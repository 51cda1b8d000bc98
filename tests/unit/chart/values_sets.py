"""Non-default chart values shared by the render tests and the server-side dry run."""

from __future__ import annotations

from typing import Any

DIGEST = "sha256:" + "0123456789abcdef" * 4

NON_DEFAULT: dict[str, Any] = {
    "fullnameOverride": "gp",
    "image": {"repository": "registry.example.com/ml/gpupool", "digest": DIGEST},
    "imagePullSecrets": [{"name": "regcred"}],
    "commonLabels": {"team": "platform"},
    "operator": {
        "replicas": 2,
        "leaderElection": {"leaseName": "gpu-scheduler", "leaseDurationSeconds": 30},
        "pools": ["a100", "h100"],
        "watchNamespaces": ["team-a"],
        "telemetry": {"require": True, "staleSeconds": 60},
        "logFormat": "plain",
        "verbosity": 2,
        "extraArgs": ["--resync-seconds=120"],
        "metrics": {"port": 9090},
        "health": {"port": 9091},
        "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
    },
    "agent": {
        "nodeSelector": {"gpupool.io/pool": "a100"},
        "runtimeClassName": "nvidia",
        "health": {"maxTemperatureC": 85, "evictOnXid": [48, 79]},
        "metrics": {"port": 9500},
        "maxUnavailable": "10%",
    },
    "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "kps"}},
    "dashboards": {"folder": "GPU", "labelValue": "yes"},
    "samplePool": {
        "enabled": True,
        "name": "a100",
        "spec": {
            "nodeSelector": {"matchLabels": {"gpupool.io/pool": "a100"}},
            "tenants": [{"namespace": "team-a", "guaranteedGPUs": 8, "maxGPUs": 16}],
        },
    },
}
