"""HTTP routes over :class:`InferenceApp`: predict, health, readiness, metrics, model info.

Every response closes its connection (HTTP/1.0 style), so a drain only waits for
requests in flight, never for idle keep-alive connections.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import TimeoutError as FutureTimeout
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gpupool_workloads.server.app import BadRequest, InferenceApp
from gpupool_workloads.server.batcher import Unavailable

log = logging.getLogger("gpupool.server")

MAX_BODY_BYTES = 64 * 1024 * 1024


class InferenceHTTPServer(ThreadingHTTPServer):
    """One thread per request; ``server_close`` waits for all of them (the drain)."""

    daemon_threads = False
    block_on_close = True
    request_queue_size = 128


class InferenceHandler(BaseHTTPRequestHandler):
    app: ClassVar[InferenceApp]
    server_version = "gpupool-inference/1"
    timeout = 30  # seconds a client may take to send its request

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("client %s left before its answer", self.address_string())

    def _json(self, status: HTTPStatus, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._json(HTTPStatus.OK, {"status": "ok"})
        elif self.path == "/readyz":
            readiness = self.app.readiness()
            status = HTTPStatus.OK if readiness.ready else HTTPStatus.SERVICE_UNAVAILABLE
            self._json(status, {"ready": readiness.ready, "reason": readiness.reason})
        elif self.path == "/metrics":
            self._send(
                HTTPStatus.OK, generate_latest(self.app.metrics.registry), CONTENT_TYPE_LATEST
            )
        elif self.path == "/v1/model":
            try:
                self._json(HTTPStatus.OK, self.app.model_info())
            except Unavailable as error:
                self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(error)})
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:
        if self.path != "/v1/predict":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})
            return
        metrics = self.app.metrics
        metrics.in_flight.inc()
        started = time.monotonic()
        status = HTTPStatus.INTERNAL_SERVER_ERROR
        try:
            status, payload = self._predict()
            self._json(status, payload)
        finally:
            metrics.in_flight.dec()
            metrics.request_seconds.observe(time.monotonic() - started)
            metrics.requests.labels(code=str(int(status))).inc()

    def _predict(self) -> tuple[HTTPStatus, Any]:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return HTTPStatus.BAD_REQUEST, {"error": "bad Content-Length"}
        if length > MAX_BODY_BYTES:
            return HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"body over {MAX_BODY_BYTES}"}
        try:
            body = json.loads(self.rfile.read(length))
            return HTTPStatus.OK, {"outputs": self.app.predict(body)}
        except json.JSONDecodeError as error:
            return HTTPStatus.BAD_REQUEST, {"error": f"body is not JSON: {error}"}
        except BadRequest as error:
            return HTTPStatus.BAD_REQUEST, {"error": str(error)}
        except Unavailable as error:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(error)}
        except FutureTimeout:
            return HTTPStatus.GATEWAY_TIMEOUT, {"error": "the model did not answer in time"}
        except Exception as error:
            log.exception("prediction failed")
            return HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"prediction failed: {error}"}


def make_server(app: InferenceApp, host: str, port: int) -> InferenceHTTPServer:
    handler = type("BoundInferenceHandler", (InferenceHandler,), {"app": app})
    return InferenceHTTPServer((host, port), handler)
