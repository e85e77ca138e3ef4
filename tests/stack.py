"""Real Celery processes for tests and benchmarks: `celery -A worker worker|beat` as
subprocesses, with the environment they need, their logs kept for inspection.

Nothing here is a stand-in: the processes are the ones an operator runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Fast, deterministic settings for test stacks: short backoffs, quick recovery sweeps.
TEST_SETTINGS = {
    "SOCIALPOST_BACKOFF_BASE": "0.2",
    "SOCIALPOST_BACKOFF_CAP": "2",
    "SOCIALPOST_STALL_SECONDS": "5",
    "SOCIALPOST_RECOVER_INTERVAL": "2",
    "SOCIALPOST_ACCOUNTS_CACHE_SECONDS": "0",
    "SOCIALPOST_ALLOW_PRIVATE_URLS": "1",
    "LATE_CDN_WAIT_SECONDS": "0",
    "POSTFORME_READ_TIMEOUT": "5",
    "LATE_READ_TIMEOUT": "5",
}


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Stack:
    """Worker and beat processes sharing one environment. Stop with `stop()`."""

    env: dict[str, str]
    workdir: Path
    procs: list[Proc] = field(default_factory=list)

    @classmethod
    def create(cls, workdir: Path, extra: Mapping[str, str] | None = None) -> Stack:
        env = dict(os.environ)
        env.update(TEST_SETTINGS)
        env.update(extra or {})
        env["SOCIALPOST_STATE_DIR"] = str(workdir / "state")
        env["PYTHONPATH"] = str(ROOT)
        (workdir / "state").mkdir(parents=True, exist_ok=True)
        return cls(env=env, workdir=workdir)

    def _spawn(self, name: str, args: list[str], ready: str | None, timeout: float = 30,
               program: tuple[str, ...] = ("celery", "-A", "worker"),
               env: Mapping[str, str] | None = None) -> Proc:
        log = self.workdir / f"{name}.log"
        out = open(log, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        popen = subprocess.Popen(
            [sys.executable, "-m", *program, *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        if ready is not None:
            wait_for(lambda: ready in proc.text() or not proc.alive(), timeout, f"{name} ready")
            if not proc.alive():
                raise RuntimeError(f"{name} exited at start:\n{proc.text()[-3000:]}")
        return proc

    def worker(
        self, concurrency: int | None = 2, queues: str | None = None, name: str | None = None,
        pool: str | None = "prefork", extra: list[str] | None = None, loglevel: str = "info",
        app: str = "worker",
    ) -> Proc:
        """A `celery worker` of `app` (ours, or a producer's app under tests/); concurrency
        or pool None: the shipped default (celeryconfig)."""
        node = name or f"w{len(self.procs)}-{uuid.uuid4().hex[:6]}"
        args = ["worker", "-l", loglevel, "-n", f"{node}@%h",
                *(["-c", str(concurrency)] if concurrency is not None else []),
                *(["-P", pool] if pool is not None else []),
                "--without-mingle", "--without-gossip", *(extra or [])]
        if queues:
            args += ["-Q", queues]
        # Celery reads `-P prefork` as its own default and lets a configured pool win, so
        # the pool is named in the setting too (as `socialpost worker -P` does).
        env = {"SOCIALPOST_WORKER_POOL": pool} if pool is not None else None
        if loglevel.lower() in ("info", "debug"):
            return self._spawn(node, args, ready="ready.", env=env,
                               program=("celery", "-A", app))
        proc = self._spawn(node, args, ready=None, env=env, program=("celery", "-A", app))
        self._ping(proc, node)
        return proc

    def _ping(self, proc: Proc, node: str, timeout: float = 30) -> None:
        """Quiet workers print nothing when ready: ask them over the broker instead."""
        from celery import Celery

        probe = Celery(broker=self.env.get("CELERY_BROKER_URL") or self.env["REDIS_URL"])
        try:
            wait_for(
                lambda: not proc.alive()
                or probe.control.ping(destination=[f"{node}@{socket.gethostname()}"],
                                      timeout=0.5),
                timeout, f"{node} ready",
            )
        finally:
            probe.close()
        if not proc.alive():
            raise RuntimeError(f"{node} exited at start:\n{proc.text()[-3000:]}")

    def beat(self, name: str = "beat", loglevel: str = "info") -> Proc:
        schedule = self.workdir / "state" / f"{name}-schedule"
        return self._spawn(name, ["beat", "-l", loglevel, "-s", str(schedule)],
                           ready="beat: Starting")

    def flower(self, port: int, basic_auth: str, name: str = "flower") -> Proc:
        """Flower on loopback with basic auth (its HTTP API refuses anonymous calls)."""
        return self._spawn(
            name,
            ["flower", f"--port={port}", "--address=127.0.0.1", f"--basic-auth={basic_auth}"],
            ready="Visit me at",
        )

    def api(self, port: int, name: str = "api", workers: int = 1) -> Proc:
        """`socialpost api` on loopback (the operator's command), ready when it serves."""
        return self._spawn(name, ["api", "--host", "127.0.0.1", "--port", str(port),
                                  "--workers", str(workers)],
                           ready="Application startup complete", program=("worker.cli",))

    def kill(self, proc: Proc, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a prefork worker's children too)."""
        try:
            os.killpg(proc.popen.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 15) -> None:
        for proc in self.procs:
            if proc.alive():
                self.kill(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            left = max(0.1, deadline - time.monotonic())
            try:
                proc.popen.wait(left)
            except subprocess.TimeoutExpired:
                self.kill(proc, signal.SIGKILL)
                proc.popen.wait(5)
        self.procs.clear()

    def logs(self) -> str:
        return "\n".join(f"==== {p.name}\n{p.text()}" for p in self.procs)


def free_port() -> int:
    """A loopback port nothing listens on now (the server binds it right after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; raise naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)
