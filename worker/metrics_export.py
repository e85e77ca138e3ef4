"""A worker's Prometheus exporter: `SOCIALPOST_WORKER_METRICS_PORT` on each worker.

Why an exporter port per worker rather than one multiprocess directory shared with the
API: workers and the API run on different hosts (compose services, pods), and a prefork
worker's counting happens in its pool processes, which no other host can read. So each
worker, at start (celeryd_init, before the pool forks), gives its processes a fresh
multiprocess directory of their own (prometheus_client's multiprocess mode: each process
writes a small file) and serves their sum from its main process. Prometheus scrapes every
worker there and the API's /metrics for the ledger's gauges. A port already taken (two
workers on one host) is logged and the worker runs without an exporter.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Any

import settings

log = logging.getLogger("socialpost.metrics")
_state: dict[str, Any] = {}


def start(nodename: str | None = None) -> int | None:
    """Serve this worker's metrics when SOCIALPOST_WORKER_METRICS_PORT is set; the port
    bound, or None. Call in the worker's main process before its pool starts."""
    port = settings.current().worker_metrics_port
    if not port or "port" in _state:
        return _state.get("port")
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server, values

    folder = tempfile.mkdtemp(prefix="socialpost-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder  # inherited by the pool's processes
    values.ValueClass = values.get_value_class()  # multiprocess values from now on
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder)
    try:
        server, _ = start_http_server(port, registry=registry)
    except OSError as exc:
        log.warning("worker %s: metrics port %d unavailable (%s); no exporter", nodename,
                    port, exc)
        return None
    _state.update(port=port, folder=folder, server=server)
    log.info("worker %s: Prometheus metrics on :%d/metrics", nodename, port)
    return port


def process_ended(pid: int) -> None:
    """A pool process ended: its live gauges go (its counters stay counted)."""
    if "folder" in _state:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, _state["folder"])


def stop() -> None:
    """The worker is shutting down: stop serving, remove the directory."""
    server = _state.pop("server", None)
    if server is not None:
        server.shutdown()
    folder = _state.pop("folder", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
    _state.pop("port", None)
