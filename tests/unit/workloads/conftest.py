"""Workload tests need torch (``make install`` installs it with the ``workloads`` extra).

Without torch, only the tests of the launcher's pure parts are collected.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

TORCH_FREE = {
    "test_launch_plan.py",
    "test_processnode_mapping.py",
    "test_termination_message.py",
}

if importlib.util.find_spec("torch") is None:
    collect_ignore = [
        path.name for path in Path(__file__).parent.glob("test_*.py") if path.name not in TORCH_FREE
    ]
