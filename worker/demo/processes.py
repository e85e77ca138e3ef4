"""The demo's subprocesses: starting them, watching them and stopping every one of them.

Why it exists: the demo runs Redis, a Celery worker, beat, Flower and the API as children, each in
a session of its own (Ctrl-C in the terminal reaches only the demo), and must stop them all,
in order, however it ends: success, error, Ctrl-C or TERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from worker.commands.procs import celery_argv
from worker.demo import DemoError
from worker.demo.output import Out

if TYPE_CHECKING:
    from celery import Celery


@dataclass
class Child:
    """A subprocess in its own session (Ctrl-C in the terminal reaches only the demo,
    which then stops the children in order), its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """TERM to the whole group (a prefork worker's children too), KILL if it lingers."""
        if self.alive():
            _signal_group(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def spawn(name: str, argv: list[str], env: dict[str, str], logs: Path) -> Child:
    log = logs / f"{name}.log"
    with open(log, "wb") as out:  # this run's output only
        popen = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Child(name, popen, log)


def celery(subcommand: str, args: list[str], env: dict[str, str], logs: Path) -> Child:
    """`celery -A worker <subcommand>`, the command line `socialpost worker|beat|flower`
    would exec; its log is <logs>/<subcommand>.log."""
    return spawn(subcommand, celery_argv(subcommand, args), env, logs)


def free_port(preferred: int = 0) -> int:
    """`preferred` when it is free on 127.0.0.1, else any free port."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise DemoError("no free TCP port on 127.0.0.1")


def wait_until(check: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def check_children(children: list[Child]) -> None:
    for child in children:
        if not child.alive():
            raise DemoError(
                f"{child.name} exited (code {child.popen.returncode}); last lines of "
                f"{child.log}:\n{child.tail()}"
            )


@dataclass
class Started:
    children: list[Child]
    flower_url: str
    api_url: str
    node: str  # the worker's node name


def start_processes(
    env: dict[str, str], flower_port: int, api_port: int, logs: Path,
    stack: contextlib.ExitStack,
) -> Started:
    """Worker, beat, Flower and the HTTP API (Flower and the API on loopback only)."""
    node = f"demo-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    worker = celery("worker", ["-l", "info", "-c", "3", "-n", node,
                               "--without-mingle", "--without-gossip"], env, logs)
    stack.callback(worker.stop)
    beat = celery("beat", ["-l", "info", "-s", env["SOCIALPOST_BEAT_SCHEDULE"]], env, logs)
    stack.callback(beat.stop)
    port = free_port(flower_port)
    flower = celery("flower", ["--address=127.0.0.1", f"--port={port}"], env, logs)
    stack.callback(flower.stop)
    api_port = free_port(api_port)
    api = spawn("api", [sys.executable, "-m", "worker.cli", "api", "--host", "127.0.0.1",
                        "--port", str(api_port)], env, logs)
    stack.callback(api.stop)
    return Started([worker, beat, flower, api], f"http://127.0.0.1:{port}",
                   f"http://127.0.0.1:{api_port}", node)


def answers(url: str) -> bool:
    """The URL answers 200 (Flower's /healthcheck, the API's /healthz)."""
    import requests

    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def flower_answers(url: str) -> bool:
    return answers(f"{url}/healthcheck")


def wait_ready(started: Started, timeout: float = 60.0) -> None:
    """Enqueue only once the worker consumes and Flower and the API listen: Flower shows
    only the tasks whose events it saw, and the demo should show every one of them."""
    worker = started.children[0]

    def ready() -> bool:
        check_children(started.children)
        return (" ready." in worker.tail(200) and flower_answers(started.flower_url)
                and answers(f"{started.api_url}/healthz"))

    if not wait_until(ready, timeout, every=0.2):
        raise DemoError(f"the worker, Flower or the API did not start within {timeout:.0f}s; "
                        f"see {worker.log.parent}")


def warn_about_other_workers(app: Celery, our_node: str, out: Out) -> None:
    """On a shared broker another fleet's worker would take the demo's posts (and look them
    up in its own database): name any that answer, since the demo would then time out."""
    try:
        replies = app.control.ping(timeout=1.0) or []
    except Exception:  # an answer we cannot read changes nothing for the demo
        return
    others = sorted(name for reply in replies for name in reply if name != our_node)
    if others:
        out.line(f"warning: other workers consume this broker and may take the demo's posts: "
                 f"{', '.join(others)}; use a Redis database of its own (REDIS_URL=.../N)")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def teardown(out: Out) -> Iterator[contextlib.ExitStack]:
    """Everything started is registered here and stopped in reverse order, on success,
    error, Ctrl-C, TERM or a closed output pipe. Nothing may cut the (bounded) shutdown
    short and leave a child running: a second Ctrl-C or TERM during it is ignored, and its
    messages are dropped when the reader has gone away (`socialpost demo | head`)."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    stack = contextlib.ExitStack()
    try:
        yield stack
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            out.note("stopping the demo ...")
            stack.close()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, previous)
        out.note("stopped.")
