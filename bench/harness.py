"""What the benchmarks share: a scratch database, a private Redis, the sandbox and a
worker stack, all real and all torn down at the end."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from db import migrations  # noqa: E402
from providers.sandbox import SandboxServer  # noqa: E402
from tests.stack import TEST_SETTINGS, Stack  # noqa: E402

ADMIN_DSN = os.environ.get(
    "BENCH_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Env:
    dsn: str
    redis_url: str
    sandbox: SandboxServer
    stack: Stack
    workdir: Path
    redis_pid: int | None = None  # the private redis-server, for CPU accounting


# The tests' quick settings a benchmark keeps: the sandbox serves media on loopback.
BENCH_KEEPS = frozenset({"SOCIALPOST_ALLOW_PRIVATE_URLS", "LATE_CDN_WAIT_SECONDS"})
_watchers: dict[str, psycopg.Connection[Any]] = {}  # count_final's, one per database


@contextmanager
def scratch_database(admin_dsn: str = ADMIN_DSN, prefix: str = "sp_bench") -> Iterator[str]:
    """A freshly migrated database on `admin_dsn`'s server, dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    dsn = admin_dsn.rpartition("/")[0] + "/" + name
    migrations.apply(dsn)
    try:
        yield dsn
    finally:
        watcher = _watchers.pop(dsn, None)
        if watcher is not None:
            watcher.close()
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class RedisServer:
    """A private `redis-server` that keeps nothing on disk, on a port of its own, so a
    benchmark or a fault test may flush, kill or restart it without touching the
    machine's shared Redis. A restart comes back empty, like a real one without AOF/RDB."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10) -> RedisServer:
        self._proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        import redis

        deadline = time.monotonic() + timeout
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def stop(self, kill: bool = False) -> None:
        """SIGKILL (a crash) or SIGTERM; either way nothing survives (no persistence)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        proc.wait(10)

    def restart(self, down_seconds: float = 0.0) -> None:
        """Crash and start again on the same port, empty."""
        self.stop(kill=True)
        time.sleep(down_seconds)
        self.start()


@contextmanager
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def bench_env(settings: dict[str, str] | None = None,
              sandbox_options: dict[str, Any] | None = None) -> Iterator[Env]:
    """Database, Redis, sandbox and an (empty) stack with the environment set in this
    process too, so the producer side (tasks.client, db) talks to the same services.
    `sandbox_options` are SandboxServer's keyword arguments (limits, separate ports)."""
    workdir = Path(tempfile.mkdtemp(prefix="sp-bench-"))
    sandbox = SandboxServer(host="127.0.0.1", port=0, **(sandbox_options or {})).start()
    try:
        with scratch_database() as dsn, private_redis() as redis:
            redis_url = redis.url
            env = {
                "DATABASE_URL": dsn,
                "REDIS_URL": redis_url,
                "ENCRYPTION_KEY": Fernet.generate_key().decode(),
                "POSTFORME_BASE_URL": sandbox.postforme_url,
                "LATE_BASE_URL": sandbox.late_url,
                "SOCIALPOST_ACCOUNTS_CACHE_SECONDS": "300",
                # Flow control on, with budgets that do not bind the benchmarks' single
                # sandbox key; bench/flow.py measures pacing at the real limits.
                "POSTFORME_RATE_LIMITS": "1000/second",
                "LATE_RATE_LIMITS": "1000/second",
                "SOCIALPOST_ACCOUNT_CAPS": "none",
                **(settings or {}),
            }
            os.environ.update(env)
            stack = Stack.create(workdir, env)
            # Benchmarks measure the shipped defaults: the tests' quick settings (a 5 s
            # stall time, 5 s read timeouts, no account cache) go, but for the sandbox's
            # loopback media, unless the bench sets them itself.
            for name in set(TEST_SETTINGS) - set(env) - BENCH_KEEPS:
                if name in os.environ:  # the caller's own choice stands
                    stack.env[name] = os.environ[name]
                else:
                    stack.env.pop(name, None)
            try:
                yield Env(dsn, redis_url, sandbox, stack, workdir, redis.pid)
            finally:
                stack.stop()
    finally:
        sandbox.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank `pct`th percentile (0-100) of `values`; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def _watcher(dsn: str) -> psycopg.Connection[Any]:
    """The bench's one connection per database. Polls run many times a second while a
    run is timed: a connection per poll forked a PostgreSQL backend each time and billed
    that to the pipeline's CPU."""
    conn = _watchers.get(dsn)
    if conn is None or conn.closed:
        conn = _watchers[dsn] = psycopg.connect(dsn, autocommit=True)
    return conn


def count_final(dsn: str) -> dict[str, Any]:
    """Posts by status (counts the whole table: once a run, not every poll)."""
    rows = _watcher(dsn).execute(
        "SELECT status, count(*) FROM social_posts GROUP BY status").fetchall()
    return {status: n for status, n in rows}


PENDING = ("queued", "publishing", "scheduled")


def count_pending(dsn: str) -> int:
    """Posts not final yet, read through the in-flight and due indexes (partial, so the
    poll costs what is in flight, not the size of the table: a whole-table count every
    50 ms was billed to the pipeline as PostgreSQL time)."""
    # One count per partial index, its predicate spelled out (one IN over all three
    # statuses matches neither index, and PostgreSQL scans the table). The benches make
    # no post handed to a provider's scheduler, which the due index leaves out.
    row = _watcher(dsn).execute(
        """SELECT (SELECT count(*) FROM social_posts
                    WHERE status IN ('queued', 'publishing'))
                + (SELECT count(*) FROM social_posts
                    WHERE status = 'scheduled' AND NOT handed_to_provider)"""
    ).fetchone()
    return int(row[0]) if row else 0


def until_final(dsn: str, total: int, timeout: float, every: float = 0.05,
                on_poll: Any = None) -> dict[str, Any]:
    """Wait until `total` posts in the database are final (the cheap pending count each
    poll, the whole count only when nothing is pending); statuses then. `on_poll()` is
    called each poll (a caller's own watch)."""
    deadline = time.monotonic() + timeout
    while True:
        if on_poll is not None:
            on_poll()
        if count_pending(dsn) == 0:
            counts = count_final(dsn)
            if sum(v for k, v in counts.items() if k not in PENDING) >= total:
                return counts
        if time.monotonic() > deadline:
            raise TimeoutError(f"not final in time: {count_final(dsn)}")
        time.sleep(every)


def wait_final(env: Env, total: int, timeout: float, every: float = 0.1) -> dict[str, Any]:
    """Wait until `total` posts of the run are final; their statuses then."""
    return until_final(env.dsn, total, timeout, every)


def bench_user(env: Env, platforms: tuple[str, ...] = ("twitter", "linkedin"),
               conn: Any = None) -> tuple[str, str, list[str]]:
    """A new user with a PostForMe key of their own on the sandbox (one account per
    platform): (user id, key, account ids). Also points our Celery app at the run's Redis."""
    from db import credentials
    from db.pool import connect
    from db.vault import Vault
    from worker.celery_app import app

    app.conf.broker_url = env.redis_url
    app.conf.result_backend = env.redis_url
    key = "bench-pfm-" + uuid.uuid4().hex
    accounts = [a["id"] for a in env.sandbox.register_key("postforme", key, list(platforms))]
    user = str(uuid.uuid4())
    if conn is not None:
        credentials.save_credentials(conn, Vault.from_env(), user, "postforme", key)
    else:
        with connect(env.dsn) as own:
            credentials.save_credentials(own, Vault.from_env(), user, "postforme", key)
    return user, key, accounts


def proc_stats() -> Iterator[tuple[int, str, list[str]]]:
    """(pid, program name, the /proc/PID/stat fields after the name) of every process now:
    for the benchmarks' CPU accounting (field 2 is the process group, 11-14 the user and
    system CPU ticks of the process and of its waited-for children)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        yield int(pid), raw[raw.index("(") + 1: raw.rindex(")")], raw[raw.rindex(")") + 2:].split()

