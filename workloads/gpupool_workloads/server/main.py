"""Entry point of the inference server: listen at once, load in the background, drain."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence

import torch
from prometheus_client import start_http_server

from gpupool_workloads import contract
from gpupool_workloads.errors import ConfigError
from gpupool_workloads.logs import configure_logging
from gpupool_workloads.preemption import PreemptionFlag, main_thread_receives_stop_signals
from gpupool_workloads.server.app import InferenceApp
from gpupool_workloads.server.config import ServerConfig, parse_config
from gpupool_workloads.server.http_api import make_server
from gpupool_workloads.server.loader import (
    load_model,
    pick_device,
    resolve_model_path,
    wait_for_model_file,
)
from gpupool_workloads.server.metrics import InferenceMetrics

log = logging.getLogger("gpupool.server")


def _load(config: ServerConfig, app: InferenceApp, stop: PreemptionFlag, failed: list[str]) -> None:
    """Wait for the model, load it, hand it to the app; on failure, ask main to exit."""
    try:
        path = resolve_model_path(config.model_uri, mount_root=config.model_mount_root)
        found = wait_for_model_file(path, timeout_seconds=config.model_wait_seconds, stop=stop)
        if found is None:
            return
        started = time.monotonic()
        model = load_model(found, device=pick_device(config.device), input_shape=config.input_shape)
        app.set_model(model)
        log.info(
            "ready: model=%s kind=%s step=%s from %s in %.2fs",
            model.name,
            model.kind,
            model.step,
            found,
            time.monotonic() - started,
        )
    except Exception as error:
        log.exception("loading the model failed")
        app.set_load_error(str(error))
        failed.append(str(error))
        stop.request("model load failed")


def run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    configure_logging("server")
    try:
        config = parse_config(argv, environ)
    except ConfigError as error:
        log.error("configuration: %s", error)
        return contract.EXIT_USAGE
    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    stop = PreemptionFlag()
    stop.install()
    metrics = InferenceMetrics.create()
    app = InferenceApp(
        metrics,
        max_batch_size=config.max_batch_size,
        max_wait_seconds=config.max_wait_ms / 1000,
        max_queue_rows=config.max_queue_rows,
        request_timeout_seconds=config.request_timeout_seconds,
        torch_threads=config.torch_threads,
    )
    httpd = make_server(app, config.host, config.port)
    failed: list[str] = []
    with main_thread_receives_stop_signals():
        threading.Thread(target=httpd.serve_forever, name="http", daemon=True).start()
        if config.metrics_port:
            start_http_server(config.metrics_port, registry=metrics.registry)
        loader = threading.Thread(target=_load, args=(config, app, stop, failed), daemon=True)
        loader.start()
    log.info(
        "listening on %s:%d (max_batch_size=%d max_wait_ms=%g), loading %s",
        config.host,
        httpd.server_address[1],
        config.max_batch_size,
        config.max_wait_ms,
        config.model_uri,
    )
    stop.wait()
    log.info("stopping (%s): readiness off, draining", stop.signal_name)
    app.start_draining()
    if config.drain_seconds > 0 and not failed:
        threading.Event().wait(config.drain_seconds)  # endpoints controllers catch up
    httpd.shutdown()  # stop accepting
    httpd.server_close()  # wait for requests in flight
    app.stop_batcher()
    log.info("drained, exiting")
    return contract.EXIT_FAILED if failed else contract.EXIT_SUCCEEDED


def main() -> None:
    sys.exit(run(sys.argv[1:], os.environ))
