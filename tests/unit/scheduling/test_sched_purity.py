"""The scheduling core stays pure: no cluster, telemetry or metrics libraries, no clock."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import gpupool.scheduling

CORE = Path(gpupool.scheduling.__file__).parent
FORBIDDEN_MODULES = {
    "kopf",
    "kubernetes",
    "pynvml",
    "prometheus_client",
    "time",
    "datetime",
    "random",
    "os",
    "socket",
    "subprocess",
    "threading",
    "asyncio",
}
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "time_ns"}


def core_modules() -> list[Path]:
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) >= 10, f"expected the core's modules under {CORE}"
    return modules


def test_core_imports_nothing_forbidden() -> None:
    offenders: list[str] = []
    for path in core_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in FORBIDDEN_MODULES:
                    offenders.append(f"{path.name}:{node.lineno} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_core_never_calls_a_clock() -> None:
    offenders: list[str] = []
    for path in core_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in CLOCK_CALLS:
                    offenders.append(f"{path.name}:{node.lineno} calls {name}()")
    assert not offenders, "\n".join(offenders)


def test_importing_the_core_loads_no_forbidden_module() -> None:
    # The interpreter itself loads os, time and friends; check the heavy libraries.
    heavy = sorted({"kopf", "kubernetes", "pynvml", "prometheus_client"})
    code = (
        "import sys, gpupool.scheduling, gpupool.scheduling.cycle;"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r});"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "", f"loaded: {result.stdout.strip()}"
