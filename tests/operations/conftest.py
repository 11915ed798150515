"""Loopback HTTP helpers: a webhook receiver, and a stand-in for the service's /readyz and /metrics."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

# The service's own buckets (bentos/asr/service.py), so quantiles are interpolated on the same edges.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)


class LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1:<free port> in a daemon thread; `routes` maps GET paths to bodies,
    POSTs are recorded (path, headers, body) and answered with `post_status`."""

    def __init__(self, post_status: int = 200):
        self.received: list[dict] = []
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.post_status = post_status
        self._cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer._cond:
                    outer.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    outer._cond.notify_all()
                self.send_response(outer.post_status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                status, body = outer.routes.get(self.path, (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, n: int, timeout_s: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self.received) < n and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            return list(self.received)

    def json_bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.received]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = LoopbackServer()
    yield server
    server.close()


def closed_port() -> int:
    """A port nothing listens on (bound, then released: connecting to it is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics_text(spec: dict[str, dict], endpoints: dict[str, list[tuple[int, float]]] | None = None) -> str:
    """Prometheus text as the service exposes it, produced by prometheus_client itself.

    spec: {model_version: {"ok": n, "server_error": n, "client_error": n, "latencies": [seconds...],
    "traffic": "live"}}; endpoints: {path: [(http status, seconds), ...]} for BentoML's HTTP histogram."""
    registry = CollectorRegistry()
    requests = Counter("asr_requests", "requests", ["model_version", "outcome", "traffic"], registry=registry)
    latency = Histogram("asr_request_duration_seconds", "latency", ["model_version", "traffic"],
                        buckets=LATENCY_BUCKETS, registry=registry)
    for version, s in spec.items():
        traffic = s.get("traffic", "live")
        for outcome in ("ok", "server_error", "client_error"):
            if s.get(outcome):
                requests.labels(version, outcome, traffic).inc(s[outcome])
        for x in s.get("latencies", []):
            latency.labels(version, traffic).observe(x)
    if endpoints:
        http = Histogram("bentoml_service_request_duration_seconds", "http",
                         ["endpoint", "service_name", "service_version", "http_response_code"], registry=registry)
        for path, calls in endpoints.items():
            for code, seconds in calls:
                http.labels(path, "asr", "1", str(code)).observe(seconds)
    return generate_latest(registry).decode()
