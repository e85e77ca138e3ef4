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
from tests.stack import Stack  # noqa: E402

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


@contextmanager
def scratch_database() -> Iterator[str]:
    name = f"sp_bench_{uuid.uuid4().hex[:10]}"
    dsn = ADMIN_DSN.rpartition("/")[0] + "/" + name
    migrations.apply(dsn)
    try:
        yield dsn
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def private_redis() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def bench_env(settings: dict[str, str] | None = None) -> Iterator[Env]:
    """Database, Redis, sandbox and an (empty) stack with the environment set in this
    process too, so the producer side (tasks.client, db) talks to the same services."""
    workdir = Path(tempfile.mkdtemp(prefix="sp-bench-"))
    sandbox = SandboxServer(host="127.0.0.1", port=0).start()
    try:
        with scratch_database() as dsn, private_redis() as redis_url:
            env = {
                "DATABASE_URL": dsn,
                "REDIS_URL": redis_url,
                "ENCRYPTION_KEY": Fernet.generate_key().decode(),
                "POSTFORME_BASE_URL": sandbox.postforme_url,
                "LATE_BASE_URL": sandbox.late_url,
                "SOCIALPOST_ACCOUNTS_CACHE_SECONDS": "300",
                **(settings or {}),
            }
            os.environ.update(env)
            stack = Stack.create(workdir, env)
            try:
                yield Env(dsn, redis_url, sandbox, stack, workdir)
            finally:
                stack.stop()
    finally:
        sandbox.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def count_final(dsn: str, ids: list[str] | None = None) -> dict[str, Any]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT status, count(*) FROM social_posts GROUP BY status").fetchall()
    return {status: n for status, n in rows}
