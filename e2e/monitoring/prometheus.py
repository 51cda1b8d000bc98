"""Debian's ``prometheus`` scraping a locally-run gpupool operator and node agent.

Used by ``tests/integration/test_monitoring.py``; also runnable by hand beside
``gpupool run`` and ``gpupool-agent``::

    python e2e/monitoring/prometheus.py --operator 127.0.0.1:8080 --agent 127.0.0.1:9400

It writes a config (one job per component, static targets, a short scrape interval),
starts ``prometheus`` on a loopback port with its TSDB in a scratch directory,
waits for ``/-/ready`` and stops the process it started (by its PID) on exit.
The binaries come from the Debian package: ``apt-get install prometheus`` (it
brings ``promtool`` too).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

SCRAPE_INTERVAL_S = 1


class PrometheusError(RuntimeError):
    """Prometheus did not start, or answered a query with an error."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def scrape_config(
    targets: Mapping[str, Sequence[str]], *, interval_s: int = SCRAPE_INTERVAL_S
) -> dict[str, Any]:
    """A Prometheus config scraping ``/metrics`` of each job's ``host:port`` targets."""
    return {
        "global": {
            "scrape_interval": f"{interval_s}s",
            "scrape_timeout": f"{interval_s}s",
            "evaluation_interval": f"{interval_s}s",
        },
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": "/metrics",
                # The agent's per-GPU series carry their own `node` label.
                "honor_labels": True,
                "static_configs": [{"targets": list(hosts)}],
            }
            for job, hosts in targets.items()
        ],
    }


class Prometheus:
    """A running ``prometheus`` process; a context manager that stops it."""

    def __init__(
        self,
        targets: Mapping[str, Sequence[str]],
        *,
        workdir: Path,
        binary: str | None = None,
        interval_s: int = SCRAPE_INTERVAL_S,
    ) -> None:
        found = binary or shutil.which("prometheus")
        if found is None:
            raise PrometheusError("prometheus is not installed (apt-get install prometheus)")
        self.binary = found
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "prometheus.yml"
        # JSON is YAML: no YAML library needed.
        self.config_path.write_text(json.dumps(scrape_config(targets, interval_s=interval_s)))
        self.log_path = workdir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def check_config(self) -> None:
        promtool = shutil.which("promtool")
        if promtool is None:
            return
        result = subprocess.run(
            [promtool, "check", "config", str(self.config_path)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise PrometheusError(f"promtool check config: {result.stdout}{result.stderr}")

    def start(self, *, timeout_s: float = 60.0) -> Prometheus:
        self.check_config()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1h",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.started_at = time.time()
        deadline = time.monotonic() + timeout_s
        while not self._ready():
            if self.process.poll() is not None:
                raise PrometheusError(f"prometheus exited {self.process.returncode}: {self.log()}")
            if time.monotonic() > deadline:
                raise PrometheusError(f"prometheus not ready after {timeout_s:.0f}s: {self.log()}")
            time.sleep(0.2)
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def log(self, limit: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-limit:] if self.log_path.exists() else ""

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- HTTP API -------------------------------------------------------------------

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>``; the ``data`` of a success, else :class:`PrometheusError`."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            body = json.loads(error.read() or b"{}")
            raise PrometheusError(f"{path} {params}: {body.get('error', error)}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_range(
        self, expr: str, *, start: float, end: float, step_s: float
    ) -> list[dict[str, Any]]:
        data = self.api(
            "query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step_s}s"
        )
        result: list[dict[str, Any]] = data["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        data = self.api("targets", state="active")
        active: list[dict[str, Any]] = data["activeTargets"]
        return active


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operator", action="append", default=[], help="host:port (repeatable)")
    parser.add_argument("--agent", action="append", default=[], help="host:port (repeatable)")
    parser.add_argument("--interval-s", type=int, default=5)
    args = parser.parse_args(argv)
    targets = {"gpupool-operator": args.operator, "gpupool-agent": args.agent}
    with tempfile.TemporaryDirectory(prefix="gpupool-prometheus-") as tmp:
        prometheus = Prometheus(
            {job: hosts for job, hosts in targets.items() if hosts},
            workdir=Path(tmp),
            interval_s=args.interval_s,
        )
        with prometheus:
            print(f"prometheus on {prometheus.url} (Ctrl-C stops it)", flush=True)
            try:
                while prometheus.process is not None and prometheus.process.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
